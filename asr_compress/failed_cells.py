"""Sweep cells that failed, wherever the launcher ran them.

Hydra's basic launcher runs every cell in the process that started the sweep, so `record` alone
would do; a cluster launcher (hydra-submitit-launcher: `hydra/launcher=submitit_slurm`) runs each
cell in a job of its own, and a failure recorded there never reaches the launching process. Every
failed cell also leaves `error.txt` in its run directory, so when the sweep ends `CellsCallback`
(`hydra.callbacks.cells` in conf/config.yaml; it runs in the launching process with any launcher)
calls `record_sweep` on every sweep directory of the launch (sweep_dirs.py) to find them on disk:
the exit status of `asr-compress -m` then says "some numbers are missing" with either launcher. It
is a callback of its own, not part of the report's, so that a sweep run without the report
(`~hydra.callbacks.report`, as the README's tuning sweep is) still counts its failed cells.

Two multiruns may share one sweep dir (the README's way to sweep a method's parameter beside the
baseline). The callback therefore notes the error.txt files already there when its launch starts
(`existing_errors`) and `record_sweep` skips those: a cell that failed in the first launch, and that
the second did not run again, does not fail the second's exit status. A cell the second launch does
run again removes its old error.txt first (`clear_outputs`), so its new failure is a new file.
Files are told apart by inode and modification time, not by comparing clocks, since a cluster job's
node and the launching node need not agree on the time.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import AbstractSet, Any, Dict, List, Tuple

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from asr_compress import sweep_dirs

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


# an error.txt as found on disk: path, inode, modification time (ns)
ErrorFile = Tuple[Path, int, int]


def _error_files(sweep_dir: Path) -> List[ErrorFile]:
    """Every error.txt under `sweep_dir`, at any depth (`hydra.sweep.subdir` may nest them)."""
    found = []
    for err in sorted(Path(sweep_dir).rglob("error.txt")):
        try:
            st = err.stat()
        except FileNotFoundError:  # a cell of a concurrent launch cleared it meanwhile
            continue
        found.append((err.absolute(), st.st_ino, st.st_mtime_ns))
    return found


def existing_errors(sweep_dir: Path) -> frozenset:
    """The error.txt files under `sweep_dir` now, before a launch: `record_sweep` skips them."""
    return frozenset(_error_files(sweep_dir))


def record_sweep(sweep_dir: Path, existing: AbstractSet[ErrorFile] = frozenset()) -> None:
    """Record every run directory under `sweep_dir` with an error.txt that is not in `existing`."""
    for found in _error_files(sweep_dir):
        if found not in existing:
            record(found[0].parent)


def failed() -> List[Path]:
    return list(_failed)


class CellsCallback(Callback):
    """Where a launch's cells went (sweep_dirs.py), and which of them failed, with any launcher."""

    def __init__(self) -> None:
        # error.txt files in the launch's sweep dir before it started: an earlier launch's failures
        self._existing: frozenset = frozenset()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        launch_dir = Path(str(config.hydra.sweep.dir))
        self._existing = existing_errors(launch_dir)
        sweep_dirs.start(launch_dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        launch_dir = Path(str(config.hydra.sweep.dir))
        for sweep_dir in sweep_dirs.launched(launch_dir) or [launch_dir]:
            # the cells a cluster launcher ran in jobs of their own; not an earlier launch's
            record_sweep(sweep_dir, self._existing if sweep_dir == launch_dir else frozenset())
        os.environ.pop(sweep_dirs.ENV, None)
