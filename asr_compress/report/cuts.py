"""The cut-by-cut view of a one-at-a-time study: one row per (component, method) cut, against one baseline.

A one-at-a-time study (`study=one_at_a_time`; `recipes/method_table`, `recipes/distill_study`) has no
run that cuts two components, so it measures each cut alone, and Shapley values and interactions
are undefined. The attribution (`analysis/attribution.py`) still builds one 2^k sub-grid per
combination of the components' methods, and a report written per sub-grid repeated the same
effects once per combination (8 times in the distillation study, 22 in the method table). The
report uses this view instead whenever `is_cut_by_cut` holds:

    from asr_compress.report.cuts import cut_rows, is_cut_by_cut
    if is_cut_by_cut(sweep):
        rows = cut_rows(sweep, paired_bootstrap(sweep), bench)   # one row per cut, CIs included

Sequential latency carries the machine's drift between runs; with `bench` (an `asr-compress-retime`
file of the same sweep) each cut also gets its effect timed side by side, which is the one to cite.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from asr_compress import COMPONENTS
from asr_compress.analysis.bootstrap import BootstrapSamples, paired_bootstrap
from asr_compress.analysis.collect import NONE, TIME_PARTS, Sweep, same_machine_as_baseline, simulated_runs
from asr_compress.analysis.utterances import group_sweeps
from asr_compress.report.tables import NA, fmt, fmt_ci, markdown_table, pretty

# the columns of `cut_rows`, in order
COLUMNS = ["component", "method", "run_id", "status", "wer_pct", "delta_wer", "wer_ci_low", "wer_ci_high",
           "delta_latency", "latency_ci_low", "latency_ci_high", "latency_note", "side_by_side",
           "delta_own_ms", "delta_size_mb"]


def _cut_count(sweep: Sweep) -> pd.Series:
    return (sweep.runs[sweep.factors] != NONE).sum(axis=1)


def is_cut_by_cut(sweep: Sweep) -> bool:
    """A one-at-a-time design with two or more cuts: every factor can be `none`, no run (finished or
    not) cuts two of them, and at least two runs cut one. A single cut keeps the grid summary (one
    grid, nothing repeated); a factor compressed in every run has no baseline to cut from."""
    if not sweep.factors or any(NONE not in sweep.levels[c] for c in sweep.factors):
        return False
    n = _cut_count(sweep)
    return bool((n <= 1).all() and (n == 1).sum() >= 2)


def _cut_of(sweep: Sweep, run_id: str) -> str:
    return next(c for c in sweep.factors if sweep.runs.at[run_id, c] != NONE)


def _order(sweep: Sweep, run_ids: List[str]) -> List[str]:
    """Components in pipeline order, then each component's methods in the sweep's level order."""
    def key(r: str):
        c = _cut_of(sweep, r)
        return COMPONENTS.index(c) if c in COMPONENTS else len(COMPONENTS), sweep.levels[c].index(sweep.runs.at[r, c])
    return sorted(run_ids, key=key)


def side_by_side_cuts(bench: Optional[Dict]) -> Dict[str, Dict[str, Dict[str, float]]]:
    """{run_id: {time part or "total": median/min/max over rounds of (run - baseline) within a round}}
    from an `asr-compress-retime` file (its per-round ms/utt of every timed cell); {} for a
    `--factorial` file, whose cells are not the sweep's runs, or without a timed baseline."""
    from asr_compress.evaluate.interleave import spread

    runs = (bench or {}).get("sweep", {}).get("runs") or {}
    base = next((r for r in runs.values() if r["label"] == "baseline"), None)
    if base is None:
        return {}
    out = {}
    for rid, r in runs.items():
        if r is base:
            continue
        out[rid] = {p: spread([t[p] - b[p] for t, b in zip(r["ms_per_utt"], base["ms_per_utt"])])
                    for p in (*TIME_PARTS, "total") if all(p in t for t in r["ms_per_utt"])}
    return out


