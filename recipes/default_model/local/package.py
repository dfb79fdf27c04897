"""Stage 11: copy the ESPnet experiment outputs into REPO/models/default/{asr,lm}.

    python local/package.py --repo_root ../.. --asr_exp exp/asr_train --lm_exp exp/lm_train \
        --bpemodel data/token_list/bpe_unigram300/bpe.model --stats exp/asr_stats/train/feats_stats.npz

Without --lm_exp only the ASR is packaged and the shipped LM is kept as it is: a round that
retrains the acoustic model alone (the LM's text did not change) need not have the LM's
experiment folder on the machine.

config.yaml is ESPnet's own, with the paths it holds (bpemodel, normalize stats_file,
token_list when it is a path) rewritten relative to the repository root, as espnet_model_zoo
does, so `Speech2Text(asr_train_config="models/default/asr/config.yaml", ...)` run from the
repo root loads it. Weights: the exp's valid.{acc,loss}.ave.pth when training has finished,
else the snapshot of stage 10.

The weights are stored in float16 by default (--weights_dtype): the 5.9M-parameter ASR is 24 MB
in float32, over what a repository should carry per file, and 12 MB in float16. ESPnet's loader
(`model.load_state_dict`) copies them into the float32 model it builds, so the shipped files still
load as they are; what runs is the float32 model with its weights rounded to float16 precision
(relative error ~5e-4), and every committed result is scored on exactly that model.
"""
import argparse
import shutil
import subprocess
from pathlib import Path

import yaml


def pick_weights(exp: Path, name: str) -> Path:
    final, snap = exp / name, exp / "snapshot" / name
    if final.exists() and (not snap.exists() or final.stat().st_mtime >= snap.stat().st_mtime):
        return final.resolve()
    if snap.exists():
        return snap
    raise SystemExit(f"no {name} in {exp} or {exp}/snapshot: run stage 10 first")


def shipped_commit(repo: Path, init: str) -> str:
    """' (as shipped at commit X)' when a run started from weights inside models/default: packaging
    overwrites that file, so its path alone would no longer say which weights they were."""
    path = (Path.cwd() / init).resolve()
    if not path.is_relative_to(repo / "models" / "default"):
        return ""
    r = subprocess.run(["git", "-C", str(repo), "log", "-1", "--format=%h", "--", str(path)],
                       capture_output=True, text=True)
    return f" (as shipped at commit {r.stdout.strip()})" if r.returncode == 0 and r.stdout.strip() else ""


def save_weights(src: Path, dst: Path, dtype: str) -> None:
    """Copy an ESPnet state dict, floating-point tensors cast to dtype (integer buffers kept)."""
    if dtype == "float32":  # what ESPnet wrote: copy the file itself, byte for byte
        shutil.copy(src, dst)
        return
    import torch

    state = torch.load(src, map_location="cpu", weights_only=True)
    cast = getattr(torch, dtype)
    torch.save({k: v.to(cast) if v.is_floating_point() else v for k, v in state.items()}, dst)


def package(exp: Path, dest: Path, weights: str, repo: Path, bpemodel: Path, dtype: str,
            stats=None):
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
    save_weights(src, dest / weights, dtype)
    with open(dest / "config.yaml", "w") as f:
        yaml.safe_dump(cfg, f, allow_unicode=True, sort_keys=False)
    info = exp / "snapshot" / "info.txt"
    prov = info.read_text() if src.parent.name == "snapshot" and info.exists() else \
        f"{weights}: ESPnet's own average at the end of training\n"
    prov += f"stored as {dtype} (recipe stage 11, local/package.py --weights_dtype)\n"
    if cfg.get("init_param"):  # phase 2 starts from phase 1's weights, or --asr_init/--lm_init's
        starts = ", ".join(i + shipped_commit(repo, i) for i in cfg["init_param"])
        prov += f"training started from {starts} (recipe stage 9's phase 1, or run.sh --asr_init / --lm_init)\n"
    (dest / "PROVENANCE.txt").write_text(prov)
    print(dest, src, prov, end="")
    return rel / weights


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo_root", type=Path, required=True)
    ap.add_argument("--asr_exp", type=Path, required=True)
    ap.add_argument("--lm_exp", type=Path, help="omit to keep the shipped LM (models/default/lm)")
    ap.add_argument("--bpemodel", type=Path, required=True)
    ap.add_argument("--stats", type=Path, required=True)
    # float16 halves the files (see the docstring); float32 ships ESPnet's file byte for byte
    ap.add_argument("--weights_dtype", choices=("float16", "float32"), default="float16")
    a = ap.parse_args()
    repo = a.repo_root.resolve()
    root = repo / "models/default"
    lm = Path("models/default/lm/valid.loss.ave.pth")
    if a.lm_exp is None and not (repo / lm).exists():
        raise SystemExit(f"--lm_exp not given and no shipped LM to keep: {repo / lm} is missing")
    kept_bpe = repo / "models/default/lm/bpe.model"
    if a.lm_exp is None and kept_bpe.read_bytes() != a.bpemodel.read_bytes():
        raise SystemExit(f"--lm_exp not given, but the shipped LM's units ({kept_bpe}) differ from "
                         f"--bpemodel {a.bpemodel}: the LM must score the ASR's tokens; package both "
                         "(--lm_exp) or train stage 5 with --bpe_from ../../models/default/asr")
    asr = package(a.asr_exp, root / "asr", "valid.acc.ave.pth", repo, a.bpemodel, a.weights_dtype, a.stats)
    if a.lm_exp is not None:
        lm = package(a.lm_exp, root / "lm", "valid.loss.ave.pth", repo, a.bpemodel, a.weights_dtype)
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
