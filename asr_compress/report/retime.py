"""`asr-compress-retime SWEEP`: time a finished sweep's cells again, side by side, for its report.

    asr-compress-retime multirun/default/synth_test/2026-12-06_22-40-00            # 6 rounds x 16 utterances
    asr-compress-retime SWEEP --rounds 10 --utterances 30 --out results/my_study/interleaved
    asr-compress-retime SWEEP_A SWEEP_B --report-out studies/AB     # several sweeps as one study
    asr-compress -m encoder=none,int8_dynamic lm=none,int8_dynamic hydra.callbacks.report.retime_rounds=6

A sweep decodes its cells one after another, so the machine's drift between runs (warming up,
throttling, a neighbour's job) lands on whichever component the later cells cut, and the report's
bootstrap intervals, which resample utterances, cannot see it. This rebuilds every finished cell of
the sweep from its own `.hydra/config.yaml` (same model, data and decoding; each component compressed
as that run was) in one process and decodes the first `--utterances` utterances with all of them in
`--rounds` rounds, every utterance by every cell back to back in a shuffled order
(`asr_compress.evaluate.interleave`). Each grid's attribution
of the time is computed within each round, where every cell saw the same machine, and reported as the
median and range over rounds: the exact Shapley values where every cell of the grid was timed, else
each cut alone against the baseline (a one-at-a-time study). Writes `<out>/bench.json` (default out:
`SWEEP/interleaved`, which `asr-compress-report SWEEP` then finds by itself) and rewrites the report.
Several sweep directories are one study, as `asr-compress-report A B --out C` reads them: their cells
are timed together, bench.json goes to `C/interleaved` and the combined report to C (`--report-out C`).
A cell that two of them both ran (each sweep's own baseline) is timed once, as the report uses the first.

Not retimed: failed runs, and runs with a `simulated` kernel (their time is dense float32's, never a
speed-up claim). Every cell lives in memory at once: the loaded model, plus in each cell a copy of
the components it cuts (the others are shared, `Pipeline.copy(cut=...)`); if that does not fit, retime
a sub-grid by pointing at a sweep directory that holds only its runs.

Exit codes: 0 written, 2 bad sweep directory or options (one error line naming them), 1 timing failed.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from asr_compress import COMPONENTS
from asr_compress.analysis.attribution import Grid, apply_terms, grids, terms_and_coefficients
from asr_compress.analysis.collect import NONE, TIME_PARTS, Sweep, as_dirs, collect, repeated_cells, simulated_runs
from asr_compress.errors import AsrCompressError
from asr_compress.report.cli import add_bootstrap_by, sweep_dirs_problem
from asr_compress.report.interleaved import PER_UTTERANCE, default_out, study_home

PROG = "asr-compress-retime"
log = logging.getLogger(__name__)

# config values that change what is timed or how: every retimed cell must share them (the method of
# each component is what differs); bookkeeping such as eval.progress or eval.repeats may differ
SHARED_CONTEXT = ("config.model.", "config.data.dir", "config.decode.", "config.eval.device", "config.eval.num_threads")


def cells_to_time(sweep: Sweep) -> Dict[str, str]:
    """{run_id: why not} for the runs that are not retimed; raises when there is nothing to compare."""
    if sweep.baseline is None:
        raise AsrCompressError(f"{sweep.root}: no finished baseline run (every component `none`); the "
                               "attribution compares each cell with it")
    simulated = simulated_runs(sweep)
    skipped = {rid: "failed" for rid in sweep.runs.index if sweep.runs.at[rid, "status"] != "ok"}
    skipped.update({rid: "simulated kernel, no speed-up" for rid in sweep.ok.index if simulated.get(rid, False)})
    for rid, first in repeated_cells(sweep).items():  # the report uses the first; a copy adds only time
        skipped.setdefault(rid, f"same cell as {first}")
    varying = [k for k in sweep.varying_context if k.startswith(SHARED_CONTEXT)]
    if varying:
        raise AsrCompressError(f"{sweep.root}: the runs differ in {', '.join(varying)}; side-by-side timing "
                               "compares the methods of one study (same model, data, decoding, device, threads)")
    if len(sweep.runs) - len(skipped) < 2:
        raise AsrCompressError(f"{sweep.root}: fewer than two runs with real kernels to time side by side")
    return skipped


def _run_config(run_dir: Path):
    """The run's typed model/data/decode/eval sections and its component methods (plain mappings,
    validated by the registry when applied), from `.hydra/config.yaml`."""
    from omegaconf import OmegaConf

    from asr_compress.config import Config
    from asr_compress.run import to_config

    saved = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    conf = to_config(OmegaConf.merge(OmegaConf.structured(Config), saved))
    methods = {c: OmegaConf.to_container(saved[c], resolve=True) if c in saved else {"name": NONE} for c in COMPONENTS}
    return conf, methods


def _per_utt(times: List[Dict[str, float]], n: int) -> List[Dict[str, float]]:
    return [{k: v / n for k, v in t.items()} for t in times]


def grid_attribution(g: Grid, ms: Dict[str, List[Dict[str, float]]], skipped: Dict[str, str]) -> Dict[str, Any]:
    """One grid's time attribution from per-round ms/utt of its cells (`ms`: run_id -> rounds): per
    component and time part, median/min/max over rounds of the Shapley value (every cell timed) or
    of the cut alone against the baseline (`kind`: "shapley" or "alone"). `untimed`: the cells the
    reported terms needed and did not get, each with why (`skipped`: run_id -> why; else "absent")."""
    from asr_compress.evaluate.interleave import spread

    timed = [rid is not None and st == "ok" and rid in ms for rid, st in zip(g.run_ids, g.status)]
    rounds = len(next(iter(ms.values())))
    full = all(timed)
    terms, coef = terms_and_coefficients(g.factors)
    if full:
        kind, order = "shapley", g.k
        rows = [j for j, t in enumerate(terms) if t.kind == "shapley"]
    else:  # each cut alone: the Möbius terms of order 1, which need the baseline and that one cell
        kind, order = "alone", 1
        rows = [j for j, t in enumerate(terms) if t.kind == "moebius" and t.order == 1]
    out: Dict[str, Dict[str, Dict[str, float]]] = {}
    for part in (*TIME_PARTS, "total"):
        vals = np.array([[ms[rid][r][part] if ok else np.nan for rid, ok in zip(g.run_ids, timed)]
                         for r in range(rounds)])
        per_round = apply_terms(vals, coef)  # rounds x terms; a term on an untimed cell is NaN
        for j in rows:
            comp = terms[j].components[0]
            if not np.isnan(per_round[:, j]).any():
                out.setdefault(comp, {})[part] = spread(per_round[:, j])
    untimed = [f"{g.cell_label(m)} ({skipped.get(rid, 'absent') if rid else 'absent'})"
               for m, (rid, ok) in enumerate(zip(g.run_ids, timed)) if not ok and bin(m).count("1") <= order]
    return {"grid": g.name, "components": list(g.factors), "levels": dict(g.levels), "kind": kind, "ms": out,
            "untimed": untimed}


def retime(sweep_dir: Union[str, Path, Sequence[Union[str, Path]]], rounds: int = 6, utterances: int = 16,
           out: Union[str, Path, None] = None, seed: int = 0, command: Optional[str] = None) -> Path:
    """Time the sweep's cells side by side; writes and returns `<out>/bench.json`. `sweep_dir` may be a
    list of sweep directories, one study (`collect`); `out` is then needed."""
    import torch

    from asr_compress.evaluate.data import load_test_set, read_audio
    from asr_compress.evaluate.environment import environment, usable_cpus
    from asr_compress.evaluate.interleave import decoder_of, time_interleaved
    from asr_compress.evaluate.timing import Clock
    from asr_compress.pipeline import load_pipeline
    from asr_compress.quiet import silenced
    from asr_compress.run import calibrate, calibration_users

    if rounds < 1 or utterances < 1:
        raise AsrCompressError(f"--rounds {rounds} --utterances {utterances}: both must be >= 1")
    dirs = as_dirs(sweep_dir)
    if len(dirs) > 1 and out is None:
        raise AsrCompressError(f"{len(dirs)} sweep directories: name the folder for bench.json (--out, or "
                               "--report-out, the folder of their combined report)")
    sweep = collect(dirs[0] if len(dirs) == 1 else dirs)
    skipped = cells_to_time(sweep)
    run_ids = [rid for rid in sweep.runs.index if rid not in skipped]
    conf, _ = _run_config(Path(sweep.runs.at[sweep.baseline, "run_dir"]))
    torch.set_num_threads(conf.eval.num_threads or usable_cpus())  # as the runs were (run.py)
    utts = load_test_set(conf.data)[:utterances]
    base = load_pipeline(conf.model, device=conf.eval.device)
    audio = [read_audio(u.audio, base.sample_rate) for u in utts]
    cells, calibrations = {}, {}
    for rid in run_ids:  # each as its run compressed it; the baseline is the loaded pipeline itself
        run_conf, methods = _run_config(Path(sweep.runs.at[rid, "run_dir"]))
        cut = {c: m for c, m in methods.items() if m.get("name", NONE) != NONE}
        calib = None
        if calibration_users(run_conf):  # distill: the same calibration decode as the run's, on the base
            key = (run_conf.calibration.dir, run_conf.calibration.limit)
            if key not in calibrations:
                calibrations[key] = calibrate(base, run_conf)
            calib = calibrations[key]
        p = base.copy(cut=cut) if cut else base  # cut components copied, the rest shared
        with silenced():
            for c, m in cut.items():
                p.compress_(c, m, calibration=calib)
        cells[rid] = p
    clock = Clock(conf.eval.device)
    jobs = {rid: decoder_of(p, audio, conf.decode, clock) for rid, p in cells.items()}
    log.info("timing %d cells side by side: %d rounds of %d utterances", len(jobs), rounds, len(audio))
    times, hyps = time_interleaved(jobs, len(audio), rounds, seed=seed, progress=log.info)
    ms = {rid: _per_utt(t, len(audio)) for rid, t in times.items()}
    runs, ids = {}, [u.id for u in utts]
    for rid in run_ids:
        mismatch = _hyp_mismatches(sweep, rid, ids, hyps[rid])
        if mismatch:
            log.warning("%s decoded %d of %d utterances differently from its run: its kernel's result depends "
                        "on the machine or the threads", sweep.runs.at[rid, "label"], mismatch, len(ids))
        runs[rid] = {"label": sweep.runs.at[rid, "label"], "ms_per_utt": ms[rid], "hyp_mismatches": mismatch}
    result = {
        "command": command or " ".join([PROG, *map(str, dirs), f"--rounds {rounds} --utterances {utterances}"]),
        "environment": environment(conf.eval.device), "model": conf.model.name, "data": conf.data.name,
        "utterances": len(audio), "rounds": rounds, "interleave": PER_UTTERANCE, "seed": seed,
        "sweep": {"dir": str(dirs[0]) if len(dirs) == 1 else [str(d) for d in dirs], "runs": runs,
                  "skipped": skipped,
                  "grids": [grid_attribution(g, ms, skipped) for g in grids(sweep)]},
    }
    out = Path(out) if out is not None else default_out(dirs[0])
    out.mkdir(parents=True, exist_ok=True)
    path = out / "bench.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def _hyp_mismatches(sweep: Sweep, rid: str, ids: Sequence[str], hyps: Sequence[str]) -> Optional[int]:
    """Utterances whose retimed hypothesis differs from the run's own (None: the run has no utterances.jsonl)."""
    table = sweep.utterances.get(rid)
    if table is None or "hyp_raw" not in table:
        return None
    theirs = dict(zip(table["id"], table["hyp_raw"]))
    return sum(1 for i, h in zip(ids, hyps) if i in theirs and theirs[i] != h)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Time a finished sweep's cells side by side in one process "
                                "(each utterance by every cell back to back, in rounds) and cite that latency attribution in its report.")
    p.add_argument("sweep_dir", nargs="+", help="a Hydra multirun directory whose runs finished; several are "
                   "one study, as asr-compress-report reads them (needs --report-out)")
    p.add_argument("--rounds", type=int, default=6, help="rounds; in each, every utterance is decoded by every cell in a shuffled order (default 6)")
    p.add_argument("--utterances", type=int, default=16,
                   help="utterances per cell per round: the first N of the sweep's test set (default 16)")
    p.add_argument("--out", default=None, help="folder for bench.json (default: SWEEP/interleaved; for several "
                   "sweeps, REPORT_OUT/interleaved)")
    p.add_argument("--seed", type=int, default=0, help="seed of the rounds' orders (default 0)")
    p.add_argument("--report-out", default=None, help="where the report is rewritten (default: the sweep "
                   "directory; needed for several)")
    p.add_argument("--no-report", action="store_true", help="write bench.json only")
    add_bootstrap_by(p, "the rewritten report's bootstrap draws, as asr-compress-report's option (default utterance)")
    return p


