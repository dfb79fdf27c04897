"""`resume=true`: a rerun sweep decodes only the cells without a finished run of the same settings.

A sweep of many cells on a cluster may lose a few to a bad parameter, a node failure or CUDA
running out of memory. Rerunning the same command into the same sweep directory
(`hydra.sweep.dir=...`) with `resume=true` then reuses every cell whose directory already holds a
finished run (metrics.json and utterances.jsonl, written last and atomically) that matches in

- settings: the composed config, `resume` and `eval.progress` aside, and the test set's index
  files (wav.scp, segments, text, utt2spk, utt2group): `settings_sha256` in metrics.json;
- model files: the SHA-256 of every file (metrics.json `model`), so a model retrained in place
  is decoded again;
- code: asr_compress's version and git hash as the run recorded them, the method plugins
  installed (compress/plugins.py: names, distributions, versions), and a digest of the Python
  source of both (environment.code_sha256), so that an uncommitted edit ("<hash>-dirty" either way)
  or a plugin edited in place without a version bump decodes the cell again.

Anything else (no metrics.json, a run from before settings_sha256 was recorded, any difference)
decodes the cell again. A reused cell keeps its own timing and environment; the report's
environment block then shows its date, and its host if it differs. A cell that was stopped before
it finished continues from the utterances it had decoded, when the same fields match and it runs
on the same kind of machine (partial_decode.py).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, Optional

from omegaconf import DictConfig, OmegaConf

# index files of a Kaldi-style data dir whose content decides what a run decodes and scores
DATA_FILES = ("wav.scp", "segments", "text", "utt2spk", "utt2group")
# config keys that do not change a run's numbers: the reuse switch itself and the progress bar
IGNORED = (("resume",), ("eval", "progress"))


def settings_sha256(cfg: DictConfig) -> str:
    """One digest of what a run computes: the composed config and the test set's index files."""
    from asr_compress.config import resolve_path

    settings = OmegaConf.to_container(cfg, resolve=True)
    for path in IGNORED:
        node = settings
        for key in path[:-1]:
            node = node.get(key, {})
        node.pop(path[-1], None)
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    data_dir = resolve_path(str(cfg.data.dir))
    for name in DATA_FILES:
        f = data_dir / name
        h.update(name.encode() + (f.read_bytes() if f.is_file() else b"\0absent"))
    return h.hexdigest()


def recorded_identity(metrics: Dict[str, Any]) -> Dict[str, Any]:
    """What a run computed and with which code and model files, from its metrics.json (or the same
    layout): what resume compares before reusing a finished cell, or the utterances a killed one
    decoded (partial_decode.py)."""
    env = metrics.get("environment", {})
    return {"settings_sha256": metrics.get("settings_sha256"), "asr_compress": env.get("asr_compress"),
            "git_hash": env.get("git_hash"), "method_plugins": env.get("method_plugins", ""),
            "code_sha256": env.get("code_sha256"),
            "model": {k: v for k, v in metrics.get("model", {}).items() if k.endswith("_sha256")}}


def identity(cfg: DictConfig, model_files: Optional[Dict[str, Any]] = None,
             environment: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """`recorded_identity` of a run of `cfg` now. `model_files` (the loaded pipeline's
    `files.describe()`) and `environment` (the run's environment block) where the run has them:
    hashing the weights and the source again, and asking git, cost time."""
    from asr_compress import __version__
    from asr_compress.compress.plugins import loaded
    from asr_compress.evaluate.environment import code_sha256, git_hash
    from asr_compress.pipeline.load import find_model_files

    if environment is None:
        environment = {"asr_compress": __version__, "git_hash": git_hash(), "method_plugins": loaded(),
                       "code_sha256": code_sha256()}
    files = model_files if model_files is not None else find_model_files(cfg.model).describe()
    return recorded_identity({"settings_sha256": settings_sha256(cfg), "environment": environment, "model": files})


def finished_run(cfg: DictConfig, out_dir: Path) -> Optional[Dict[str, Any]]:
    """The metrics of the run in `out_dir` when it finished with these settings, model files and
    code; None when the cell must be decoded (again)."""
    metrics_file = Path(out_dir) / "metrics.json"
    if not (metrics_file.is_file() and (Path(out_dir) / "utterances.jsonl").is_file()):
        return None
    try:
        metrics = json.loads(metrics_file.read_text())
    except (OSError, ValueError):
        return None
    return metrics if isinstance(metrics, dict) and recorded_identity(metrics) == identity(cfg) else None
