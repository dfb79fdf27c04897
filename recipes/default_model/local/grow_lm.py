"""Grow a trained Transformer LM by new layers that start as the identity (stage 7's --lm_init).

Why: the shipped LM (2 layers of d 256) is small, and its training loss (with dropout) stays
above its validation loss: it looked short of capacity rather than of text (a 4-layer copy
continued 8 CPU epochs did not decode better: recipe README, "A deeper LM"). Training a larger
LM from scratch takes dozens of epochs, hours on this 2-core CPU; a deeper copy of the trained
one starts where it is and only has to learn what the new layers add. Each new layer is appended after the
trained ones (before the final norm) with its two residual branches' output projections
(`self_attn.linear_out`, `feed_forward.w_2`) set to zero, so the grown LM scores every sentence
exactly as the trained one until training moves them (checked here before writing).

    python local/grow_lm.py --init ../../models/default/lm/valid.loss.ave.pth \
        --config conf/train_lm_grow4.yaml --out exp/lm_grow_init.pth
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import torch
import yaml

# Projections that end a residual branch in ESPnet's EncoderLayer: zero makes the layer x -> x.
RESIDUAL_OUTPUTS = ("self_attn.linear_out.", "feed_forward.w_2.")
LAYER_KEY = re.compile(r"^lm\.encoder\.encoders\.(\d+)\.")


def count_layers(state: dict) -> int:
    return 1 + max(int(m.group(1)) for k in state if (m := LAYER_KEY.match(k)))


def build_lm(lm_conf: dict, vocab_size: int):
    from espnet2.lm.transformer_lm import TransformerLM

    return TransformerLM(vocab_size, **lm_conf)


def grow_state(src: dict[str, torch.Tensor], lm_conf: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """The state of an LM with `lm_conf["layer"]` layers whose first ones are `src`'s."""
    old_layers = count_layers(src)
    new_layers = int(lm_conf["layer"])
    if new_layers <= old_layers:
        sys.exit(f"grow_lm.py: the config's lm_conf.layer ({new_layers}) must exceed the "
                 f"{old_layers} layers of the --init weights")
    vocab_size = src["lm.decoder.weight"].shape[0]
    torch.manual_seed(seed)
    fresh = {f"lm.{k}": v for k, v in build_lm(lm_conf, vocab_size).state_dict().items()}
    grown = {}
    for key, value in fresh.items():
        m = LAYER_KEY.match(key)
        if m is None or int(m.group(1)) < old_layers:
            if key not in src or src[key].shape != value.shape:
                sys.exit(f"grow_lm.py: {key} of the config's LM is not in the --init weights "
                         "with that shape (the config must differ from theirs only in lm_conf.layer)")
            grown[key] = src[key].clone()
        elif any(part in key for part in RESIDUAL_OUTPUTS):
            grown[key] = torch.zeros_like(value)
        else:
            grown[key] = value.clone()
    return grown


def max_score_difference(src: dict, grown: dict, lm_conf: dict, old_conf: dict) -> float:
    """Largest difference of next-token log-probabilities between the two LMs on random tokens."""
    vocab_size = src["lm.decoder.weight"].shape[0]
    old = build_lm(old_conf, vocab_size)
    new = build_lm(lm_conf, vocab_size)
    old.load_state_dict({k[3:]: v for k, v in src.items()})
    new.load_state_dict({k[3:]: v for k, v in grown.items()})
    old.eval()
    new.eval()
    tokens = torch.randint(1, vocab_size - 1, (4, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = torch.log_softmax(old(tokens, None)[0], -1)
        b = torch.log_softmax(new(tokens, None)[0], -1)
    return float((a - b).abs().max())


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--init", type=Path, required=True, help="trained LM weights (an ESPnet .pth)")
    p.add_argument("--config", type=Path, required=True,
                   help="the grown LM's training config (lm_conf as the trained one's, more layers)")
    p.add_argument("--out", type=Path, required=True, help="where the grown weights go (.pth)")
    p.add_argument("--seed", type=int, default=0, help="initialises the new layers' other weights")
    args = p.parse_args(argv)
    for path in (args.init, args.config):
        if not path.is_file():
            sys.exit(f"grow_lm.py: {path} does not exist")
    lm_conf = dict(yaml.safe_load(args.config.read_text())["lm_conf"])
    src = {k: v.float() for k, v in torch.load(args.init, map_location="cpu").items()}
    grown = grow_state(src, lm_conf, args.seed)
    old_conf = dict(lm_conf, layer=count_layers(src))
    diff = max_score_difference(src, grown, lm_conf, old_conf)
    if diff > 1e-4:
        sys.exit(f"grow_lm.py: the grown LM scores differ from --init's by {diff:.2e}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(grown, args.out)
    print(f"{args.out}: {old_conf['layer']} -> {lm_conf['layer']} layers, "
          f"{sum(v.numel() for v in grown.values()):,} parameters, scores as --init's (max diff {diff:.1e})")


if __name__ == "__main__":
    main()
