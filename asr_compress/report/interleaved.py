"""The latency attribution of a sweep timed side by side, for the report of the same sweep.

A sweep runs its cells one after another, so the machine's drift between runs lands on the
components the later runs cut, and the report's bootstrap intervals (over utterances) do not see
it. Two tools time the cells again in one process, taking turns per utterance in shuffled order
(`asr_compress/evaluate/interleave.py`) over several rounds, and attribute the
time within each round:
- `asr-compress-retime SWEEP` (`report/retime.py`) rebuilds every finished cell of any sweep from its
  own config and writes `SWEEP/interleaved/bench.json` with a `sweep` section, one entry per grid;
- `benchmarks/bench_methods.py --factorial` times every on/off combination of some components under
  one method, without a sweep, and writes a `factorial` section.
`asr-compress-report --interleaved bench.json` (or, without the flag, `SWEEP/interleaved/bench.json`
when it is there) puts those numbers in the summary. The file must describe the same study: same
model and data, and the same components and methods (grids).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from asr_compress.analysis.attribution import blocked_reasons, grids
from asr_compress.analysis.collect import NONE, TIME_PARTS, Sweep
from asr_compress.errors import InterleavedMismatch
from asr_compress.report.tables import pretty

log = logging.getLogger(__name__)


def load_interleaved(path: Union[str, Path], sweep: Sweep) -> Dict:
    """bench.json's header and its grids (a `factorial` section becomes one grid), checked against the
    sweep; errors name the field."""
    path = Path(path)
    try:
        bench = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InterleavedMismatch(f"{path}: not readable as JSON ({exc})") from exc
    if not isinstance(bench, dict) or not (bench.get("sweep") or bench.get("factorial")):
        raise InterleavedMismatch(f"{path}: no 'sweep' or 'factorial' section (write it with asr-compress-retime "
                                  "SWEEP, or benchmarks/bench_methods.py --factorial)")
    first = sweep.ok.iloc[0] if len(sweep.ok) else sweep.runs.iloc[0]
    for key in ("model", "data"):
        ours = first.get(f"config.{key}.name")
        if ours is not None and bench.get(key) != ours:
            raise InterleavedMismatch(f"{path}: {key} {bench.get(key)} differs from the sweep's {ours}")
    if bench.get("sweep"):
        theirs = [g["grid"] for g in bench["sweep"]["grids"]]
        ours = [g.name for g in grids(sweep)]
        if theirs != ours:
            raise InterleavedMismatch(f"{path}: grids {'; '.join(theirs) or 'none'} differ from the sweep's "
                                      f"{'; '.join(ours) or 'none'} (retime it again: asr-compress-retime SWEEP)")
        return dict(bench, grids=bench["sweep"]["grids"], source="sweep")
    fact = bench["factorial"]
    if set(fact["components"]) != set(sweep.factors):
        raise InterleavedMismatch(f"{path}: components {', '.join(fact['components'])} differ from the "
                                  f"sweep's factors {', '.join(sweep.factors) or 'none'}")
    methods = {lv for c in sweep.factors for lv in sweep.levels[c] if lv != NONE}
    if methods != {fact["method"]}:
        raise InterleavedMismatch(f"{path}: method {fact['method']} differs from the sweep's "
                                  f"{', '.join(sorted(methods))}")
    grid = {"grid": ",".join(f"{c}={fact['method']}" for c in fact["components"]),
            "components": fact["components"], "kind": "shapley", "ms": fact["shapley_ms"], "untimed": []}
    return dict(bench, grids=[grid], source="factorial")


def default_out(sweep_dir: Union[str, Path]) -> Path:
    """Where `asr-compress-retime` writes bench.json unless told otherwise, and where the report looks."""
    return Path(sweep_dir) / "interleaved"


def study_home(sweep_dirs: Sequence[Path], report_out: Union[str, Path, None]) -> Path:
    """The folder whose `interleaved/` holds the study's side-by-side timing: its sweep directory, or,
    for a study read from several sweep directories, the folder of its combined report (no one of
    them owns a timing of all their cells)."""
    if len(sweep_dirs) == 1:
        return Path(sweep_dirs[0])
    if report_out is None:
        raise ValueError("a study of several sweep directories needs the folder of its combined report")
    return Path(report_out)


def find_interleaved(sweep_dir: Path, sweep: Sweep) -> Optional[Tuple[Dict, Path]]:
    """`SWEEP/interleaved/bench.json` when `asr-compress-retime` wrote one for this sweep; a stale one
    (the sweep has changed since) is named in a warning and left out."""
    path = default_out(sweep_dir) / "bench.json"
    if not path.is_file():
        return None
    try:
        return load_interleaved(path, sweep), path
    except InterleavedMismatch as exc:
        log.warning("not citing the side-by-side timing: %s", exc)
        return None


# bench.json's `interleave`: how the cells took turns (files written before it was recorded: per round)
PER_UTTERANCE = "per utterance"


def schedule(bench: Dict) -> str:
    """How the cells took turns, in words, for the file at hand."""
    if bench.get("interleave") == PER_UTTERANCE:
        return (f"each of {bench['utterances']} utterances decoded by every cell back to back in a shuffled "
                f"order, {bench['rounds']} rounds in one process")
    return f"in each of {bench['rounds']} shuffled rounds of {bench['utterances']} utterances in one process"


def side_by_side_latency(bench: Dict) -> Optional[Tuple[Dict[str, float], str]]:
    """({run_id: mean ms per utterance}, how) from an `asr-compress-retime` file, for the WER-vs-latency
    figure: the baseline's median over rounds plus each run's median difference from the baseline
    within a round (medians of each run's own times can come from different rounds and put a run
    that is slower in every round left of the baseline). None for a `--factorial` file, whose cells
    are not the sweep's runs, or when the baseline was not retimed."""
    import numpy as np

    runs = bench.get("sweep", {}).get("runs")
    base = next((r for r in (runs or {}).values() if r["label"] == "baseline"), None)
    if base is None:
        return None
    b = [t["total"] for t in base["ms_per_utt"]]
    ms = {rid: float(np.median(b) + np.median([t["total"] - bt for t, bt in zip(r["ms_per_utt"], b)]))
          for rid, r in runs.items()}
    how = f"first {bench['utterances']} utterances timed side by side, {bench['rounds']} rounds"
    return ms, how