def cut_rows(sweep: Sweep, samples: BootstrapSamples, bench: Optional[Dict] = None) -> pd.DataFrame:
    """One row per cut (COLUMNS): WER and its change against the baseline with a paired-bootstrap CI,
    the sequential latency change with its CI (NaN, with `latency_note`, for a simulated kernel or
    another machine: never read as a speed-up), the side-by-side change (`bench`), the change in the
    cut component's own time part, and the size change."""
    d = samples.delta_ci()
    d = d.set_index(["run_id", "metric"]) if len(d) else None
    same, simulated = same_machine_as_baseline(sweep), simulated_runs(sweep)
    sbs = side_by_side_cuts(bench)
    skipped = (bench or {}).get("sweep", {}).get("skipped") or {}
    base = sweep.baseline
    runs = sweep.runs
    n_cut = _cut_count(sweep)
    rows = []
    for rid in _order(sweep, [r for r in runs.index if n_cut[r] == 1]):
        c = _cut_of(sweep, rid)
        ok = runs.at[rid, "status"] == "ok"

        def delta(metric: str):
            if d is None or (rid, metric) not in d.index:
                return np.nan, np.nan, np.nan
            x = d.loc[(rid, metric)]
            return x["delta"], x["ci_low"], x["ci_high"]

        def plain(metric: str) -> float:
            if base is None or not ok or metric not in runs:
                return np.nan
            a, b = pd.to_numeric(pd.Series([runs.at[rid, metric], runs.at[base, metric]]), errors="coerce")
            return float(a - b)

        dw, wlo, whi = delta("wer_pct")
        dl, llo, lhi = delta("latency_ms.mean")
        own = plain(f"time_breakdown_ms.{c}")
        note = ("simulated kernel, no speed-up" if simulated.get(rid, False) else
                "timed on another machine" if not same.get(rid, True) else "")
        if note:
            dl = llo = lhi = own = np.nan
        side = sbs.get(str(rid), {}).get("total")
        rows.append({"component": c, "method": runs.at[rid, c], "run_id": rid, "status": runs.at[rid, "status"],
                     "wer_pct": runs.at[rid, "wer_pct"] if ok and "wer_pct" in runs else np.nan,
                     "delta_wer": dw, "wer_ci_low": wlo, "wer_ci_high": whi, "delta_latency": dl,
                     "latency_ci_low": llo, "latency_ci_high": lhi,
                     "latency_note": note or (skipped.get(str(rid), "") if bench and side is None else ""),
                     "side_by_side": side, "delta_own_ms": own, "delta_size_mb": plain("size_mb")})
    return pd.DataFrame(rows, columns=COLUMNS)


def _span(s: Optional[Dict[str, float]]) -> str:
    return NA if not s else f"{s['median']:+.1f} [{s['min']:+.1f} to {s['max']:+.1f}]"


def cut_table(rows: pd.DataFrame, own_names: Dict[str, str], side_by_side: bool) -> str:
    """The markdown table of `cut_rows`: one line per cut."""
    t = pd.DataFrame({
        "component": [pretty(c) for c in rows["component"]],
        "method": rows["method"],
        "WER (%)": [fmt(w) if st == "ok" else st for w, st in zip(rows["wer_pct"], rows["status"])],
        "Δ WER (points)": [fmt(x, "+.2f") for x in rows["delta_wer"]],
        "WER 95% CI": [fmt_ci(lo, hi) for lo, hi in zip(rows["wer_ci_low"], rows["wer_ci_high"])],
        "Δ latency, sequential (ms/utt)": [
            note if note and np.isnan(x) else fmt(x, "+.1f")
            for x, note in zip(rows["delta_latency"], rows["latency_note"])],
        "latency 95% CI": [fmt_ci(lo, hi, "+.1f") for lo, hi in zip(rows["latency_ci_low"], rows["latency_ci_high"])],
    })
    if side_by_side:
        t["Δ latency, side by side (ms/utt)"] = [
            _span(s) if s else (note or "not timed") for s, note in zip(rows["side_by_side"], rows["latency_note"])]
    t["Δ own time part (ms/utt)"] = [f"{fmt(x, '+.1f')} ({own_names.get(c, c)})" if not np.isnan(x) else NA
                                    for x, c in zip(rows["delta_own_ms"], rows["component"])]
    t["Δ size (MB)"] = [fmt(x, "+.2f") for x in rows["delta_size_mb"]]
    return markdown_table(t, align=["---", "---"] + ["---:"] * (len(t.columns) - 2))


