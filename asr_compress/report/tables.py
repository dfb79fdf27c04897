"""Markdown tables for the report: the ESPnet-style WER table and the attribution tables.

    from asr_compress.report.tables import wer_table
    print(wer_table(sweep))

No third-party table package: `markdown_table` writes GitHub markdown from a DataFrame.
Numbers that were not measured are written `n/a`, never 0.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence

import numpy as np
import pandas as pd

from asr_compress.analysis.attribution import Attribution, blocked_reasons
from asr_compress.analysis.collect import Sweep, same_machine_as_baseline, simulated_runs

NA = "n/a"


def ngram_in_search(ngram_file, ngram_weight) -> bool:
    """Whether a run's search added an n-gram's scores: a file named and a weight other than 0.

    Read from metrics.json (None when no file) or from a sweep's config columns (NA, None or NaN
    for runs without one, or made before model.ngram_file existed).
    """
    if not isinstance(ngram_file, str) or ngram_file in ("", NA):
        return False
    try:
        weight = float(ngram_weight)
    except (TypeError, ValueError):
        return False
    return weight == weight and weight != 0  # NaN (a missing column value) is no weight

# Display names of components and metrics (units in the name)
PRETTY = {"lm": "LM", "ctc": "CTC", "frontend": "frontend", "encoder": "encoder", "decoder": "decoder"}
METRIC_NAMES = {
    "wer_pct": "WER (points)", "cer_pct": "CER (points)", "latency_ms.mean": "latency (ms/utt)",
    "time_breakdown_ms.frontend": "time: frontend (ms/utt)", "time_breakdown_ms.encoder": "time: encoder (ms/utt)",
    "time_breakdown_ms.decoder": "time: decoder scoring (ms/utt)", "time_breakdown_ms.ctc": "time: CTC prefix scoring (ms/utt)",
    "time_breakdown_ms.lm": "time: LM scoring (ms/utt)", "time_breakdown_ms.search_other": "time: rest of search (ms/utt)",
    "time_breakdown_ms.total": "time: total (ms/utt)", "size_mb": "size (MB)",
}


def pretty(component: str) -> str:
    return PRETTY.get(component, component)


def fmt(x, spec: str = ".2f") -> str:
    if x is None or (isinstance(x, (float, np.floating)) and np.isnan(x)):
        return NA
    if isinstance(x, (int, float, np.integer, np.floating)):
        # display only: float noise (-1e-16) must not print as "-0.00"
        return format(0.0 if abs(x) < 1e-9 else x, spec)
    return str(x)


def fmt_ci(lo, hi, spec: str = "+.2f") -> str:
    if lo is None or hi is None or np.isnan(lo) or np.isnan(hi):
        return NA
    return f"[{fmt(lo, spec)}, {fmt(hi, spec)}]"


def markdown_table(df: pd.DataFrame, formats: Optional[Dict[str, Callable]] = None,
                   align: Optional[Sequence[str]] = None) -> str:
    """DataFrame -> GitHub markdown; `formats`: column -> callable(value) -> str."""
    formats = formats or {}
    cols = list(df.columns)
    lines = ["|" + "|".join(str(c) for c in cols) + "|"]
    aligns = align or ["---:" if pd.api.types.is_numeric_dtype(df[c]) else "---" for c in cols]
    lines.append("|" + "|".join(aligns) + "|")
    for _, row in df.iterrows():
        cells = [formats[c](row[c]) if c in formats else fmt(row[c]) for c in cols]
        lines.append("|" + "|".join(cell.replace("|", "\\|") for cell in cells) + "|")
    return "\n".join(lines)


def _num(row: pd.Series, key: str) -> float:
    v = row.get(key, np.nan)
    try:
        return float(v)
    except (TypeError, ValueError):
        return np.nan


def wer_table(sweep: Sweep) -> str:
    """|run|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err| in percent (ESPnet style), plus params, size, speed, memory."""
    rows = []
    speedup = _speedups(sweep)
    for rid, r in sweep.runs.iterrows():
        snt, wrd = _num(r, "n_utterances"), _num(r, "n_words")
        pct = (lambda k: 100.0 * _num(r, k) / wrd if wrd else np.nan)
        err = 100.0 * (_num(r, "substitutions") + _num(r, "deletions") + _num(r, "insertions")) / wrd if wrd else np.nan
        if np.isnan(err):
            err = _num(r, "wer_pct")
        rows.append({
            "run": f"{r['label']} ({rid})" if r["status"] == "ok" else f"{r['label']} ({rid}, FAILED)",
            "Snt": snt, "Wrd": wrd, "Corr": pct("hits"), "Sub": pct("substitutions"), "Del": pct("deletions"),
            "Ins": pct("insertions"), "Err": err,
            "S.Err": 100.0 * _num(r, "sentence_errors") / snt if snt else np.nan,
            "Params (M)": _num(r, "params_total") / 1e6, "Size (MB)": _num(r, "size_mb"),
            "Latency (ms/utt)": _num(r, "latency_ms.mean"), "Speed-up": speedup.get(rid, np.nan),
            "RTF": _num(r, "rtf"),
            "Peak RSS (MB)": _num(r, "peak_rss_mb"),
        })
    df = pd.DataFrame(rows)
    f1 = lambda x: fmt(x, ".1f")  # noqa: E731
    formats = {c: f1 for c in ("Corr", "Sub", "Del", "Ins", "Err", "S.Err", "Latency (ms/utt)")}
    formats.update({"Snt": lambda x: fmt(x, ".0f"), "Wrd": lambda x: fmt(x, ".0f"),
                    "Params (M)": lambda x: fmt(x, ".2f"), "Size (MB)": lambda x: fmt(x, ".2f"),
                    "RTF": lambda x: fmt(x, ".3f"), "Peak RSS (MB)": lambda x: fmt(x, ".0f"),
                    "Speed-up": lambda x: x if isinstance(x, str) else NA if fmt(x) == NA else fmt(x, ".2f") + "x"})
    return markdown_table(df, formats) + _rss_note(sweep)


def _rss_note(sweep: Sweep) -> str:
    """Below the table, when runs of a sweep did not record a peak of their own: their column is the
    process's peak since it started, and a multirun's runs share one process."""
    ok = sweep.ok
    if len(ok) < 2 or "peak_rss_mb" not in ok:
        return ""
    scope = ok["peak_rss_scope"] if "peak_rss_scope" in ok else pd.Series(np.nan, index=ok.index)
    if (scope == "run").all():
        return ""
    return ("\n\nPeak RSS: not every run recorded a peak of its own (`peak_rss_scope: run` in metrics.json, "
            "Linux): for those the column is the process's peak since it started, and the runs of a multirun "
            "share one process, so it only rises along the sweep.")


def _speedups(sweep: Sweep) -> Dict[str, float]:
    """Baseline mean latency / run mean latency, only for runs timed on the baseline's machine;
    "simulated" for runs whose compressed kernels are simulated (dense float32 timing)."""
    if sweep.baseline is None or "latency_ms.mean" not in sweep.runs:
        return {}
    lat = pd.to_numeric(sweep.runs["latency_ms.mean"], errors="coerce")
    same = same_machine_as_baseline(sweep)
    sim = simulated_runs(sweep)
    return {rid: ("simulated" if sim[rid] else lat[sweep.baseline] / lat[rid] if same[rid] and lat[rid] > 0
                  else np.nan) for rid in lat.index}


def _grid_table(att: Attribution, grid: str) -> pd.DataFrame:
    return att.table[att.table["grid"] == grid]


def shapley_table(att: Attribution, grid: str, metric: str) -> str:
    """Per component: Shapley value, effect alone, main effect (with CIs), then interactions and total."""
    t = _grid_table(att, grid)
    t = t[t["metric"] == metric]
    rows = []
    g = next(g for g in att.grids if g.name == grid)
    sv = lambda x: fmt(x, "+.2f")  # noqa: E731  (NaN -> n/a: blocked; "" below: does not apply)
    for c in g.factors:
        sh = t[(t["kind"] == "shapley") & (t["term"] == c)].iloc[0]
        al = t[(t["kind"] == "moebius") & (t["term"] == c)].iloc[0]
        me = t[(t["kind"] == "main_effect") & (t["term"] == c)].iloc[0]
        rows.append({"term": f"{pretty(c)} ({g.levels[c]})", "Shapley": sv(sh["value"]),
                     "Shapley 95% CI": fmt_ci(sh["ci_low"], sh["ci_high"]), "alone vs baseline": sv(al["value"]),
                     "alone 95% CI": fmt_ci(al["ci_low"], al["ci_high"]), "main effect": sv(me["value"])})
    for _, x in t[(t["kind"] == "moebius") & (t["order"] >= 2)].iterrows():
        name = " x ".join(pretty(c) for c in x["components"].split("+"))
        rows.append({"term": f"interaction {name}", "Shapley": "", "Shapley 95% CI": "",
                     "alone vs baseline": sv(x["value"]), "alone 95% CI": fmt_ci(x["ci_low"], x["ci_high"]),
                     "main effect": ""})
    tot = t[t["kind"] == "total"].iloc[0]
    rows.append({"term": "**total (all cut vs baseline)**", "Shapley": sv(tot["value"]),
                 "Shapley 95% CI": fmt_ci(tot["ci_low"], tot["ci_high"]), "alone vs baseline": "",
                 "alone 95% CI": "", "main effect": ""})
    if t[t["kind"] == "shapley"]["value"].isna().all():
        # a one-at-a-time study (or a factorial that lost many cells): only the effects alone and
        # any interaction whose cells all finished are numbers; a table of n/a rows hides them
        k = len(g.factors)
        keep = rows[:k] + [r for r in rows[k:-1] if r["alone vs baseline"] != NA]
        df = pd.DataFrame(keep)[["term", "alone vs baseline", "alone 95% CI"]]
        why = blocked_reasons(t["blocked_by"])
        see = "; see Missing runs" if {"absent", "failed"} & set(why) else ""
        return (markdown_table(df, align=["---", "---:", "---"]) + "\n\nShapley values and main effects need "
                f"every combination of cuts measured, and here some are not ({'; '.join(why)}{see}): the table "
                "shows the effects that were measured, `attribution.csv` has every term."
                + (" `study=factorial` runs every combination." if "absent" in why else ""))
    out = markdown_table(pd.DataFrame(rows), align=["---", "---:", "---", "---:", "---", "---:"])
    blocked = t[t["blocked_by"] != ""]
    if len(blocked):
        cells = sorted({c for b in blocked["blocked_by"] for c in b.split("; ")})
        out += ("\n\n`n/a`: not computable, these cells are missing: " + ", ".join(f"`{c}`" for c in cells))
    return out


def metrics_shapley_table(att: Attribution, grid: str, metrics: Sequence[str],
                          names: Dict[str, str] = METRIC_NAMES) -> str:
    """One row per metric (named by `names`): total change and each component's Shapley value with its CI."""
    t = _grid_table(att, grid)
    g = next(g for g in att.grids if g.name == grid)
    rows = []
    for metric in metrics:
        m = t[t["metric"] == metric]
        if m.empty:
            continue
        tot = m[m["kind"] == "total"].iloc[0]
        row = {"metric": names.get(metric, metric), "total change": with_ci(tot)}
        for c in g.factors:
            row[pretty(c)] = with_ci(m[(m["kind"] == "shapley") & (m["term"] == c)].iloc[0])
        rows.append(row)
    if not rows or all(v == NA for r in rows for k, v in r.items() if k != "metric"):
        return ""  # nothing computable (a one-at-a-time study): no table of n/a
    return markdown_table(pd.DataFrame(rows), align=["---"] + ["---:"] * (len(g.factors) + 1))


