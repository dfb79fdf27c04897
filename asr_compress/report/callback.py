"""Hydra callback: write the report when a multirun ends.

Wire it in the main config (or on the command line):

    hydra:
      callbacks:
        report:
          _target_: asr_compress.report.callback.ReportCallback
          # out_dir: results/my_study   # default: the sweep dir itself
          # retime_rounds: 6             # time the finished cells again side by side first

`retime_rounds=N` (e.g. `hydra.callbacks.report.retime_rounds=6` on the command line) runs
`asr-compress-retime` on the sweep before the report: the finished cells decode the first
`retime_utterances` utterances in N rounds in this process, every utterance by every cell back to
back in a shuffled order, so the report's latency attribution is free of the machine's drift
between the sequential runs. It costs about N x retime_utterances decodes per cell, and in memory a copy of
the components each cell cuts.

The runs are already safe on disk when the callback fires, so a failing report does not fail the
sweep: it is logged at ERROR level with the traceback and the command that retries it. (Hydra 1.3
itself catches exceptions from callbacks and turns them into a mere warning, so re-raising would
not fail the sweep either; logging clearly is the only signal that reliably reaches the user.)
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, List, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from asr_compress import sweep_dirs

log = logging.getLogger(__name__)


class ReportCallback(Callback):
    def __init__(self, out_dir: Optional[str] = None, n_resamples: int = 1000, seed: int = 0,
                 plots: bool = True, retime_rounds: int = 0, retime_utterances: int = 16,
                 bootstrap_by: str = "utterance") -> None:
        from asr_compress.analysis import BOOTSTRAP_UNITS  # the package alone: no numpy/pandas at start-up

        # checked when the sweep starts, not when its report is written after the last cell
        if bootstrap_by not in BOOTSTRAP_UNITS:
            raise ValueError(f"hydra.callbacks.report.bootstrap_by={bootstrap_by!r}; valid: {', '.join(BOOTSTRAP_UNITS)}")
        self.bootstrap_by = bootstrap_by
        self.out_dir = out_dir
        self.n_resamples = n_resamples
        self.seed = seed
        self.plots = plots
        # 0: no side-by-side timing (the report then warns that its latency carries the drift)
        self.retime_rounds = retime_rounds
        # utterances per cell per round: the first N of the test set
        self.retime_utterances = retime_utterances

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        launch_dir = Path(str(config.hydra.sweep.dir))
        # a sweep over models or test sets files each one's cells in a sweep directory of its own,
        # listed by failed_cells.CellsCallback (sweep_dirs.py): one study, and one report, per directory
        dirs = sweep_dirs.launched(launch_dir) or [launch_dir]  # none with runs: the report says so
        for sweep_dir in dirs:
            self._report(sweep_dir, self._out(sweep_dir, dirs))

    def _out(self, sweep_dir: Path, dirs: List[Path]) -> Optional[Path]:
        """out_dir, or for one of several sweep directories, its path under their common parent there."""
        if self.out_dir is None:
            return None
        if len(dirs) == 1:
            return Path(self.out_dir)
        common = Path(os.path.commonpath([d.absolute() for d in dirs]))
        return Path(self.out_dir) / sweep_dir.absolute().relative_to(common)

    def _report(self, sweep_dir: Path, out_dir: Optional[Path]) -> None:
        if self.retime_rounds > 0:
            self._retime(sweep_dir)
        try:
            from asr_compress.report.write import write_report  # lazy: matplotlib only when reporting

            path = write_report(sweep_dir, out_dir, n_resamples=self.n_resamples, seed=self.seed,
                                plots_enabled=self.plots, bootstrap_by=self.bootstrap_by)
        except Exception as exc:
            retry = f"asr-compress-report {sweep_dir}" + (f" --out {out_dir}" if out_dir else "")
            log.exception("REPORT FAILED for sweep %s (%s: %s); the runs are intact, retry with: %s",
                          sweep_dir, type(exc).__name__, exc, retry)
            return
        log.info("Report written: %s", path)

    def _retime(self, sweep_dir: Path) -> None:
        """Side-by-side timing before the report; a failure leaves the report uncited, not unwritten."""
        try:
            from asr_compress.report.retime import retime

            log.info("Retiming the sweep's cells side by side: %d rounds of %d utterances",
                     self.retime_rounds, self.retime_utterances)
            retime(sweep_dir, rounds=self.retime_rounds, utterances=self.retime_utterances)
        except Exception as exc:
            log.exception("RETIME FAILED for sweep %s (%s: %s); the report cites the sequential timing; retry "
                          "with: asr-compress-retime %s --rounds %d --utterances %d", sweep_dir,
                          type(exc).__name__, exc, sweep_dir, self.retime_rounds, self.retime_utterances)
