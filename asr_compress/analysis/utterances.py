"""Per-utterance view: which utterances broke when a component was cut, and how the errors shifted.

    from asr_compress.analysis.utterances import broken_utterances, error_shift, group_wer
    broken_utterances(sweep).head(20)   # biggest regressions first, with REF / both HYPs
    error_shift(sweep)                  # per cut: broke / fixed / unchanged, delta S/D/I
    group_wer(sweep)                    # WER per voice group (seen/unseen) and run

"Cutting a component" compares the run where only that component is compressed (at a given level)
with the baseline, utterance by utterance (matched by id). Errors = S + D + I.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional

import numpy as np
import pandas as pd

from asr_compress.analysis.collect import NONE, Sweep

ERR_COLS = ("substitutions", "deletions", "insertions")


def single_cut_runs(sweep: Sweep) -> pd.DataFrame:
    """component, level, run_id of the finished runs with exactly one factor compressed."""
    rows = []
    ok = sweep.ok
    for c in sweep.factors:
        others = [f for f in sweep.factors if f != c]
        for level in sweep.levels[c]:
            if level == NONE:
                continue
            sel = ok[(ok[c] == level) & ((ok[others] == NONE).all(axis=1) if others else True)]
            if len(sel):
                rows.append({"component": c, "level": level, "run_id": str(sel.index[0])})
    return pd.DataFrame(rows, columns=["component", "level", "run_id"])


def _errors(df: pd.DataFrame) -> pd.DataFrame:
    df = df.drop_duplicates("id").set_index("id")
    out = pd.DataFrame(index=df.index)
    for c in ERR_COLS:
        out[c] = pd.to_numeric(df.get(c), errors="coerce")
    out["errors"] = out[list(ERR_COLS)].sum(axis=1, min_count=3)
    for c in ("ref", "hyp", "group", "n_ref_words"):
        out[c] = df[c] if c in df else np.nan
    return out


def paired_utterances(sweep: Sweep, run_id: str) -> Optional[pd.DataFrame]:
    """Baseline and `run_id` side by side on their common utterance ids (None without data)."""
    if sweep.baseline not in sweep.utterances or run_id not in sweep.utterances:
        return None
    base = _errors(sweep.utterances[sweep.baseline])
    cut = _errors(sweep.utterances[run_id])
    both = base.join(cut, how="inner", lsuffix="_baseline", rsuffix="_cut")
    for c in (*ERR_COLS, "errors"):
        both[f"delta_{c}"] = both[f"{c}_cut"] - both[f"{c}_baseline"]
    return both


def broken_utterances(sweep: Sweep, component: Optional[str] = None) -> pd.DataFrame:
    """Utterances whose errors increased when one component alone was cut, worst first."""
    cols = ["component", "level", "run_id", "id", "group", "errors_baseline", "errors_cut", "delta_errors",
            "delta_substitutions", "delta_deletions", "delta_insertions", "ref", "hyp_baseline", "hyp_cut"]
    parts: List[pd.DataFrame] = []
    for _, cut in single_cut_runs(sweep).iterrows():
        if component is not None and cut["component"] != component:
            continue
        both = paired_utterances(sweep, cut["run_id"])
        if both is None:
            continue
        broke = both[both["delta_errors"] > 0].reset_index()
        broke["component"], broke["level"], broke["run_id"] = cut["component"], cut["level"], cut["run_id"]
        broke["group"], broke["ref"] = broke["group_baseline"], broke["ref_baseline"]
        parts.append(broke[cols])
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["component", "level", "delta_errors", "id"], ascending=[True, True, False, True],
                           ignore_index=True)


def error_shift(sweep: Sweep) -> pd.DataFrame:
    """Per single cut: utterances broke / fixed / unchanged and the shift in S, D, I (counts and points)."""
    cols = ["component", "level", "run_id", "n_utterances", "broke", "fixed", "unchanged", "delta_substitutions",
            "delta_deletions", "delta_insertions", "delta_errors", "delta_wer_pct"]
    rows = []
    for _, cut in single_cut_runs(sweep).iterrows():
        both = paired_utterances(sweep, cut["run_id"])
        if both is None:
            continue
        words = pd.to_numeric(both["n_ref_words_baseline"], errors="coerce").sum()
        d = both["delta_errors"]
        rows.append({"component": cut["component"], "level": cut["level"], "run_id": cut["run_id"],
                     "n_utterances": len(both), "broke": int((d > 0).sum()), "fixed": int((d < 0).sum()),
                     "unchanged": int((d == 0).sum()),
                     **{f"delta_{c}": float(both[f"delta_{c}"].sum()) for c in (*ERR_COLS, "errors")},
                     "delta_wer_pct": 100.0 * d.sum() / words if words else np.nan})
    return pd.DataFrame(rows, columns=cols)


def group_wer(sweep: Sweep) -> pd.DataFrame:
    """WER (%) per run (rows, by label) and utterance group (columns); empty when no run has groups.
    Runs that share a label (a sweep over decoding settings: every run is the `baseline`) are told
    apart as `label (run_id)`, as the report's WER table does, not averaged into one row."""
    rows = []
    for r, df in sweep.utterances.items():
        if "group" not in df or df["group"].isna().all():
            continue
        e = _errors(df)
        e["group"] = e["group"].fillna("(none)")
        g = e.groupby("group")[["errors", "n_ref_words"]].sum()
        for name, x in g.iterrows():
            rows.append({"run_id": r, "label": sweep.runs.at[r, "label"], "group": name,
                         "wer_pct": 100.0 * x["errors"] / x["n_ref_words"] if x["n_ref_words"] else np.nan})
    if not rows:
        return pd.DataFrame()
    long = pd.DataFrame(rows)
    ids = list(dict.fromkeys(long["run_id"]))
    labels = {r: sweep.runs.at[r, "label"] for r in ids}
    if len(set(labels.values())) < len(ids):
        labels = {r: f"{lab} ({r})" for r, lab in labels.items()}
    long["label"] = long["run_id"].map(labels)
    order = [labels[r] for r in sweep.runs.index if r in labels]
    return long.pivot_table(index="label", columns="group", values="wer_pct").reindex(order)


def group_sweeps(sweep: Sweep) -> Dict[str, Sweep]:
    """One sub-sweep per utterance group (voice group `seen`/`unseen`): the same runs, restricted to
    that group's utterances, with `wer_pct` recomputed from them (NaN for runs without utterances).

    Feed each to `attribute(sub, metrics=["wer_pct"], samples=paired_bootstrap(sub, metrics=["wer_pct"]))`
    to see which cut hurts which group. Timings are not split: they are per run, not per group.
    """
    groups = sorted({g for df in sweep.utterances.values() if "group" in df for g in df["group"].dropna().unique()})
    out: Dict[str, Sweep] = {}
    for g in groups:
        utts = {r: df[df["group"] == g] for r, df in sweep.utterances.items() if "group" in df}
        runs = sweep.runs.copy()
        runs["wer_pct"] = np.nan
        for r, df in utts.items():
            e = _errors(df)
            words = e["n_ref_words"].astype(float).sum()
            runs.at[r, "wer_pct"] = 100.0 * e["errors"].sum() / words if words else np.nan
        out[str(g)] = dataclasses.replace(sweep, runs=runs, utterances=utts)
    return out
