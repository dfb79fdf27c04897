"""Distillation: compress a component, then train it to behave as it did before.

Layer dropping, structured pruning and low-rank factorisation remove capacity in one shot; a few
hundred updates of the compressed component towards the original's outputs recover much of what
was lost (DistilHuBERT, Chang et al. 2022; LightHuBERT; the "prune, then fine-tune" practice of
Han et al. 2015). Here the teacher is the component itself before `steps`, the student the same
component after them, and the data the calibration utterances (`asr_compress/pipeline/
calibration.py`): audio the uncompressed pipeline has decoded, never the test set. Per component:

- encoder: mean squared error of the encoder outputs, divided by the teacher's variance;
- ctc: KL divergence of the CTC posteriors, on the original encoder's outputs;
- decoder: KL divergence of the next-token distributions, teacher-forced on the original model's
  best hypothesis over the original encoder's outputs (sequence-level distillation);
- lm: the same over the LM's next-token distributions, on those hypotheses and, with `samples`,
  on sequences sampled from the uncompressed LM itself (a few hundred calibration sentences are
  too little text to teach a language model; its own samples are as much text as wanted, drawn
  from the distribution the student is to match, and need no corpus).

Only the component is trained, on its own outputs: its attribution stays its own. Quantize after
distilling (`sequence` with steps `[{name: distill, ...}, {name: int8_dynamic}]`), since quantized
layers have no trainable float weights.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Dict, List

from asr_compress.compress.registry import (
    CompressionReport,
    MethodConfig,
    invalid,
    register_method,
    register_preset,
)
from asr_compress.errors import CompressionConfigError

# steps whose result still has float weights to train; quantizers come after distilling
TRAINABLE_STEPS = ("layer_drop", "prune_structured", "lowrank", "prune_unstructured", "prune_nm")


@dataclass
class DistillConfig(MethodConfig):
    name: str = "distill"
    # the compression to recover from, in order, as `sequence` steps ({name: <method>, params...});
    # only methods that leave float weights: layer_drop, prune_structured, lowrank, prune_unstructured, prune_nm
    steps: List[Dict[str, Any]] = field(default_factory=list)
    # optimizer updates, one calibration utterance each (cycled in a seeded shuffled order). On the
    # default model's dev half (2026-12-07), its encoder halved by layer_drop read 68.3% WER (7.0%
    # uncut); distilled at lr 1e-3 on the other half, 32.3% after 200 updates, 22.5% after 600 (about
    # 2 min of CPU); more keep helping at a cost linear in `updates`
    updates: int = 600
    # Adam learning rate. The student starts next to the teacher, so it is lower than a training run's
    # peak; on the same dev data, 200 encoder updates: 1e-4 41.8%, 3e-4 37.5%, 1e-3 32.3%, 3e-3 38.3%
    lr: float = 1e-3
    # shuffling seed: the same config and calibration data give the same weights (and samples)
    seed: int = 0
    # lm only: sequences sampled from the uncompressed LM (temperature 1, up to twice the longest
    # calibration hypothesis) added to the calibration hypotheses as the LM's training text; 0: the
    # hypotheses alone. On 200 dev hypotheses the default LM, halved, learnt them (KL 1.37 -> 0.74)
    # and decoded no better; see docs/compression_methods.md "Distillation" for what samples buy
    samples: int = 0
    # items per update. The LM's sequences are padded into one batch; one sequence per update is too
    # noisy to learn from thousands of samples: on 4000 samples of the default LM, halved, the KL to
    # the teacher on held-out dev sentences went 1.40 -> 1.38 after 600 updates of 1, -> 1.01 after
    # 600 of 16. The other components' utterances differ in length: an update runs them one after
    # another and steps on the mean of their losses (gradients accumulated, one utterance's graph in
    # memory at a time), so it costs `batch` times an update of 1. On the dev halves, the encoder
    # halved, 600 updates of 4 against 600 of 1: 20.9% against 22.5% WER on 100 calibration utterances,
    # 37.2% against 35.1% on 32 (overfitting them): raise calibration.limit first
    batch: int = 1

    def validate(self) -> None:
        super().validate()
        if not self.steps:
            raise invalid(self, "steps", self.steps, f"a non-empty list of {{name: <method>, ...params}}, methods in: "
                                                     f"{', '.join(TRAINABLE_STEPS)}")
        for i, cfg in enumerate(self.step_configs()):
            if cfg.name not in TRAINABLE_STEPS:
                raise invalid(self, f"steps[{i}].name", cfg.name,
                              f"one of {', '.join(TRAINABLE_STEPS)} (quantized layers cannot be trained: quantize "
                              f"after distilling, e.g. sequence steps [{{name: distill, ...}}, {{name: int8_dynamic}}])")
        if not (isinstance(self.updates, int) and self.updates >= 1):
            raise invalid(self, "updates", self.updates, "an integer >= 1")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr <= 0.1):
            raise invalid(self, "lr", self.lr, "0 < lr <= 0.1")
        if not (isinstance(self.samples, int) and self.samples >= 0):
            raise invalid(self, "samples", self.samples, "an integer >= 0 (sequences sampled from the LM; lm only)")
        if not (isinstance(self.batch, int) and self.batch >= 1):
            raise invalid(self, "batch", self.batch, "an integer >= 1 (utterances or LM sequences per update)")

    def _as_sequence(self):
        from asr_compress.compress.sequence import SequenceConfig

        return SequenceConfig(name=self.name, steps=self.steps, targets=list(self.targets), ignore=list(self.ignore))

    def step_configs(self) -> List[MethodConfig]:
        return self._as_sequence().step_configs()

    def check_components(self, component: str) -> None:
        if self.samples and component != "lm":
            bad = invalid(self, "samples", self.samples, f"0 for {component} (only the LM can learn from sampled "
                                                        f"text: the others read the encoder's outputs of real audio)")
            raise CompressionConfigError(f"{component}: {bad}")
        self._as_sequence().check_components(component)


def _check(module, config: DistillConfig, component: str) -> None:
    from asr_compress.compress.sequence import _check_first_step

    if component == "decoder" and "joint_network" in module._modules:  # pipeline/transducer.py
        raise CompressionConfigError(
            "decoder: distill teaches an attention decoder its next-token distributions; this one is a "
            f"transducer's ({type(module).__name__} with its joint network), scored per encoder frame; "
            "valid: distill on encoder or lm, or a method that does not train (decoder=int8_dynamic, ...)")

    _check_first_step(module, config._as_sequence(), component)


def _first(out):
    while isinstance(out, (tuple, list)):  # encoders return (xs, lens, states); some xs are (xs, intermediate)
        out = out[0]
    return out


def _kl(student_logits, teacher_logits):
    import torch

    t = torch.log_softmax(teacher_logits.float(), dim=-1)
    s = torch.log_softmax(student_logits.float(), dim=-1)
    return (t.exp() * (t - s)).sum(-1).mean()


def _inputs(component: str, calib, i: int) -> tuple:
    """What the component is called with for calibration utterance i (the uncompressed pipeline's data)."""
    import torch

    if component == "encoder":
        return calib.feats[i], calib.feats_lengths[i]
    if component == "lm":  # ESPnet's AbsLM.forward(input, hidden) -> (logits, hidden); text only
        return calib.token_inputs(i, calib.device), None
    hs = calib.encoded[i]
    if component == "ctc":
        return (hs,)
    ys = calib.token_inputs(i, hs.device)
    return hs, hs.new_tensor([hs.size(1)], dtype=torch.long), ys, ys.new_tensor([ys.size(1)])


@dataclass
class _Text:
    """The LM's distillation data: token sequences, read as `Calibration` reads its hypotheses."""

    tokens: List[List[int]]
    sos_eos: int
    source: str
    device: Any

    def __len__(self) -> int:
        return len(self.tokens)

    def token_inputs(self, i: int, device):
        import torch

        return torch.tensor([[self.sos_eos, *self.tokens[i]]], dtype=torch.long, device=device)


def sample_text(lm, sos_eos: int, n: int, max_len: int, seed: int, batch: int = 64) -> List[List[int]]:
    """`n` token sequences drawn from `lm`, each from <sos> until it draws <sos/eos> or reaches
    `max_len` tokens; reproducible from `seed`. One token per step for a batch of sequences through
    ESPnet's `batch_score` (every ESPnet LM has it), which keeps each layer's cache, as beam search does."""
    import torch

    device = next(lm.parameters()).device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    out: List[List[int]] = []
    with torch.no_grad():
        while len(out) < n:
            b = min(batch, n - len(out))
            ys = torch.full((b, 1), sos_eos, dtype=torch.long, device=device)
            states: List[Any] = [None] * b
            for _ in range(max_len):  # a sequence leaves the batch when it draws <sos/eos>
                logp, states = lm.batch_score(ys, states, None)
                nxt = torch.multinomial(logp.float().cpu().exp(), 1, generator=gen).squeeze(1)
                ended = (nxt == sos_eos).tolist()
                out.extend(row[1:] for row, end in zip(ys.tolist(), ended) if end)
                keep = [i for i, end in enumerate(ended) if not end]
                ys = torch.cat([ys[keep], nxt[keep].to(device).unsqueeze(1)], dim=1)
                states = [states[i] for i in keep]
                if not keep:
                    break
            out.extend(row[1:] for row in ys.tolist())  # reached max_len
    return out[:n]


def _lm_text(module, calib, config: DistillConfig):
    """The calibration hypotheses, plus `config.samples` sequences sampled from the LM as it is now."""
    if not config.samples:
        return calib
    max_len = 2 * max((len(t) for t in calib.tokens), default=50)
    sampled = sample_text(module, calib.sos_eos, config.samples, max_len, config.seed)
    source = f"{calib.source} + {config.samples} sampled from the LM" if calib.source else f"{config.samples} sampled"
    return _Text(tokens=[*calib.tokens, *sampled], sos_eos=calib.sos_eos, source=source, device=calib.device)


def _outputs(component: str, module, args: tuple):
    """The tensor distillation matches: encoder outputs, else logits (CTC's through its ctc_lo)."""
    return module.ctc_lo(*args) if component == "ctc" else _first(module(*args))


def _targets(component: str, teacher, calib) -> list:
    """The teacher's outputs on every calibration utterance, computed once (the teacher never changes)."""
    import torch

    with torch.no_grad():
        return [_outputs(component, teacher, _inputs(component, calib, i)) for i in range(len(calib))]


def _loss(component: str, student, target, calib, i: int):
    """The distillation loss of utterance i against the teacher's output `target`."""
    s = _outputs(component, student, _inputs(component, calib, i))
    if component != "encoder":
        return _kl(s, target)
    if s.shape != target.shape:
        raise CompressionConfigError(f"encoder: distill steps change the encoder's output shape {tuple(target.shape)} "
                                     f"-> {tuple(s.shape)}; its outputs cannot be matched")
    return ((s - target) ** 2).mean() / target.var().clamp_min(1e-8)


def _batch_loss(component: str, student, targets, calib, idxs: List[int]):
    """The LM's loss over several sequences: one padded forward (ESPnet pads LM batches with id 0 too,
    and the LM is causal: padding after a sequence cannot change its outputs), the mean of every
    token's KL divergence."""
    import torch

    if len(idxs) == 1:
        return _loss(component, student, targets[idxs[0]], calib, idxs[0])
    seqs = [calib.token_inputs(i, calib.device)[0] for i in idxs]
    out = _first(student(torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=0), None))
    return _kl(torch.cat([out[r, :len(seq)] for r, seq in enumerate(seqs)]),
               torch.cat([targets[i][0] for i in idxs]))