def _grid_sentence(g: Dict) -> Optional[str]:
    ms = g["ms"]
    order = sorted(ms, key=lambda c: -abs(ms[c]["total"]["median"]))
    if not order:
        return None
    alone = " alone" if g["kind"] == "alone" else ""

    def one(c: str) -> str:
        t = ms[c]["total"]
        verb = "saved" if t["median"] < 0 else "added"
        note = "; the range includes 0" if t["min"] <= 0 <= t["max"] else ""
        return f"the {pretty(c)} cut{alone} {verb} {abs(t['median']):.1f} ms ({t['min']:+.1f} to {t['max']:+.1f}{note})"

    untimed = "; not timed: " + ", ".join(g["untimed"]) if g.get("untimed") else ""
    return "; ".join(one(c) for c in order) + untimed


def interleaved_summary(bench: Dict, path: Union[str, Path]) -> str:
    """One summary paragraph: per grid, each component's time effect, median [min to max] over rounds."""
    what = ("every finished cell with real kernels" if bench["source"] == "sweep" else "every combination")
    kinds = {g["kind"] for g in bench["grids"]}
    value = ("Shapley value of the time per round" if kinds == {"shapley"} else
             "each cut alone against the baseline per round (no Shapley split: not every cell of the grid "
             "was timed)"
             if kinds == {"alone"} else
             "per round the Shapley value where every cell of the grid was timed, else the cut alone")
    head = (f"**mean latency, timed side by side** (`{path}`: {what}, {schedule(bench)}; "
            f"{value}, median and range over rounds): ")
    several = len(bench["grids"]) > 1
    sentences, untimed = [], []
    for g in bench["grids"]:
        s = _grid_sentence(g)
        if s is None:
            untimed.append(g)
        else:
            sentences.append(f"`{g['grid']}`: {s}." if several else f"{s}.")
    if untimed:
        sentences.append("Not timed: " + "; ".join(
            (f"`{g['grid']}` ({untimed_reasons(g)})" if several else untimed_reasons(g)) for g in untimed) + ".")
    return head + " ".join(sentences) + (" Cite these for latency: the sequential runs above also carry the "
                                         "machine's drift between runs.")


def untimed_reasons(g: Dict) -> str:
    """The untimed cells' reasons, once each: "simulated kernel, no speed-up" for a kernel-less method."""
    return ", ".join(blocked_reasons(["; ".join(g.get("untimed", []))])) or "no cell"


def interleaved_section(bench: Dict) -> List[str]:
    """The side-by-side timing per time part, one table per grid."""
    s = ["## Latency timed side by side", "",
         f"Each cut's effect on the time per utterance (ms; negative = the cut saves time), in total and in "
         f"each part of the decode, computed within each round ({schedule(bench)}), then median [min to max] over "
         "rounds. A cut that moves a part it does not run by more than the rounds' range points to an "
         "interaction: the search took other paths.", ""]
    blank = []
    for g in bench["grids"]:
        if not g["ms"]:  # nothing timed (e.g. a kernel-less method): named once below, no empty table
            blank.append(g)
            continue
        untimed = f"not timed: {', '.join(g['untimed'])}" if g.get("untimed") else ""
        if len(bench["grids"]) > 1:
            s += [f"`{g['grid']}`" + (f": {untimed}" if untimed else ""), ""]
        elif untimed:
            s += [untimed[0].upper() + untimed[1:], ""]
        s += [*interleaved_table(g), ""]
    if blank:
        s += ["No cut timed in " + "; ".join(f"`{g['grid']}` ({untimed_reasons(g)})" for g in blank) + ".", ""]
    return s


def interleaved_table(grid: Dict) -> List[str]:
    """Markdown lines: per component cut, its time effect in total and per time part (ms/utt; negative =
    the cut saves time), median [min to max] over rounds. A cut that moves another part by more than
    the rounds' range shows an interaction (the search took other paths), not noise."""
    def cell(span: Optional[Dict[str, float]]) -> str:
        return "n/a" if span is None else f"{span['median']:+.1f} [{span['min']:+.1f} to {span['max']:+.1f}]"

    head = "component cut" + (" (alone)" if grid["kind"] == "alone" else "")
    lines = [f"| {head} | total | " + " | ".join(TIME_PARTS) + " |", "|---|---|" + "---|" * len(TIME_PARTS)]
    for c in grid["components"]:
        if c in grid["ms"]:
            sv = grid["ms"][c]
            lines.append(f"| {c} | {cell(sv.get('total'))} | " + " | ".join(cell(sv.get(k)) for k in TIME_PARTS) + " |")
    return lines
