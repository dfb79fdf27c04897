"""Stage 11: copy the ESPnet experiment outputs into REPO/models/default/{asr,lm}.

    python local/package.py --repo_root ../.. --asr_exp exp/asr_train --lm_exp exp/lm_train \
        --bpemodel data/token_list/bpe_unigram300/bpe.model --stats exp/asr_stats/train/feats_stats.npz

config.yaml is ESPnet's own, with the paths it holds (bpemodel, normalize stats_file,
token_list when it is a path) rewritten relative to the repository root, as espnet_model_zoo
does, so `Speech2Text(asr_train_config="models/default/asr/config.yaml", ...)` run from the
repo root loads it. Weights: the exp's valid.{acc,loss}.ave.pth when training has finished,
else the snapshot of stage 10.
"""
import argparse
import shutil
from pathlib import Path

import yaml


def pick_weights(exp: Path, name: str) -> Path:
    final, snap = exp / name, exp / "snapshot" / name
    if final.exists() and (not snap.exists() or final.stat().st_mtime >= snap.stat().st_mtime):
        return final.resolve()
    if snap.exists():
        return snap
    raise SystemExit(f"no {name} in {exp} or {exp}/snapshot: run stage 10 first")


def package(exp: Path, dest: Path, weights: str, repo: Path, bpemodel: Path, stats=None):
    rel = dest.relative_to(repo)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    cfg = yaml.safe_load(open(exp / "config.yaml"))
    shutil.copy(bpemodel, dest / "bpe.model")
    cfg["bpemodel"] = str(rel / "bpe.model")
    if isinstance(cfg.get("token_list"), str):
        shutil.copy(cfg["token_list"], dest / "tokens.txt")
        cfg["token_list"] = str(rel / "tokens.txt")
    if stats is not None:
        shutil.copy(stats, dest / "feats_stats.npz")
        cfg["normalize_conf"]["stats_file"] = str(rel / "feats_stats.npz")
    cfg["output_dir"] = str(rel)
    src = pick_weights(exp, weights)
    shutil.copy(src, dest / weights)
    with open(dest / "config.yaml", "w") as f:
        yaml.safe_dump(cfg, f, allow_unicode=True, sort_keys=False)
    info = exp / "snapshot" / "info.txt"
    prov = info.read_text() if src.parent.name == "snapshot" and info.exists() else \
        f"{weights}: ESPnet's own average at the end of training\n"
    if cfg.get("init_param"):  # phase 2 starts from phase 1's weights, or --asr_init/--lm_init's
        prov += (f"training started from {', '.join(cfg['init_param'])} (recipe stage 9's phase 1, "
                 f"or run.sh --asr_init / --lm_init)\n")
    (dest / "PROVENANCE.txt").write_text(prov)
    print(dest, src, prov, end="")
    return rel / weights


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo_root", type=Path, required=True)
    ap.add_argument("--asr_exp", type=Path, required=True)
    ap.add_argument("--lm_exp", type=Path, required=True)
    ap.add_argument("--bpemodel", type=Path, required=True)
    ap.add_argument("--stats", type=Path, required=True)
    a = ap.parse_args()
    repo = a.repo_root.resolve()
    root = repo / "models/default"
    asr = package(a.asr_exp, root / "asr", "valid.acc.ave.pth", repo, a.bpemodel, a.stats)
    lm = package(a.lm_exp, root / "lm", "valid.loss.ave.pth", repo, a.bpemodel)
    meta = {"espnet": __import__("espnet").__version__,
            "yaml_files": {"asr_train_config": "models/default/asr/config.yaml",
                           "lm_train_config": "models/default/lm/config.yaml"},
            "files": {"asr_model_file": str(asr), "lm_file": str(lm)}}
    with open(root / "meta.yaml", "w") as f:
        yaml.safe_dump(meta, f, sort_keys=False)
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    print(f"models/default: {total / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