def _backward(component: str, student, targets, calib, idxs: List[int]) -> None:
    """Gradients of one update's loss: the LM's padded batch at once; the mean over utterances for the
    others, accumulated one utterance at a time (their lengths differ, and only one graph is held)."""
    if component == "lm" or len(idxs) == 1:
        _batch_loss(component, student, targets, calib, idxs).backward()
        return
    for i in idxs:
        (_loss(component, student, targets[i], calib, i) / len(idxs)).backward()


def _mean_loss(component, student, targets, calib) -> float:
    import torch

    with torch.no_grad():
        return float(sum(_loss(component, student, targets[i], calib, i) for i in range(len(calib))) / len(calib))


def _train(component: str, module, targets, calib, config: DistillConfig) -> float:
    """`config.updates` Adam steps of `config.batch` items each (utterances, or LM sequences), in a
    seeded shuffled order that cycles through the data; returns seconds."""
    import time

    import torch

    params = [p for p in module.parameters() if p.is_floating_point()]
    # pruned weights stay pruned: a weight the steps set to zero is set to zero after every update
    masks = [(p, p != 0) for p in params if p.dim() > 1 and (p == 0).float().mean() > 0.01]
    rng = random.Random(config.seed)
    order: List[int] = []
    opt = torch.optim.Adam(params, lr=config.lr)
    start = time.perf_counter()
    with torch.enable_grad():
        for _ in range(config.updates):
            idxs = []
            while len(idxs) < config.batch:
                if not order:
                    order = list(range(len(calib)))
                    rng.shuffle(order)
                idxs.append(order.pop())
            opt.zero_grad(set_to_none=True)
            _backward(component, module, targets, calib, idxs)
            opt.step()
            with torch.no_grad():
                for p, keep in masks:
                    p.mul_(keep)
    for p in params:
        p.grad = None
    return time.perf_counter() - start