def _best(rows: pd.DataFrame, col: str, key) -> List[Tuple[str, str, pd.Series]]:
    """Per component, the method(s) with the lowest `key(value)` of `col`, ties named together."""
    parts = []
    for c, sub in rows.groupby("component", sort=False):
        vals = sub[col].map(key).astype(float)
        if vals.notna().sum() < 2:  # one measured method is no comparison
            continue
        low = vals.min()
        tie = sub[np.isclose(vals, low, atol=0.005)]["method"].tolist()
        names = ", ".join(tie[:3]) + (f" and {len(tie) - 3} more" if len(tie) > 3 else "")
        parts.append((c, names, sub.loc[vals.idxmin()]))
    return parts


def _median(span) -> float:
    return span["median"] if isinstance(span, dict) else np.nan


def _latency_text(row: pd.Series, side_by_side: bool) -> str:
    if side_by_side:
        return _span(row["side_by_side"])
    return f"{fmt(row['delta_latency'], '+.1f')} {fmt_ci(row['latency_ci_low'], row['latency_ci_high'], '+.1f')}"


def cut_summary(sweep: Sweep, rows: pd.DataFrame, own_names: Dict[str, str],
                side_by_side: Optional[str] = None) -> str:
    """The Summary of a one-at-a-time study: what it measured, the cheapest cut per component, the table.
    `side_by_side`: where the side-by-side timing comes from (file and schedule), when the rows have it."""
    runs, base = sweep.runs, sweep.baseline
    n_cuts, n_ok = len(rows), int((rows["status"] == "ok").sum())
    if base is None:
        head = ("**A one-at-a-time study** without a finished baseline (nothing compressed): no cut's effect "
                "can be measured. See Missing runs and Warnings below.")
    else:
        lat = runs.at[base, "latency_ms.mean"] if "latency_ms.mean" in runs else np.nan
        size = runs.at[base, "size_mb"] if "size_mb" in runs else np.nan
        head = (f"**A one-at-a-time study**: {n_cuts} cuts ({n_ok} finished), each of one component with one "
                f"method, against one baseline (WER {fmt(runs.at[base, 'wer_pct'])}%, {fmt(lat, '.1f')} ms/utt, "
                f"{fmt(size)} MB). No run cuts two components, so these are effects alone: they need not add "
                "up when cuts are combined, and there are no Shapley values or interactions "
                "(`study=factorial` measures them).")
    out = [head]
    done = rows[rows["status"] == "ok"]
    cheap = _best(rows, "delta_wer", lambda x: x)
    if base is not None and len(done) and done["delta_wer"].notna().all() and (done["delta_wer"].abs() < 1e-9).all():
        # a short test set, cuts too light to flip a word: say so, not "least lost: all of them, +0.00"
        every = "every run" if len(done) == len(rows) else "every finished run"
        out.append(f"**WER**: {fmt(runs.at[base, 'wer_pct'])}% in {every}: no cut changed it.")
    elif cheap:
        out.append("**Least WER lost**, per component with several methods: " + "; ".join(
            f"{pretty(c)}: {names} ({fmt(r['delta_wer'], '+.2f')} points {fmt_ci(r['wer_ci_low'], r['wer_ci_high'])})"
            for c, names, r in cheap) + ".")
    timed = side_by_side is not None
    fast = _best(rows, "side_by_side", _median) if timed else _best(rows, "delta_latency", lambda x: x)
    if fast:
        how = "timed side by side, median [range] over rounds" if timed else "sequential runs, drift included"
        out.append(f"**Fastest cut**, per component with several methods ({how}; ms/utt against the baseline, "
                   "negative = faster): " + "; ".join(f"{pretty(c)}: {names} ({_latency_text(r, timed)})"
                                                      for c, names, r in fast) + ".")
    out.append(cut_table(rows, own_names, side_by_side is not None))
    out.append("Brackets: 95% paired-bootstrap CIs over utterances; they cover which utterances were drawn, "
               "not the machine's drift between the sequential runs." + (
                   f" Side by side ({side_by_side}): each cut minus the baseline within a round, median "
                   "[min to max] over rounds; cite these for latency." if side_by_side is not None else "")
               + " Own time part: the change in the part of the decode that the cut component runs itself "
               "(sequential runs).")
    return "\n\n".join(out)


