"""Command-line entry points (thin wrappers over run.run_experiment).

    asr-compress                                     # default model on the default test set
    asr-compress encoder=int8_dynamic decode.beam_size=10
    asr-compress -m encoder=none,int8_dynamic lm=none,int8_dynamic
"""
from __future__ import annotations

import shutil
import sys
import traceback
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from asr_compress import failed_cells, sweep_dirs
from asr_compress.config import PROJECT_ROOT, fill_labels, model_label_of, register_configs
from asr_compress.errors import AsrCompressError

# torch/ESPnet deprecation chatter is not the user's business; real problems raise.
for _category in (FutureWarning, DeprecationWarning, UserWarning):
    warnings.filterwarnings("ignore", category=_category)


def _only_hydra_files(out_dir: Path) -> bool:
    return all(p.name == ".hydra" or p.suffix == ".log" for p in out_dir.iterdir())


@hydra.main(version_base="1.3", config_path=str(PROJECT_ROOT / "conf"), config_name="config")
def _app(cfg: DictConfig) -> float:
    hc = HydraConfig.get()
    warn_decode_weights(hc.runtime.choices.get("decode"), cfg)
    multirun = hc.mode == RunMode.MULTIRUN
    if multirun:  # a cell of a swept model or test set may be filed in a sweep directory of its own
        sweep_dirs.note(Path(str(hc.sweep.dir)))
    return run_cell(cfg, Path(hc.runtime.output_dir), multirun=multirun)


def warn_decode_weights(decode_choice, cfg: DictConfig) -> None:
    """decode=default_model (the default) holds the weights tuned for the shipped model; another
    model decoded with them, its length bonus above all, gives a WER nobody tuned it for."""
    label = model_label_of(cfg.model)
    if decode_choice == "default_model" and label != "default":
        print(f"asr-compress: warning: decode=default_model holds the weights tuned for the shipped model "
              f"(lm_weight {cfg.decode.lm_weight}, penalty {cfg.decode.penalty}, ngram_weight {cfg.decode.ngram_weight}); "
              f"model '{label}' is another one: pass decode=generic (ESPnet's defaults) or weights tuned on its "
              "dev set (README, 'Tuning the decoding weights')", file=sys.stderr)


def run_cell(cfg: DictConfig, out_dir: Path, multirun: bool) -> float:
    """One run, alone or as a cell of a sweep: its WER, NaN for a failed cell.

    Alone, a bad input exits with status 2 and one line, and anything else raises with its
    traceback. In a sweep, one cell must not waste the others' compute, so any failure, a bad
    parameter or an unexpected one (CUDA out of memory, a bug in a method of your own), writes
    error.txt and the sweep goes on; the report lists the cell, and the sweep's exit status says
    that numbers are missing (failed_cells.py). Ctrl-C (KeyboardInterrupt) still stops the sweep.
    """
    from asr_compress.resume import finished_run
    from asr_compress.run import run_experiment, summary_line

    failure = None
    try:
        _name_runs(cfg, out_dir)
        done = finished_run(cfg, out_dir) if cfg.get("resume") else None
        if done is not None:
            print(f"resume=true: reusing {out_dir / 'metrics.json'} (same settings, test set, model files and code)")
            print(summary_line(done))
            return done["wer"]
        failed_cells.clear_outputs(out_dir)
        metrics = run_experiment(cfg, out_dir)
    except AsrCompressError as e:
        print(f"asr-compress: error: {e}", file=sys.stderr)
        if multirun:
            return _fail_cell(out_dir, str(e))
        if out_dir.is_dir() and _only_hydra_files(out_dir):
            shutil.rmtree(out_dir)
        sys.exit(2)
    except Exception as e:
        if not multirun:
            raise
        tb = traceback.format_exc()
        print(f"asr-compress: error: this cell failed unexpectedly, the sweep goes on:\n{tb}", file=sys.stderr)
        # first line for the report's tables, then the traceback for whoever debugs it
        head = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        failure = f"{head}\n\n{tb}"
    if failure is not None:
        _release_memory()  # outside `except`: the traceback no longer holds the failed cell's model
        return _fail_cell(out_dir, failure)
    print(summary_line(metrics))
    print(f"wrote {out_dir / 'metrics.json'}")
    return metrics["wer"]


def _name_runs(cfg: DictConfig, out_dir: Path) -> None:
    """Fill a null model.name / data.name with its label (config.fill_labels), in the saved config too.

    Hydra has already written .hydra/config.yaml with the nulls; the report and the analysis read
    that file as plain YAML, so it is written again with the labels this run's folder is named by.
    """
    fill_labels(cfg)
    saved = out_dir / ".hydra" / "config.yaml"
    if saved.is_file():
        OmegaConf.save(cfg, saved)


def _release_memory() -> None:
    """Free what a failed cell held (its model, on the GPU too) before the next cell loads its own."""
    import gc

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _fail_cell(out_dir: Path, text: str) -> float:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "error.txt").write_text(text.rstrip("\n") + "\n")
    failed_cells.record(out_dir)
    return float("nan")


def main() -> None:
    try:
        # here rather than at import: a method plugin that fails to load (compress/plugins.py) is
        # one line and exit status 2, and asr-compress-report, which needs no methods, is unaffected
        register_configs()
    except AsrCompressError as e:
        print(f"asr-compress: error: {e}", file=sys.stderr)
        sys.exit(2)
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
