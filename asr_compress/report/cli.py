"""`asr-compress-report`: write the report of a finished sweep.

    asr-compress-report multirun/2026-11-22/21-40-00
    asr-compress-report exp/factorial --out results/factorial_study --resamples 2000
    asr-compress-report exp/factorial --interleaved results/factorial_study/interleaved/bench.json
    asr-compress-report multirun/A multirun/B --out studies/AB     # several multiruns as one study

Exit codes: 0 report written, 2 bad directory or --interleaved file (one error line naming it), 1 report failed.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional, Tuple

PROG = "asr-compress-report"


def _at_least(low: int):
    """An argparse type: an integer >= low, else argparse's one-line usage error (exit 2)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value}: valid: an integer >= {low}")
        return value
    return parse


def add_bootstrap_by(p: argparse.ArgumentParser, help: str) -> None:
    """--bootstrap-by, as this command and asr-compress-retime (for the report it rewrites) take it."""
    from asr_compress.analysis import BOOTSTRAP_UNITS

    p.add_argument("--bootstrap-by", choices=BOOTSTRAP_UNITS, default=BOOTSTRAP_UNITS[0], help=help)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Collect the runs of a sweep and write runs.csv, "
                                "attribution.csv, REPORT.md and the figures.")
    p.add_argument("sweep_dir", nargs="+", help="a Hydra multirun directory (or one run directory); several are "
                   "read as one study (e.g. a baseline sweep and a later one adding a method; needs --out)")
    p.add_argument("--out", default=None, help="output directory (default: the sweep directory)")
    p.add_argument("--resamples", type=_at_least(1), default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=_at_least(0), default=0, help="bootstrap seed (default 0)")
    add_bootstrap_by(p, "what a bootstrap resample draws: utterances (default), or speakers with all their "
                        "utterances (needs utt2spk; wider, more honest intervals on a test set of few speakers)")
    p.add_argument("--no-plots", action="store_true", help="tables only, no PNG figures")
    p.add_argument("--interleaved", default=None, metavar="BENCH_JSON",
                   help="bench.json of `benchmarks/bench_methods.py --factorial` over the same components "
                        "and method: the summary cites its latency attribution, timed side by side")
    return p


def sweep_dir_problem(sweep: Path) -> Optional[str]:
    """Why `sweep` is not a sweep (or run) directory the tools can read, else None."""
    from asr_compress.analysis.collect import find_run_dirs

    if not sweep.exists():
        return "no such directory"
    if not sweep.is_dir():
        return "not a directory"
    if not find_run_dirs(sweep):
        from asr_compress.sweep_dirs import launched

        elsewhere = launched(sweep)  # a sweep over models or test sets filed its cells by them
        if elsewhere:
            return (f"no run directories in it; this launch's cells went to {' '.join(map(str, elsewhere))} "
                    "(its sweep_dirs.txt): report each, or them together with --out")
        return "no run directories in it (expected <run>/.hydra/config.yaml)"
    return None


def sweep_dirs_problem(sweeps: List[Path], out: Optional[str], out_flag: str,
                       what: str = "the folder of their combined report") -> Optional[Tuple[Path, str]]:
    """(the directory, why) for the first given sweep directory the tools cannot read; several
    directories without `out_flag` (`what` it names has no one home among them) name the first."""
    for sweep in sweeps:
        problem = sweep_dir_problem(sweep)
        if problem:
            return sweep, problem
    if len(sweeps) > 1 and out is None:
        return sweeps[0], f"{len(sweeps)} sweep directories: give {out_flag} DIR, {what} (no one of them holds it)"
    return None


def report_main(argv: Optional[List[str]] = None) -> None:
    """Console-script entry: exits with run_report's code (also when a wrapper ignores return values)."""
    sys.exit(run_report(argv))


def run_report(argv: Optional[List[str]] = None) -> int:
    """Parse `argv`, write the report; returns the exit code (0 written, 1 report failed, 2 bad dir)."""
    args = _parser().parse_intermixed_args(argv)  # sweep folders before and after options
    sweeps = [Path(d) for d in args.sweep_dir]
    found = sweep_dirs_problem(sweeps, args.out, "--out")
    if found is None and args.interleaved is not None and not Path(args.interleaved).is_file():
        found = Path(args.interleaved), "--interleaved: no such file"
    if found:
        print(f"{PROG}: error: {found[0]}: {found[1]}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from asr_compress.errors import InterleavedMismatch
    from asr_compress.report.write import write_report

    try:
        path = write_report(sweeps, args.out, n_resamples=args.resamples, seed=args.seed, bootstrap_by=args.bootstrap_by,
                            plots_enabled=not args.no_plots, interleaved=args.interleaved)
    except InterleavedMismatch as exc:  # a wrong file, not a failed report: one line, nothing written
        print(f"{PROG}: error: --interleaved {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - one clear line, then the traceback for debugging
        logging.getLogger(PROG).exception("report failed for %s", " ".join(args.sweep_dir))
        print(f"{PROG}: error: {' '.join(args.sweep_dir)}: report failed ({type(exc).__name__}: {exc})",
              file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    report_main()
