"""Stage 10: average the n best epoch checkpoints saved so far, while training still runs.

    python local/snapshot_model.py --exp exp/asr_train --criterion valid.acc --nbest 5

ESPnet writes valid.acc.ave.pth only when training ends. This does the same averaging
(as espnet2.main_funcs.average_nbest_models: mean of float tensors, floor mean of integer
buffers) over the `{epoch}epoch.pth` files present now, ranked by the reporter stored in
checkpoint.pth, and writes EXP/snapshot/{criterion}.ave.pth plus snapshot/info.txt.
With fewer than --min_epochs epochs it falls back to the latest model state.
"""
import argparse
import time
from pathlib import Path

import torch
from espnet2.train.reporter import Reporter


def load_checkpoint(path: Path, tries=5):
    for i in range(tries):  # the trainer may be rewriting it
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception:  # noqa: BLE001 - partial file: wait and retry
            if i == tries - 1:
                raise
            time.sleep(10)


def average_states(states):
    """ESPnet's average: mean of the floating-point tensors (in float32, whatever they are stored
    in: a float16 package averaged with float32 snapshots must not accumulate in float16), floor
    mean of the integer buffers (e.g. BatchNorm's num_batches_tracked). `states` may be a
    generator: one state dict is loaded at a time besides the sum, as ESPnet's own averaging does."""
    avg, n = None, 0
    for s in states:
        if avg is None:
            avg = {k: v.float().clone() if v.is_floating_point() else v.clone() for k, v in s.items()}
        else:
            for k in avg:
                avg[k] += s[k]
        n += 1
    for k in avg:
        if avg[k].is_floating_point():
            avg[k] /= n
        else:
            avg[k] = torch.div(avg[k], n, rounding_mode="floor")
    return avg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exp", type=Path, required=True)
    ap.add_argument("--criterion", default="valid.acc", help="phase.key, e.g. valid.loss")
    ap.add_argument("--nbest", type=int, default=5)
    ap.add_argument("--min_epochs", type=int, default=1)
    a = ap.parse_args()
    phase, key = a.criterion.split(".")
    mode = "min" if key == "loss" else "max"
    ckpt = load_checkpoint(a.exp / "checkpoint.pth")
    reporter = Reporter()
    reporter.load_state_dict(ckpt["reporter"])
    ranked = [(e, v) for e, v in reporter.sort_epochs_and_values(phase, key, mode)
              if (a.exp / f"{e}epoch.pth").exists()][: a.nbest]
    out = a.exp / "snapshot"
    out.mkdir(exist_ok=True)
    if len(ranked) < a.min_epochs or not ranked:
        avg, used = ckpt["model"], [("latest", reporter.get_epoch())]
    else:
        avg = average_states(torch.load(a.exp / f"{e}epoch.pth", map_location="cpu") for e, _ in ranked)
        used = ranked
    torch.save(avg, out / f"{a.criterion}.ave.pth")
    info = (f"{a.criterion}.ave.pth: average of epochs {[e for e, _ in used]} "
            f"({a.criterion} {[round(float(v), 4) for _, v in used]}), "
            f"{reporter.get_epoch()} epochs done, {time.strftime('%F %T UTC', time.gmtime())}\n")
    (out / "info.txt").write_text(info)
    print(info, end="")


if __name__ == "__main__":
    main()