def retime_main(argv: Optional[List[str]] = None) -> None:
    """Console-script entry."""
    sys.exit(run_retime(argv))


def run_retime(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_intermixed_args(argv)  # sweep folders before and after options
    sweeps = [Path(d) for d in args.sweep_dir]
    # --no-report with --out needs no report folder; else several sweeps need --report-out
    found = (sweep_dirs_problem(sweeps, args.out, "--out", "the folder for their bench.json") if args.no_report
             else sweep_dirs_problem(sweeps, args.report_out, "--report-out"))
    if found is None and (args.rounds < 1 or args.utterances < 1):
        found = sweeps[0], f"--rounds {args.rounds} --utterances {args.utterances}: both must be >= 1"
    if found:
        print(f"{PROG}: error: {found[0]}: {found[1]}", file=sys.stderr)
        return 2
    shown = " ".join(args.sweep_dir)
    out = args.out if args.out is not None else default_out(study_home(sweeps, args.report_out))
    # our progress at INFO; ESPnet's beam search logs every hypothesis at INFO, which is noise here
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("asr_compress").setLevel(logging.INFO)
    command = " ".join([PROG, *(argv if argv is not None else sys.argv[1:])])
    try:
        bench = retime(sweeps, rounds=args.rounds, utterances=args.utterances, out=out, seed=args.seed,
                       command=command)
    except AsrCompressError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - one clear line, then the traceback for debugging
        log.exception("timing failed for %s", shown)
        print(f"{PROG}: error: {shown}: timing failed ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    print(bench)
    if not args.no_report:
        from asr_compress.report.write import write_report

        try:
            print(write_report(sweeps, args.report_out, interleaved=bench, bootstrap_by=args.bootstrap_by))
        except Exception as exc:  # noqa: BLE001 - the timing is kept; the report can be written again
            log.exception("report failed for %s", shown)
            retry = " ".join(["asr-compress-report", shown, *(["--out", args.report_out] if args.report_out else [])])
            print(f"{PROG}: error: {shown}: the timing is in {bench}, but the report failed "
                  f"({type(exc).__name__}: {exc}); retry with {retry}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    retime_main()
