"""Hydra callback: write the report when a multirun ends.

Wire it in the main config (or on the command line):

    hydra:
      callbacks:
        report:
          _target_: asr_compress.report.callback.ReportCallback
          # out_dir: results/my_study   # default: the sweep dir itself

The runs are already safe on disk when the callback fires, so a failing report does not fail the
sweep: it is logged at ERROR level with the traceback and the command that retries it. (Hydra 1.3
itself catches exceptions from callbacks and turns them into a mere warning, so re-raising would
not fail the sweep either; logging clearly is the only signal that reliably reaches the user.)
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)


class ReportCallback(Callback):
    def __init__(self, out_dir: Optional[str] = None, n_resamples: int = 1000, seed: int = 0,
                 plots: bool = True) -> None:
        self.out_dir = out_dir
        self.n_resamples = n_resamples
        self.seed = seed
        self.plots = plots

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        try:
            from asr_compress.report.write import write_report  # lazy: matplotlib only when reporting

            path = write_report(sweep_dir, self.out_dir, n_resamples=self.n_resamples, seed=self.seed,
                                plots_enabled=self.plots)
        except Exception as exc:
            retry = f"asr-compress-report {sweep_dir}" + (f" --out {self.out_dir}" if self.out_dir else "")
            log.exception("REPORT FAILED for sweep %s (%s: %s); the runs are intact, retry with: %s",
                          sweep_dir, type(exc).__name__, exc, retry)
            return
        log.info("Report written: %s", path)
