"""Attribute the change of a metric (WER, latency, each time part, size) to the compressed components.

    from asr_compress.analysis.collect import collect
    from asr_compress.analysis.attribution import attribute
    att = attribute(collect("multirun/..."))
    att.table.query("metric == 'wer_pct' and kind == 'shapley'")
    att.missing            # cells of the grid without a finished run, and the terms they block

The grid. For k components that are each either uncompressed (`none`) or compressed, a full
factorial has 2^k cells; cell S is "the components in S compressed, the others not". Let
v(S) = metric(S) - metric(baseline). Every term below is a fixed linear combination of the
cell values (a row of a coefficient matrix over the 2^k cells), so point estimates and bootstrap
resamples go through the same code, and a term is computable exactly when every cell it has a
nonzero coefficient on is present:

- `moebius` (Harsanyi dividends), d(S) = sum_{T subset S} (-1)^{|S|-|T|} v(T):
  order 1 is the effect of cutting that component alone, order 2 the pairwise interaction
  (what cutting both costs beyond the sum of cutting each alone), order >= 3 higher-order terms.
  v(N) = sum of all d(S), so these terms decompose the total change exactly.
- `shapley`: phi_i = sum_{S not containing i} |S|!(k-|S|-1)!/k! (v(S+i) - v(S)) = sum_{S ni i} d(S)/|S|,
  exact (all 2^k cells, no sampling); sum_i phi_i = v(N) - v(empty) (efficiency).
- `main_effect`: the classical factorial main effect, the mean over the other components' settings
  of (metric with i compressed - metric with i not compressed).
- `total`: v(N), the all-compressed run against the baseline.

More than two levels per component (e.g. encoder in {none, int8_dynamic, prune}): the sweep is
split into 2-level sub-grids, one per choice of a compressed level for each component
({none, int8_dynamic} x {none, prune_...} ...), each attributed on its own; the `grid` column
names the choice. Each non-`none` level is thus attributed against `none` with the other
components at one of their levels; cells are shared between sub-grids.

Missing cells (failed or absent runs, a metric not measured in a run, a timing taken on another
machine than the baseline's, or a timing of a run with a `simulated` kernel, which runs dense float32
and is no speed-up): the terms that need them are NaN and `blocked_by` names the cells; `missing` lists each missing cell with the terms it
blocks. Nothing is imputed.
"""
from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field
from math import factorial
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from asr_compress.analysis.collect import NONE, TIME_PARTS, Sweep, same_machine_as_baseline, simulated_runs

if TYPE_CHECKING:  # bootstrap imports nothing from here, but keep the dependency one-way at run time
    from asr_compress.analysis.bootstrap import BootstrapSamples

# Metrics attributed by default (those present in the runs table); units are in the names:
# WER/CER in percentage points, times in ms per utterance, size in MB (10^6 bytes).
DEFAULT_METRICS = ("wer_pct", "cer_pct", "latency_ms.mean",
                   *(f"time_breakdown_ms.{p}" for p in TIME_PARTS), "time_breakdown_ms.total", "size_mb")

KINDS = ("total", "shapley", "main_effect", "moebius")


@dataclass(frozen=True)
class Term:
    kind: str                     # one of KINDS
    components: Tuple[str, ...]   # the players (empty for nothing); all factors for `total`

    @property
    def name(self) -> str:
        return "total" if self.kind == "total" else " x ".join(self.components)

    @property
    def order(self) -> int:
        return len(self.components)


@dataclass
class Grid:
    """A 2^k sub-grid: each factor either `none` or one compressed level."""

    factors: List[str]
    levels: Dict[str, str]                 # factor -> its compressed level in this grid
    run_ids: List[Optional[str]]           # per cell (bit i of the index = factor i compressed)
    status: List[str]                      # per cell: "ok", "failed" or "absent"

    @property
    def name(self) -> str:
        return ",".join(f"{c}={self.levels[c]}" for c in self.factors)

    @property
    def k(self) -> int:
        return len(self.factors)

    @property
    def one_at_a_time(self) -> bool:
        """No run of this grid cuts two components (a one-at-a-time design, not lost runs)."""
        return all(st == "absent" for i, st in enumerate(self.status) if bin(i).count("1") >= 2)

    def cell_label(self, mask: int) -> str:
        cut = [f"{c}={self.levels[c]}" for i, c in enumerate(self.factors) if mask >> i & 1]
        return "+".join(cut) if cut else "baseline"


@dataclass
class Attribution:
    # tidy: grid, metric, kind, term, order, components, value, ci_low, ci_high, blocked_by
    table: pd.DataFrame
    # one row per missing (grid, cell) with the terms it blocks
    missing: pd.DataFrame
    grids: List[Grid] = field(default_factory=list)
    alpha: float = 0.05


