"""Paired bootstrap over utterances: is a 0.3-point difference real?

    from asr_compress.analysis.bootstrap import paired_bootstrap
    samples = paired_bootstrap(sweep, n_resamples=1000, seed=0)
    samples.run_ci()        # WER (and latency, time parts) of each run with a 95% CI
    samples.delta_ci()      # each run minus the baseline, paired
    attribute(sweep, samples=samples)   # CIs for Shapley values and the other terms

Paired: every resample draws one set of utterance indices and applies it to every run, so
run-to-run differences keep their correlation (the same hard utterances in both). Each statistic
is recomputed per resample at corpus level: WER = sum(errors) / sum(ref words) over the drawn
utterances (not a mean of per-utterance WERs); latency and time parts are means per utterance.
Vectorised: a resample is a vector of draw counts per utterance, so all statistics for all runs
are one matrix product per chunk of resamples. Intervals are percentile intervals.

`by="speaker"` draws speakers instead (each with all of its utterances; speakers from the test
set's utt2spk): utterances of one speaker share their voice, so their errors are correlated, and
on a test set of few speakers (LibriSpeech test-clean: 40) resampling utterances alone gives
intervals narrower than a new set of speakers would bear out.

Only utterances present in every finished run (same ids) are used; `n_dropped` says how many
were left out. Point estimates in the report come from metrics.json; a run whose metrics
disagree with its own utterances.jsonl is listed in `problems`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from asr_compress.analysis import BOOTSTRAP_UNITS
from asr_compress.analysis.collect import TIME_PARTS, Sweep

# metric -> (numerator column(s) summed, denominator column or None for a mean over the utterances
# that have the value, scale); every statistic is sum(w * num) / sum(w * den) for draw counts w
UTTERANCE_METRICS: Dict[str, Tuple[Tuple[str, ...], Optional[str], float]] = {
    "wer_pct": (("substitutions", "deletions", "insertions"), "n_ref_words", 100.0),
    "cer_pct": (("char_errors",), "n_ref_chars", 100.0),
    "latency_ms.mean": (("latency_ms",), None, 1.0),
    **{f"time_breakdown_ms.{p}": ((f"time_breakdown_ms.{p}",), None, 1.0) for p in (*TIME_PARTS, "total")},
}

CHUNK = 250  # resamples per matrix product: bounds memory to CHUNK x n_utterances counts


@dataclass
class BootstrapSamples:
    run_ids: List[str]                       # runs with per-utterance data, in column order
    run_index: Dict[str, int]                # run_id -> column
    stats: Dict[str, np.ndarray]             # metric -> (n_resamples, n_runs) resampled statistic
    full: Dict[str, np.ndarray]              # metric -> (n_runs,) statistic on all utterances
    baseline: Optional[str]
    n_utterances: int
    n_dropped: int
    seed: int
    alpha: float = 0.05
    problems: List[str] = field(default_factory=list)
    by: str = "utterance"                    # what a resample draws: utterances, or speakers
    n_speakers: Optional[int] = None         # with by="speaker": how many

    def _interval(self, x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        return tuple(np.percentile(x, [100 * self.alpha / 2, 100 * (1 - self.alpha / 2)], axis=0))

    def run_ci(self) -> pd.DataFrame:
        """run_id, metric, estimate (all utterances), ci_low, ci_high."""
        rows = []
        for metric, s in self.stats.items():
            lo, hi = self._interval(s)
            for r, j in self.run_index.items():
                rows.append({"run_id": r, "metric": metric, "estimate": self.full[metric][j],
                             "ci_low": lo[j], "ci_high": hi[j]})
        return pd.DataFrame(rows, columns=["run_id", "metric", "estimate", "ci_low", "ci_high"])

    def delta_ci(self) -> pd.DataFrame:
        """Each run minus the baseline (paired): run_id, metric, delta, ci_low, ci_high, p_le_0.

        p_le_0 is the share of resamples where the delta is <= 0: near 0 means "really worse".
        """
        cols = ["run_id", "metric", "delta", "ci_low", "ci_high", "p_le_0"]
        if self.baseline not in self.run_index:
            return pd.DataFrame(columns=cols)
        b = self.run_index[self.baseline]
        rows = []
        for metric, s in self.stats.items():
            d = s - s[:, [b]]
            lo, hi = self._interval(d)
            p = (d <= 0).mean(axis=0)
            for r, j in self.run_index.items():
                rows.append({"run_id": r, "metric": metric, "delta": self.full[metric][j] - self.full[metric][b],
                             "ci_low": lo[j], "ci_high": hi[j], "p_le_0": p[j]})
        return pd.DataFrame(rows, columns=cols)


def resample_counts(n_items: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(n_resamples, n_items) draw counts: how often each item appears in each resample."""
    idx = rng.integers(0, n_items, size=(n_resamples, n_items))
    flat = idx + (np.arange(n_resamples) * n_items)[:, None]
    return np.bincount(flat.ravel(), minlength=n_resamples * n_items).reshape(n_resamples, n_items).astype(float)


