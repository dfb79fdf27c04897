"""Average the weights of rounds that continued the same weights (a "model soup") into an
experiment folder that stage 11's local/package.py packages like any other.

    python local/average_models.py --out exp/asr_soup20 --config exp/asr_cpu18/config.yaml \
        --stats ../../models/default/asr/feats_stats.npz \
        ../../models/default/asr/valid.acc.ave.pth \
        exp/asr_cpu14/snapshot/valid.acc.ave.pth exp/asr_cpu18/snapshot/valid.acc.ave.pth

Writes OUT/config.yaml (a copy of --config: the architecture, which every input must share),
OUT/snapshot/valid.acc.ave.pth (the uniform mean, as stage 10 averages epochs) with
OUT/snapshot/info.txt naming the inputs, and OUT/feats_stats.npz (a copy of --stats: the
normalisation the average was gated with, which package.py's --stats then ships).

Why uniform and why these inputs is the recipe README's business ("A weight average of two rounds");
averaging only makes sense for weights that started from the same weights, which this script
cannot check: it checks that the inputs have the same tensors and shapes, and names the first
input and tensor that differ.
"""
import argparse
import shutil
import time
from pathlib import Path

import torch
from package import shipped_commit
from snapshot_model import average_states


def load_all(paths):
    states = [torch.load(p, map_location="cpu", weights_only=True) for p in paths]
    first = states[0]
    for p, s in zip(paths[1:], states[1:]):
        if s.keys() != first.keys():
            diff = sorted(set(s) ^ set(first))
            raise SystemExit(f"average_models.py: {p} and {paths[0]} hold different tensors "
                             f"(e.g. {diff[0]}): not weights of one architecture")
        for k, v in s.items():
            if v.shape != first[k].shape:
                raise SystemExit(f"average_models.py: {p}: {k} has shape {tuple(v.shape)}, "
                                 f"{paths[0]} has {tuple(first[k].shape)}")
    return states


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True, help="experiment folder to write")
    ap.add_argument("--config", type=Path, required=True, help="ESPnet config.yaml of the inputs")
    ap.add_argument("--stats", type=Path, required=True, help="feats_stats.npz the average runs with")
    ap.add_argument("--repo_root", type=Path, default=Path("../.."),
                    help="to name the commit of inputs inside models/default (packaging overwrites them)")
    ap.add_argument("weights", type=Path, nargs="+", help="state dicts (.pth) to average, two or more")
    a = ap.parse_args()
    if len(a.weights) < 2:
        raise SystemExit("average_models.py: give two or more weight files to average")
    for p in [a.config, a.stats, *a.weights]:
        if not p.is_file():
            raise SystemExit(f"average_models.py: {p} does not exist")
    avg = average_states(load_all(a.weights))
    snap = a.out / "snapshot"
    snap.mkdir(parents=True, exist_ok=True)
    shutil.copy(a.config, a.out / "config.yaml")
    shutil.copy(a.stats, a.out / "feats_stats.npz")
    torch.save(avg, snap / "valid.acc.ave.pth")
    repo = a.repo_root.resolve()
    names = ", ".join(f"{p}{shipped_commit(repo, str(p))}" for p in a.weights)
    info = (f"valid.acc.ave.pth: uniform average of {len(a.weights)} weight sets: {names} "
            f"(local/average_models.py, {time.strftime('%F %T UTC', time.gmtime())})\n")
    (snap / "info.txt").write_text(info)
    print(info, end="")


if __name__ == "__main__":
    main()