# the components whose uncompressed outputs calibration captures (pipeline/calibration.py)
DISTILL_COMPONENTS = ("encoder", "ctc", "decoder", "lm")
NOT_CAPTURED = {"frontend": "the teacher outputs distillation trains on are captured for encoder, ctc, decoder and "
                            "lm, not for a frontend"}


@register_method(DistillConfig, components=DISTILL_COMPONENTS, reasons=NOT_CAPTURED, check=_check, calibration=True)
def _distill(module, config: DistillConfig, component: str, calibration=None) -> CompressionReport:
    from asr_compress.compress.sequence import apply_steps

    calib = calibration  # never empty: compress_ refuses a learning method without calibration data
    was_training = module.training
    module.eval()  # no dropout: the student is compared with the teacher's deterministic outputs
    if component == "lm":
        calib = _lm_text(module, calib, config)  # sampled from the teacher: before the steps
    targets = _targets(component, module, calib)  # the component as it is now, before the steps
    report = apply_steps(module, config.step_configs(), component)
    before = _mean_loss(component, module, targets, calib)
    seconds = _train(component, module, targets, calib, config)
    after = _mean_loss(component, module, targets, calib)
    module.train(was_training)
    source = f" from {calib.source}" if calib.source else ""
    what = "sequences" if component == "lm" and config.samples else "calibration utterances"
    per = f" of {config.batch}" if config.batch > 1 else ""
    report.notes.append(f"distilled {config.updates} updates{per} (lr {config.lr:g}) on {len(calib)} {what}"
                        f"{source}: loss to the uncompressed {component} {before:.4f} -> {after:.4f} "
                        f"({seconds:.0f} s)")
    return report


LAYER_DROP_DISTILL = register_preset(
    DistillConfig(
        name="layer_drop_distill",
        # every other layer dropped (layer_drop's default), then the rest taught to do the work of all
        # (default 600 updates at lr 1e-3)
        steps=[{"name": "layer_drop", "keep_every": 2}],
    )
)
