"""The latency attribution of a factorial timed side by side, for the report of the same sweep.

A sweep runs its cells one after another, so the machine's drift between runs lands on the
components the later runs cut, and the report's bootstrap intervals (over utterances) do not see
it. `benchmarks/bench_methods.py --factorial` times every cell in each of several shuffled rounds
in one process and writes each component's Shapley value of the time per round to bench.json;
`asr-compress-report --interleaved bench.json` puts those numbers in the summary, next to the
sweep's. The file must describe the same study: same components, method, model and data.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Union

from asr_compress.analysis.collect import NONE, Sweep
from asr_compress.errors import InterleavedMismatch
from asr_compress.report.tables import pretty


def load_interleaved(path: Union[str, Path], sweep: Sweep) -> Dict:
    """bench.json's factorial section and header, checked against the sweep; errors name the field."""
    path = Path(path)
    try:
        bench = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InterleavedMismatch(f"{path}: not readable as JSON ({exc})") from exc
    fact = bench.get("factorial") if isinstance(bench, dict) else None
    if not fact:
        raise InterleavedMismatch(f"{path}: no 'factorial' section (write it with "
                                  "benchmarks/bench_methods.py --factorial)")
    if set(fact["components"]) != set(sweep.factors):
        raise InterleavedMismatch(f"{path}: components {', '.join(fact['components'])} differ from the "
                                  f"sweep's factors {', '.join(sweep.factors) or 'none'}")
    methods = {lv for c in sweep.factors for lv in sweep.levels[c] if lv != NONE}
    if methods != {fact["method"]}:
        raise InterleavedMismatch(f"{path}: method {fact['method']} differs from the sweep's "
                                  f"{', '.join(sorted(methods))}")
    first = sweep.ok.iloc[0] if len(sweep.ok) else sweep.runs.iloc[0]
    for key in ("model", "data"):
        ours = first.get(f"config.{key}.name")
        if ours is not None and bench.get(key) != ours:
            raise InterleavedMismatch(f"{path}: {key} {bench.get(key)} differs from the sweep's {ours}")
    return bench


def interleaved_summary(bench: Dict, path: Union[str, Path]) -> str:
    """One summary paragraph: each component's Shapley value of the time, median [min to max] over rounds."""
    shap = bench["factorial"]["shapley_ms"]
    order = sorted(shap, key=lambda c: -abs(shap[c]["total"]["median"]))

    def one(c: str) -> str:
        t = shap[c]["total"]
        verb = "saved" if t["median"] < 0 else "added"
        note = "; the range includes 0" if t["min"] <= 0 <= t["max"] else ""
        return f"the {pretty(c)} cut {verb} {abs(t['median']):.1f} ms ({t['min']:+.1f} to {t['max']:+.1f}{note})"

    return (f"**mean latency, timed side by side** (`{path}`: every combination in each of "
            f"{bench['rounds']} shuffled rounds of {bench['utterances']} utterances in one process; Shapley "
            f"value of the time per round, median and range over rounds): " + "; ".join(one(c) for c in order)
            + ". Cite these for latency: the sequential runs above also carry the machine's drift "
            "between runs.")