def _matrices(sweep: Sweep, run_ids: Sequence[str], ids: Sequence[str], metric: str):
    num_cols, den_col, scale = UTTERANCE_METRICS[metric]
    num = np.empty((len(run_ids), len(ids)))
    den = np.ones((len(run_ids), len(ids)))
    for j, r in enumerate(run_ids):
        u = sweep.utterances[r].drop_duplicates("id").set_index("id").loc[list(ids)]
        if metric == "time_breakdown_ms.total" and metric not in u and "latency_ms" in u:
            u = u.assign(**{metric: u["latency_ms"]})  # an utterance's total time is its latency
        if not all(c in u for c in num_cols) or (den_col and den_col not in u):
            return None
        num[j] = u[list(num_cols)].apply(pd.to_numeric, errors="coerce").sum(axis=1, min_count=len(num_cols))
        if den_col:
            den[j] = pd.to_numeric(u[den_col], errors="coerce")
    if den_col is None:
        # a mean per utterance (latency, time parts): utterances without a timing (e.g. warm-up
        # ones left untimed) are left out of that run's mean: weight 0 in the denominator
        den = (~np.isnan(num)).astype(float)
        if (den.sum(axis=1) == 0).any():
            return None
        return np.nan_to_num(num), den, scale, True
    if np.isnan(num).any() or np.isnan(den).any():
        return None  # an error count not measured for some utterance: no CI rather than a wrong one
    return num, den, scale, True


def _speakers(sweep: Sweep, run_id: str, ids: Sequence[str]) -> np.ndarray:
    """Each utterance's speaker as an index 0..S-1 (from the run's utterances.jsonl `speaker`)."""
    utts = sweep.utterances[run_id].set_index("id")
    spk = utts["speaker"].reindex(ids) if "speaker" in utts else pd.Series(index=ids, dtype=object)
    missing = spk.isna()
    if missing.any():
        raise ValueError(f"bootstrap by speaker: {int(missing.sum())} of {len(ids)} utterances have no speaker "
                         f"(first: {spk.index[missing][0]}); valid: a test set with utt2spk, or by utterance")
    return pd.factorize(spk.astype(str))[0]


def paired_bootstrap(sweep: Sweep, n_resamples: int = 1000, seed: int = 0, alpha: float = 0.05,
                     metrics: Optional[Sequence[str]] = None, by: str = "utterance") -> BootstrapSamples:
    """Resample utterances, or speakers with all their utterances (`by`; the same draws for every
    run), and recompute each metric per run."""
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if by not in BOOTSTRAP_UNITS:
        raise ValueError(f"bootstrap by {by!r}; valid: {', '.join(BOOTSTRAP_UNITS)}")
    problems: List[str] = []
    run_ids = [r for r in sweep.runs.index if r in sweep.utterances and "id" in sweep.utterances[r]]
    ids: List[str] = []
    n_dropped = 0
    if run_ids:
        sets = [set(sweep.utterances[r]["id"]) for r in run_ids]
        common = set.intersection(*sets)
        ids = sorted(common)
        n_dropped = len(set.union(*sets)) - len(common)
        if n_dropped:
            problems.append(f"{n_dropped} utterance ids are not in every run; they are left out of the bootstrap: "
                            f"changes and intervals are over the {len(common)} utterances every run decoded, "
                            "while a run's own WER (%) is over its own")
    metrics = list(metrics) if metrics is not None else list(UTTERANCE_METRICS)
    stats: Dict[str, np.ndarray] = {}
    full: Dict[str, np.ndarray] = {}
    mats = {}
    if ids:
        for metric in metrics:
            m = _matrices(sweep, run_ids, ids, metric)
            if m is not None:
                mats[metric] = m
    speaker = _speakers(sweep, run_ids[0], ids) if by == "speaker" and ids else None
    n_speakers = int(speaker.max()) + 1 if speaker is not None else None
    if n_speakers == 1:  # every resample draws the one speaker: the intervals shrink to the point
        problems.append("bootstrap by speaker over 1 speaker: every resample is the whole set, so the intervals "
                        "collapse to the estimate and say nothing; draw by utterance, or test on more speakers")
    rng = np.random.default_rng(seed)
    chunks: Dict[str, List[np.ndarray]] = {m: [] for m in mats}
    done = 0
    while mats and done < n_resamples:
        b = min(CHUNK, n_resamples - done)
        # a drawn speaker brings every utterance of theirs: its count becomes theirs
        w = resample_counts(len(ids), b, rng) if speaker is None else resample_counts(n_speakers, b, rng)[:, speaker]
        for metric, (num, den, scale, _) in mats.items():
            with np.errstate(invalid="ignore", divide="ignore"):
                chunks[metric].append(scale * (w @ num.T) / (w @ den.T))
        done += b
    for metric, (num, den, scale, _) in mats.items():
        stats[metric] = np.vstack(chunks[metric])
        full[metric] = scale * num.sum(axis=1) / den.sum(axis=1)
    if "wer_pct" in full and "wer_pct" in sweep.runs:
        for r, j in zip(run_ids, range(len(run_ids))):
            reported = sweep.runs.at[r, "wer_pct"]
            if not n_dropped and pd.notna(reported) and not np.isclose(reported, full["wer_pct"][j], atol=1e-6):
                problems.append(f"run {r}: metrics.json WER {reported:.4f}% != {full['wer_pct'][j]:.4f}% "
                                f"from its utterances.jsonl")
    return BootstrapSamples(run_ids=run_ids, run_index={r: j for j, r in enumerate(run_ids)}, stats=stats,
                            full=full, baseline=sweep.baseline, n_utterances=len(ids), n_dropped=n_dropped,
                            seed=seed, alpha=alpha, problems=problems, by=by, n_speakers=n_speakers)