def cut_groups(sweep: Sweep, n_resamples: int, seed: int, by: str = "utterance") -> str:
    """Markdown table: per cut, the WER change within each utterance group (voice group), with CIs."""
    groups = group_sweeps(sweep)
    if not groups:
        return ""
    cols: Dict[str, Dict[str, str]] = {}
    order: List[str] = []
    for g, sub in groups.items():
        d = paired_bootstrap(sub, n_resamples=n_resamples, seed=seed, metrics=["wer_pct"], by=by).delta_ci()
        d = d[d["metric"] == "wer_pct"].set_index("run_id")
        for rid in _order(sweep, [r for r in d.index if _cut_count(sweep).get(r, 0) == 1]):
            order.append(rid) if rid not in order else None
            cols.setdefault(g, {})[rid] = (f"{fmt(d.at[rid, 'delta'], '+.2f')} "
                                           f"{fmt_ci(d.at[rid, 'ci_low'], d.at[rid, 'ci_high'])}")
    if not order:
        return ""
    order = _order(sweep, order)
    t = pd.DataFrame({"component": [pretty(_cut_of(sweep, r)) for r in order],
                      "method": [sweep.runs.at[r, _cut_of(sweep, r)] for r in order],
                      **{f"Δ WER {g} (points)": [cols[g].get(r, NA) for r in order] for g in cols}})
    return markdown_table(t, align=["---", "---"] + ["---:"] * len(cols))


def cut_timing_section(rows: pd.DataFrame, bench: Dict, schedule: str) -> List[str]:
    """Markdown lines: each cut's side-by-side time effect in total and per time part (ms/utt)."""
    sbs = side_by_side_cuts(bench)
    timed = [r for _, r in rows.iterrows() if str(r["run_id"]) in sbs]
    s = ["## Latency timed side by side", "",
         f"Each cut's effect on the time per utterance (ms; negative = the cut saves time), in total and in "
         f"each part of the decode, computed within each round ({schedule}), then median [min to max] over "
         "rounds. A cut that moves a part it does not run by more than the rounds' range points to an "
         "interaction: the search took other paths.", ""]
    if timed:
        s += ["| component | method | total | " + " | ".join(TIME_PARTS) + " |",
              "|---|---|---|" + "---|" * len(TIME_PARTS)]
        for r in timed:
            ms = sbs[str(r["run_id"])]
            s.append(f"| {pretty(r['component'])} | {r['method']} | {_span(ms.get('total'))} | "
                     + " | ".join(_span(ms.get(p)) for p in TIME_PARTS) + " |")
        s.append("")
    untimed = [f"{pretty(r['component'])} {r['method']} ({r['latency_note'] or 'not timed'})"
               for _, r in rows.iterrows() if str(r["run_id"]) not in sbs]
    if untimed:
        s += ["Not timed: " + "; ".join(untimed) + ".", ""]
    return s
