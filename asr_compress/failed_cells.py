"""Sweep cells that failed, wherever the launcher ran them.

Hydra's basic launcher runs every cell in the process that started the sweep, so `record` alone
would do; a cluster launcher (hydra-submitit-launcher: `hydra/launcher=submitit_slurm`) runs each
cell in a job of its own, and a failure recorded there never reaches the launching process. Every
failed cell also leaves `error.txt` in its run directory, so when the sweep ends the report callback
(which runs in the launching process with any launcher) calls `record_sweep` to find them on disk:
the exit status of `asr-compress -m` then says "some numbers are missing" with either launcher.
A sweep run without the callback (`~hydra.callbacks.report`) on a cluster launcher has nobody to look:
its failed cells keep their error.txt, and `asr-compress-report SWEEP` lists them later.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

# run directory -> None: an ordered set, since a cell found on disk may already be recorded
_failed: Dict[Path, None] = {}

# The files a run writes into its directory. A run into a directory a previous run used (a fixed
# hydra.sweep.dir rerun) removes them first: Hydra rewrites .hydra/ with the new config, and an old
# metrics.json or error.txt left beside it would be read as this run's result.
RUN_OUTPUTS = ("metrics.json", "utterances.jsonl", "error.txt")


def clear_outputs(out_dir: Path) -> None:
    for name in RUN_OUTPUTS:
        (out_dir / name).unlink(missing_ok=True)


def record(out_dir: Path) -> None:
    _failed[Path(out_dir).absolute()] = None


def record_sweep(sweep_dir: Path) -> None:
    """Record every run directory under `sweep_dir` with an error.txt (any depth: `hydra.sweep.subdir`
    may nest them)."""
    for err in sorted(Path(sweep_dir).rglob("error.txt")):
        record(err.parent)


def failed() -> List[Path]:
    return list(_failed)
