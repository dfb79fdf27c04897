"""Command-line entry points (thin wrappers over run.run_experiment).

    asr-compress                                     # default model on the default test set
    asr-compress encoder=int8_dynamic decode.beam_size=10
    asr-compress -m encoder=none,int8_dynamic lm=none,int8_dynamic
"""
from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from asr_compress import failed_cells
from asr_compress.config import PROJECT_ROOT, register_configs
from asr_compress.errors import AsrCompressError

register_configs()
# torch/ESPnet deprecation chatter is not the user's business; real problems raise.
for _category in (FutureWarning, DeprecationWarning, UserWarning):
    warnings.filterwarnings("ignore", category=_category)


def _only_hydra_files(out_dir: Path) -> bool:
    return all(p.name == ".hydra" or p.suffix == ".log" for p in out_dir.iterdir())


@hydra.main(version_base="1.3", config_path=str(PROJECT_ROOT / "conf"), config_name="config")
def _app(cfg: DictConfig) -> float:
    from asr_compress.run import run_experiment, summary_line

    hc = HydraConfig.get()
    out_dir = Path(hc.runtime.output_dir)
    failed_cells.clear_outputs(out_dir)
    try:
        metrics = run_experiment(cfg, out_dir)
    except AsrCompressError as e:
        print(f"asr-compress: error: {e}", file=sys.stderr)
        if hc.mode == RunMode.MULTIRUN:
            # one bad cell must not waste the rest of a sweep: record it, the report lists it, and
            # the sweep's exit status says that numbers are missing (failed_cells.py)
            (out_dir / "error.txt").write_text(str(e) + "\n")
            failed_cells.record(out_dir)
            return float("nan")
        if out_dir.is_dir() and _only_hydra_files(out_dir):
            shutil.rmtree(out_dir)
        sys.exit(2)
    print(summary_line(metrics))
    print(f"wrote {out_dir / 'metrics.json'}")
    return metrics["wer"]


def main() -> None:
    _app()
    failed = failed_cells.failed()
    if failed:
        print(f"asr-compress: error: {len(failed)} run(s) of the sweep failed; their error.txt: "
              + ", ".join(str(d / "error.txt") for d in failed), file=sys.stderr)
        sys.exit(1)


def report_main() -> None:
    from asr_compress.report.cli import report_main as _report_main

    _report_main()


def retime_main() -> None:
    from asr_compress.report.retime import retime_main as _retime_main

    _retime_main()