def terms_and_coefficients(factors: Sequence[str]) -> Tuple[List[Term], np.ndarray]:
    """All terms over `factors` and their coefficient matrix C (n_terms x 2^k): term = C @ cell values."""
    k = len(factors)
    n = 1 << k
    terms: List[Term] = []
    rows: List[np.ndarray] = []
    full = n - 1

    row = np.zeros(n)
    row[full] += 1.0
    row[0] -= 1.0
    terms.append(Term("total", tuple(factors)))
    rows.append(row)

    kf = factorial(k)
    for i, c in enumerate(factors):
        row = np.zeros(n)
        for s in range(n):
            if s >> i & 1:
                continue
            size = bin(s).count("1")
            w = factorial(size) * factorial(k - size - 1) / kf
            row[s | 1 << i] += w
            row[s] -= w
        terms.append(Term("shapley", (c,)))
        rows.append(row)

    for i, c in enumerate(factors):
        row = np.array([1.0 if s >> i & 1 else -1.0 for s in range(n)]) / (n // 2)
        terms.append(Term("main_effect", (c,)))
        rows.append(row)

    for order in range(1, k + 1):
        for subset in itertools.combinations(range(k), order):
            s = sum(1 << i for i in subset)
            row = np.zeros(n)
            t = s
            while True:  # every t subset of s
                row[t] = (-1.0) ** (order - bin(t).count("1"))
                if t == 0:
                    break
                t = (t - 1) & s
            terms.append(Term("moebius", tuple(factors[i] for i in subset)))
            rows.append(row)
    return terms, np.vstack(rows)


def apply_terms(values: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """values (..., 2^k) cell values -> (..., n_terms); a term touching a NaN cell is NaN, never imputed.

    Values are taken relative to the baseline cell first (v(empty) = 0), which keeps the efficiency
    identity sum(shapley) == total at floating-point precision.
    """
    values = np.asarray(values, dtype=float)
    v = values - values[..., :1]
    present = ~np.isnan(v)
    out = np.where(present, v, 0.0) @ coef.T
    # a term is blocked when any cell it uses (nonzero coefficient) is missing
    blocked = (~present).astype(float) @ (coef != 0).T.astype(float) > 0
    out[blocked] = np.nan
    if np.isnan(values[..., 0]).any():  # no baseline: nothing is computable
        out[np.broadcast_to(np.isnan(values[..., :1]), out.shape)] = np.nan
    return out


# Above this many sub-grids (product of compressed levels), only same-method grids are built.
MAX_PRODUCT_GRIDS = 64


def _choices(sweep: Sweep, factors: List[str]) -> List[Dict[str, str]]:
    """Level choices, one per sub-grid: every combination of compressed levels when that is few;
    otherwise (e.g. every method on every component, one at a time: 11 x 7 x 11 x 11 combinations,
    nearly all absent) one grid per method name over the components that have that level."""
    n = int(np.prod([len(sweep.levels[c]) - 1 for c in factors]))
    if n <= MAX_PRODUCT_GRIDS:
        return [dict(zip(factors, ch)) for ch in itertools.product(*(sweep.levels[c][1:] for c in factors))]
    names = list(dict.fromkeys(lv for c in factors for lv in sweep.levels[c][1:]))
    return [{c: name for c in factors if name in sweep.levels[c]} for name in names]


def grids(sweep: Sweep) -> List[Grid]:
    """The 2-level sub-grids of a sweep (one when every factor has two levels)."""
    all_factors = [c for c in sweep.factors if NONE in sweep.levels[c]]
    if not all_factors:
        return []
    runs = sweep.runs
    out = []
    for lv in _choices(sweep, all_factors):
        factors = list(lv)
        run_ids: List[Optional[str]] = []
        status: List[str] = []
        for mask in range(1 << len(factors)):
            want = {c: (lv[c] if mask >> i & 1 else NONE) for i, c in enumerate(factors)}
            sel = runs
            for c in sweep.factors:  # other factors: `none` where possible, else their first level
                sel = sel[sel[c] == want.get(c, NONE if NONE in sweep.levels[c] else sweep.levels[c][0])]
            ok = sel[sel["status"] == "ok"]
            if len(ok):
                run_ids.append(str(ok.index[0]))
                status.append("ok")
            else:
                run_ids.append(str(sel.index[0]) if len(sel) else None)
                status.append("failed" if len(sel) else "absent")
        out.append(Grid(factors=factors, levels=lv, run_ids=run_ids, status=status))
    return out


TIMING_PREFIXES = ("latency_ms.", "time_breakdown_ms.", "rtf", "utt_per_s")


def cell_values(sweep: Sweep, grid: Grid, metric: str) -> Tuple[np.ndarray, List[str]]:
    """Metric value per cell and, where it is NaN, why: the run status ("failed", "absent"),
    "not measured", or "timed on another machine" (timings are never compared across machines)."""
    vals = np.full(1 << grid.k, np.nan)
    why = [st if st != "ok" else "" for st in grid.status]
    same = same_machine_as_baseline(sweep)
    simulated = simulated_runs(sweep)
    timing = metric.startswith(TIMING_PREFIXES)
    for m, (rid, st) in enumerate(zip(grid.run_ids, grid.status)):
        if st != "ok":
            continue
        if timing and not same.get(rid, True):
            why[m] = "timed on another machine"
            continue
        if timing and simulated.get(rid, False):
            why[m] = "simulated kernel, no speed-up"
            continue
        x = pd.to_numeric(pd.Series([sweep.runs.at[rid, metric]]), errors="coerce").iloc[0] \
            if metric in sweep.runs else np.nan
        vals[m] = float(x)
        if np.isnan(vals[m]):
            why[m] = "not measured"
    return vals, why


def blocked_reasons(blocked_by) -> List[str]:
    """The distinct reasons ("absent", "failed", "simulated kernel, no speed-up"...) in `blocked_by`
    strings as `attribute` writes them ("<cell> (<why>)", joined by "; "), sorted."""
    return sorted({e[e.rindex("(") + 1:-1] for b in blocked_by if b for e in b.split("; ") if e.endswith(")")})


def attribute(sweep: Sweep, metrics: Optional[Sequence[str]] = None,
              samples: Optional[BootstrapSamples] = None, alpha: float = 0.05) -> Attribution:
    """Attribution table for every sub-grid and metric, with bootstrap CIs when `samples` is given.

    `samples` comes from `asr_compress.analysis.bootstrap.paired_bootstrap` (per-run resampled
    statistics); metrics without per-utterance data (size) get no CI.
    """
    if metrics is None:
        metrics = [m for m in DEFAULT_METRICS if m in sweep.runs and sweep.runs[m].notna().any()]
    rows = []
    missing_rows = []
    gs = grids(sweep)
    for g in gs:
        terms, coef = terms_and_coefficients(g.factors)
        uses = coef != 0
        for m, st in enumerate(g.status):
            if st != "ok":
                blocked = [t.kind + ":" + t.name for t, u in zip(terms, uses[:, m]) if u]
                missing_rows.append({"grid": g.name, "cell": g.cell_label(m), "status": st,
                                     "run_id": g.run_ids[m], "blocks": "; ".join(blocked)})
        for metric in metrics:
            vals, why = cell_values(sweep, g, metric)
            point = apply_terms(vals, coef)
            lo = hi = np.full(len(terms), np.nan)
            n_res = 0
            if samples is not None and metric in samples.stats:
                cols = [samples.run_index.get(r, -1) if not np.isnan(v) else -1
                        for r, v in zip(g.run_ids, vals)]
                stat = samples.stats[metric]
                cells = np.stack([stat[:, c] if c >= 0 else np.full(stat.shape[0], np.nan) for c in cols], axis=1)
                boot = apply_terms(cells, coef)
                with warnings.catch_warnings():  # blocked terms are all-NaN columns, by design
                    warnings.simplefilter("ignore", RuntimeWarning)
                    lo, hi = np.nanpercentile(boot, [100 * alpha / 2, 100 * (1 - alpha / 2)], axis=0)
                lo = np.where(np.isnan(point), np.nan, lo)
                hi = np.where(np.isnan(point), np.nan, hi)
                n_res = stat.shape[0]
            for j, t in enumerate(terms):
                blocked_by = [f"{g.cell_label(m)} ({why[m]})" for m in range(len(vals))  # read by blocked_reasons
                              if uses[j, m] and np.isnan(vals[m])]
                rows.append({"grid": g.name, "metric": metric, "kind": t.kind, "term": t.name, "order": t.order,
                             "components": "+".join(t.components), "value": point[j], "ci_low": lo[j],
                             "ci_high": hi[j], "n_resamples": n_res, "blocked_by": "; ".join(blocked_by)})
    table = pd.DataFrame(rows, columns=["grid", "metric", "kind", "term", "order", "components", "value",
                                        "ci_low", "ci_high", "n_resamples", "blocked_by"])
    missing = pd.DataFrame(missing_rows, columns=["grid", "cell", "status", "run_id", "blocks"])
    return Attribution(table=table, missing=missing, grids=gs, alpha=alpha)


def shapley_values(values: Mapping[Tuple[bool, ...], float], factors: Sequence[str]) -> Dict[str, float]:
    """Exact Shapley values from {cell as tuple of bools (True = compressed): metric}; NaN if a cell is missing.

    A small, dependency-free entry point for notebooks: `shapley_values({(0,0): 6.16, (1,0): 11, ...}, [...])`.
    """
    k = len(factors)
    vals = np.full(1 << k, np.nan)
    for cell, v in values.items():
        vals[sum(1 << i for i, b in enumerate(cell) if b)] = v
    terms, coef = terms_and_coefficients(factors)
    out = apply_terms(vals, coef)
    return {t.components[0]: float(x) for t, x in zip(terms, out) if t.kind == "shapley"}