def with_ci(x: pd.Series) -> str:
    v = fmt(x["value"], "+.2f")
    if v == NA or np.isnan(x["ci_low"]):
        return v
    return f"{v} {fmt_ci(x['ci_low'], x['ci_high'])}"


def missing_table(att: Attribution, sweep: Optional[Sweep] = None, one_at_a_time: bool = False) -> str:
    """Missing cells, the terms each blocks, and the run's error message when it left one.

    `one_at_a_time` (a one-at-a-time design, `report/cuts.py`): the combinations of two or more cuts
    are absent by design and only counted (`missing_runs.csv` lists them); the table keeps the
    baseline and single cuts that failed, once each, whatever the sub-grids they sit in. Failed runs
    that no grid cell needs (a sweep over decoding settings, a repeated cell) follow in a list of
    their own: a failure is never left out of the report."""
    stray = _stray_failures(att, sweep)
    tail = "\n\nFailed runs that no grid cell needs:\n\n" + stray if stray else ""
    if att.missing.empty:
        return ("None: every cell of the grid has a finished run." if not stray else
                "No grid cell is missing, but these runs failed:\n\n" + stray)
    df = att.missing.copy()
    note = ""
    if one_at_a_time:
        combos = df["cell"].str.contains("+", regex=False)
        n = df.loc[combos, "cell"].nunique()
        note = (f"{n} combinations of two or more cuts are absent by design (a one-at-a-time study; "
                "`missing_runs.csv` lists them): `study=factorial` runs them.\n\n") if n else ""
        df = df[~combos].drop_duplicates("cell")
        if df.empty:
            return note + "Every cut and the baseline have a finished run." + tail
    elif (df["status"] == "absent").all() and all(c.count("+") >= 1 for c in df["cell"]):
        note = ("Only runs with two or more components cut are absent, as in a one-at-a-time study: "
                "run the factorial study (`study=factorial`) for the interaction terms and Shapley values.\n\n")
    df["blocks"] = df["blocks"].str.replace("moebius:", "term:", regex=False)
    # one at a time: a missing cut blocks its own effect alone (and, per sub-grid, terms that need
    # combinations absent anyway), so the blocks column would only repeat the cell
    cols = ["cell", "status", "run_id"] + ([] if one_at_a_time else ["blocks"])
    if sweep is not None and "error" in sweep.runs and sweep.runs["error"].notna().any():
        df["error"] = [_run_error(sweep, r, "") for r in df["run_id"]]
        cols.insert(3, "error")
    return note + markdown_table(df[cols].fillna(NA)) + tail


def _stray_failures(att: Attribution, sweep: Optional[Sweep]) -> str:
    """Markdown list of failed runs absent from `att.missing`, each with its error line."""
    if sweep is None:
        return ""
    listed = set(att.missing["run_id"].dropna())
    failed = [r for r in sweep.runs.index if sweep.runs.at[r, "status"] != "ok" and r not in listed]
    return "\n".join(f"- run `{r}` ({sweep.runs.at[r, 'label']}): {_run_error(sweep, r, '(no error.txt)')}"
                     for r in failed)


def _run_error(sweep: Sweep, run_id, default: str) -> str:
    """The first line of the run's error.txt (collect.load_run), else `default`."""
    runs = sweep.runs
    if "error" in runs and run_id in runs.index and pd.notna(runs.at[run_id, "error"]):
        return runs.at[run_id, "error"]
    return default
