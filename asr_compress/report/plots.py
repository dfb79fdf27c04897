"""Report figures (matplotlib, Agg backend, PNG at 150 dpi).

    from asr_compress.report.plots import plot_wer_vs_latency
    plot_wer_vs_latency(sweep, "wer_vs_latency.png")

Every figure labels its axes with units; long run labels are shortened (`enc+dec+LM`) and the
short names are spelled out in the report's tables.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from asr_compress.analysis.attribution import Attribution, Grid  # noqa: E402
from asr_compress.analysis.collect import NONE, TIME_PARTS, Sweep, concurrent_runs, repeated_cells, simulated_runs  # noqa: E402
from asr_compress.report.tables import ngram_in_search  # noqa: E402

DPI = 150
# latency in these figures comes from a sweep, whose runs are timed one after another (machine drift
# between runs is in it), or, under a launcher that runs cells in parallel, at once on one machine
# (contention is in it): `timing_label` says which; the side-by-side timing is free of both
SEQUENTIAL = "runs timed one after another"
CONCURRENT = "runs timed at once on one machine: contended"


def timing_label(sweep: Sweep) -> str:
    """How the sweep's own latencies were taken, for axis labels: one after another, or (a launcher
    that runs cells in parallel) at the same time on one machine, where they measure contention."""
    return CONCURRENT if concurrent_runs(sweep) else SEQUENTIAL


ABBREV = {"frontend": "fe", "encoder": "enc", "ctc": "CTC", "decoder": "dec", "lm": "LM"}
# one colour per component, used in every figure so a component keeps its colour
COLORS = {"frontend": "#7f7f7f", "encoder": "#1f77b4", "decoder": "#ff7f0e", "ctc": "#2ca02c", "lm": "#d62728",
          "search_other": "#9467bd"}
PART_NAMES = {"frontend": "frontend (features)", "encoder": "encoder forward", "decoder": "decoder scoring",
              "ctc": "CTC prefix scoring", "lm": "LM scoring", "search_other": "rest of search"}
# the LM part's name when a run also searched with a token n-gram (its time is counted there)
LM_WITH_NGRAM = "LM + n-gram scoring"


def searched_with_ngram(sweep: Sweep) -> bool:
    """Whether a finished run of the sweep searched with a token n-gram (a file and a weight)."""
    ok = sweep.ok
    files = ok.get("config.model.ngram_file", pd.Series(None, index=ok.index, dtype=object))
    weights = ok.get("config.decode.ngram_weight", pd.Series(None, index=ok.index, dtype=object))
    return any(ngram_in_search(f, w) for f, w in zip(files, weights))


def part_names(sweep: Sweep) -> Dict[str, str]:
    """PART_NAMES, with the LM part named "LM + n-gram scoring" when a run searched with an n-gram.

    The timing code counts the token n-gram's scoring with the neural LM's (timing.SCORER_PARTS:
    both language models, added to the same hypotheses); the figures and the report's sentences
    say so rather than letting a reader take the n-gram's time for the Transformer LM's.
    """
    return {**PART_NAMES, "lm": LM_WITH_NGRAM} if searched_with_ngram(sweep) else PART_NAMES


def short_label(sweep: Sweep, run_id: str) -> str:
    """`base`, `enc+LM`, or `enc:int8_dynamic+LM` when a component has several compressed levels."""
    r = sweep.runs.loc[run_id]
    parts = []
    for c in sweep.factors:
        if r[c] != NONE:
            several = len([lv for lv in sweep.levels[c] if lv != NONE]) > 1
            parts.append(f"{ABBREV.get(c, c)}:{r[c]}" if several else ABBREV.get(c, c))
    return "+".join(parts) if parts else "baseline"


def pareto_front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Boolean mask of points not dominated (lower x and lower y are better)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.ones(len(x), bool)
    for i in range(len(x)):
        dominated = (x <= x[i]) & (y <= y[i]) & ((x < x[i]) | (y < y[i]))
        keep[i] = not dominated.any()
    return keep


# why a grid has no Shapley values when it was designed without them (figure title, report summary)
ONE_AT_A_TIME = "a one-at-a-time study: no run cuts two components"


# Above this many runs, point labels overlap into noise.
MAX_POINT_LABELS = 15


def plot_wer_vs_latency(sweep: Sweep, path: Path, wer_ci: Optional[pd.DataFrame] = None,
                        side_by_side: Optional[Tuple[Dict[str, float], str]] = None) -> Optional[Path]:
    """WER vs mean latency per run, with the Pareto front (lower-left is better) marked.

    `side_by_side`: ({run_id: ms per utterance}, how it was timed) from `asr-compress-retime`: the
    latency axis then shows those times, which the machine's drift between runs does not move, and
    the runs it did not retime (simulated kernels; a second run of a cell, such as each sweep's own
    baseline in a study of several) are left out, as the title says."""
    ok = sweep.ok
    if "latency_ms.mean" not in ok or "wer_pct" not in ok:
        return None
    left_out = ""
    simulated = simulated_runs(sweep)
    if side_by_side is not None:
        ok = ok.assign(**{"latency_ms.mean": pd.Series(side_by_side[0]).reindex(ok.index)})
        untimed = ok.index[ok["latency_ms.mean"].isna()]
        sim_u = simulated.reindex(untimed).fillna(False).astype(bool)
        repeat = pd.Series(untimed.isin(list(repeated_cells(sweep))), index=untimed) & ~sim_u
        counts = {"simulated kernel": int(sim_u.sum()), "repeating a cell timed once": int(repeat.sum()),
                  "absent from the timing file": int(len(untimed) - sim_u.sum() - repeat.sum())}
        why = [f"{n} {what}" for what, n in counts.items() if n]
        left_out = f"\n{len(untimed)} run(s) not timed side by side left out ({', '.join(why)})" \
            if len(untimed) else ""
    ok = ok[ok["latency_ms.mean"].notna() & ok["wer_pct"].notna()]
    if ok.empty:
        return None
    x, y = ok["latency_ms.mean"].to_numpy(float), ok["wer_pct"].to_numpy(float)
    sim = simulated.reindex(ok.index).fillna(False).to_numpy(bool)
    front = np.zeros(len(x), bool)
    if (~sim).any():  # simulated kernels time dense float32: never on the front
        front[~sim] = pareto_front(x[~sim], y[~sim])
    fig, ax = plt.subplots(figsize=(10.5, 5.0))  # 3 inches of it for the legend, beside the axes
    if wer_ci is not None and len(wer_ci):
        ci = wer_ci.set_index("run_id").reindex(ok.index)
        yerr = np.vstack([y - ci["ci_low"].to_numpy(float), ci["ci_high"].to_numpy(float) - y])
        ax.errorbar(x, y, yerr=np.clip(np.nan_to_num(yerr), 0.0, None), fmt="none", ecolor="0.6", elinewidth=1, capsize=3, zorder=1)
    dom = ~front & ~sim
    # a legend entry only for a kind of point the plot has: "dominated run" over a sweep where
    # every run is on the front would tell the reader something false
    if dom.any():
        ax.scatter(x[dom], y[dom], s=45, color="0.55", zorder=2, label="dominated run")
    if sim.any():
        ax.scatter(x[sim], y[sim], s=55, facecolors="none", edgecolors="0.35", zorder=2,
                   label="simulated kernel (latency = dense float32)")
    if front.any():
        ax.scatter(x[front], y[front], s=70, color="#d62728", zorder=3, label="Pareto-optimal run")
    if front.sum() > 1:  # one point makes no line
        order = np.argsort(x[front])
        ax.plot(x[front][order], y[front][order], "--", color="#d62728", lw=1.2, zorder=2, label="Pareto front")
    ax.set_xlabel(f"mean latency per utterance (ms; {side_by_side[1] if side_by_side else timing_label(sweep)})")
    ax.set_ylabel("WER (%)")
    ax.set_title("WER vs latency (lower left is better; bars: 95% bootstrap CI)" + left_out, fontsize=10.5)
    ax.grid(alpha=0.3)
    lo_hi = y
    if wer_ci is not None and len(wer_ci):
        lo_hi = np.concatenate([y, ci["ci_low"].dropna().to_numpy(float), ci["ci_high"].dropna().to_numpy(float)])
    _pad(ax, x, lo_hi)
    labels = [short_label(sweep, rid) for rid in ok.index]
    if len(labels) > MAX_POINT_LABELS:  # a big sweep: label the front and the baseline only (runs.csv has all)
        labels = [lb if front[i] or rid == sweep.baseline else "" for i, (lb, rid) in enumerate(zip(labels, ok.index))]
        ax.set_title(ax.get_title() + f"\nlabels on the Pareto front and the baseline only ({len(x)} runs)", fontsize=10.5)
    _place_labels(ax, x, y, labels)
    # outside, to the right: loc="best" put it over a run's marker when the runs filled the axes
    # (the committed factorial study's slowest run was hidden under it)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    return _save(fig, path)


def _place_labels(ax, xs, ys, labels) -> None:
    """Label each point, fanning out over a few offsets until a label overlaps no other label, no
    point and not the axes' edge; a thin leader line ties a label placed away from its point to it."""
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    near = [(6, 4), (6, -12), (-6, 4), (-6, -12)]
    offsets = near + [(dx * s, dy * s) for s in (2.5, 4, 6) for dx, dy in near + [(0, 6), (0, -16)]]
    px = ax.transData.transform(np.column_stack([xs, ys]))
    placed = [Bbox.from_extents(u - 5, v - 5, u + 5, v + 5) for u, v in px]  # the markers
    for x, y, label in sorted(zip(xs, ys, labels), key=lambda t: (t[0], t[1])):
        if not label:
            continue
        for i, (dx, dy) in enumerate(offsets):
            leader = dict(arrowstyle="-", color="0.45", lw=0.6, shrinkA=0, shrinkB=4) if i >= len(near) else None
            ann = ax.annotate(label, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=8.5,
                              ha="left" if dx > 0 else "right" if dx < 0 else "center", arrowprops=leader)
            ann.update_positions(renderer)
            box = Text.get_window_extent(ann, renderer)  # the text alone, not its leader line
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if (inside and not any(box.overlaps(b) for b in placed)) or i == len(offsets) - 1:
                placed.append(box)
                break
            ann.remove()


def _pad(ax, x, y):
    x, y = np.asarray(x, float), np.asarray(y, float)
    dx = (x.max() - x.min()) or abs(x.max()) or 1.0
    dy = (y.max() - y.min()) or abs(y.max()) or 1.0
    ax.set_xlim(x.min() - 0.08 * dx, x.max() + 0.25 * dx)
    ax.set_ylim(y.min() - 0.15 * dy, y.max() + 0.15 * dy)


def plot_shapley(att: Attribution, grid: Grid, path: Path, names: Dict[str, str] = PART_NAMES,
                 timing: str = SEQUENTIAL) -> Optional[Path]:
    """Shapley value per component for WER, latency, size, and each time part, with 95% CI bars.

    `names`: the time parts' labels (`part_names(sweep)` names the n-gram when the runs used one).
    """
    t = att.table[(att.table["grid"] == grid.name) & (att.table["kind"] == "shapley")]
    if t.empty:
        return None
    title = "Shapley attribution of the change vs baseline (bars: 95% bootstrap CI)"
    if t["value"].isna().all():  # grid incomplete: show what is known, and say so
        t = att.table[(att.table["grid"] == grid.name) & (att.table["kind"] == "moebius") & (att.table["order"] == 1)]
        why = (ONE_AT_A_TIME if grid.one_at_a_time
               else "grid cells missing, see REPORT.md")
        title = (f"Shapley values not computable ({why});\n"
                 "showing the effect of cutting each component ALONE vs baseline (bars: 95% bootstrap CI)")
    panels = [(m, lab) for m, lab in (("wer_pct", "Δ WER (points)"), ("latency_ms.mean", "Δ latency (ms/utt)"),
                                      ("size_mb", "Δ size (MB)")) if m in set(t["metric"])]
    parts = [p for p in TIME_PARTS if f"time_breakdown_ms.{p}" in set(t["metric"])]
    # top row: one panel per headline metric; bottom row (full width): the time parts
    ncol = max(len(panels), 1)
    fig = plt.figure(figsize=(max(3.8 * ncol, 9.0), 8.2 if parts else 4.4))
    gs = fig.add_gridspec(2 if parts else 1, ncol)
    axes = [fig.add_subplot(gs[0, i]) for i in range(len(panels))]
    if parts:
        axes.append(fig.add_subplot(gs[1, :]))
    comps = grid.factors
    for ax, (metric, label) in zip(axes, panels):
        m = t[t["metric"] == metric].set_index("term").reindex(comps)
        v = m["value"].to_numpy(float)
        err = _yerr(m, v)
        xs = np.arange(len(comps))
        ax.bar(xs, np.nan_to_num(v), color=[COLORS.get(c, "0.5") for c in comps], yerr=err, capsize=4,
               ecolor="0.2")
        for xi, vi in zip(xs, v):
            if np.isnan(vi):
                ax.text(xi, 0, "n/a", ha="center", va="bottom", fontsize=9, color="0.3")
        if np.isnan(v).all():
            _not_computable(ax, m["blocked_by"])
        ax.axhline(0, color="0.2", lw=0.8)
        ax.set_xticks(xs, [ABBREV.get(c, c) for c in comps])
        ax.set_ylabel(label)
        name = label.replace("Δ ", "").split(" (")[0]
        ax.set_title(name + (f"\n({timing})" if metric == "latency_ms.mean" else ""), fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    if parts:
        ax = axes[-1]
        width = 0.8 / len(comps)
        xs = np.arange(len(parts))
        for j, c in enumerate(comps):
            vals, los, his = [], [], []
            for p in parts:
                row = t[(t["metric"] == f"time_breakdown_ms.{p}") & (t["term"] == c)].iloc[0]
                vals.append(row["value"]), los.append(row["ci_low"]), his.append(row["ci_high"])
            vals = np.array(vals, float)
            err = np.clip(np.vstack([vals - np.array(los, float), np.array(his, float) - vals]), 0.0, None)
            ax.bar(xs + (j - (len(comps) - 1) / 2) * width, np.nan_to_num(vals), width,
                   yerr=np.nan_to_num(err, nan=0.0), capsize=2, color=COLORS.get(c, "0.5"),
                   label=f"cut {ABBREV.get(c, c)}", ecolor="0.2")
        ax.axhline(0, color="0.2", lw=0.8)
        tp = t[t["metric"].str.startswith("time_breakdown_ms.") & t["term"].isin(comps)]
        if tp["value"].isna().all():
            _not_computable(ax, tp["blocked_by"])
        ax.set_xticks(xs, [names[p] for p in parts], fontsize=9.5)
        ax.set_ylabel("Δ time per utterance (ms)")
        ax.set_title(f"where the time changed, per time part ({timing})", fontsize=10.5)
        ax.legend(fontsize=9, loc="best", title="component", title_fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{title}\ncompressed levels: {_levels_text(grid)}", fontsize=11)
    return _save(fig, path)


def _not_computable(ax, blocked_by: pd.Series) -> None:
    """Say in the panel why it is empty (the distinct reasons of the blocking cells)."""
    reasons = sorted({c.rsplit("(", 1)[-1].rstrip(")") for b in blocked_by.dropna() for c in str(b).split("; ") if c})
    text = "not computable:\n" + "\n".join(reasons[:3]) if reasons else "not computable"
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=9.5, color="0.25",
            bbox={"facecolor": "white", "edgecolor": "0.7", "boxstyle": "round"})


def _yerr(m: pd.DataFrame, v: np.ndarray) -> Optional[np.ndarray]:
    lo, hi = m["ci_low"].to_numpy(float), m["ci_high"].to_numpy(float)
    if np.isnan(lo).all():
        return None
    # clip: float noise can put the point a hair outside its own interval
    return np.clip(np.nan_to_num(np.vstack([v - lo, hi - v]), nan=0.0), 0.0, None)


def plot_interactions(att: Attribution, grid: Grid, path: Path,
                      metrics: Sequence[str] = ("wer_pct", "latency_ms.mean")) -> Optional[Path]:
    """Heatmap: diagonal = effect of cutting a component alone, off-diagonal = pairwise interaction."""
    t = att.table[(att.table["grid"] == grid.name) & (att.table["kind"] == "moebius")]
    metrics = [m for m in metrics if m in set(t["metric"])]
    if not metrics or grid.k < 2:
        return None
    k = grid.k
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics) + 0.6, 4.3), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        m = t[t["metric"] == metric]
        mat = np.full((k, k), np.nan)
        for i, a in enumerate(grid.factors):
            for j, b in enumerate(grid.factors[: i + 1]):  # lower triangle: the matrix is symmetric
                comps = a if i == j else "+".join(sorted([a, b], key=grid.factors.index))
                row = m[m["components"] == comps]
                if len(row):
                    mat[i, j] = row["value"].iloc[0]
        lim = np.nanmax(np.abs(mat)) if np.isfinite(mat).any() else 1.0
        lim = lim or 1.0
        shown = np.ma.masked_where(np.triu(np.ones((k, k), bool), 1) | np.isnan(mat), mat)
        cmap = plt.get_cmap("RdBu_r").with_extremes(bad="white")
        im = ax.imshow(shown, cmap=cmap, vmin=-lim, vmax=lim)
        for i in range(k):  # grey cells: diagonal/lower terms that are missing
            for j in range(i + 1):
                if np.isnan(mat[i, j]):
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, color="0.85"))
        for i in range(k):
            for j in range(i + 1):
                v = 0.0 if abs(mat[i, j]) < 1e-9 else mat[i, j]
                txt = "n/a" if np.isnan(v) else f"{v:+.2f}"
                dark = not np.isnan(mat[i, j]) and abs(mat[i, j]) > 0.6 * lim
                ax.text(j, i, txt, ha="center", va="center", fontsize=10, color="white" if dark else "black")
        names = [ABBREV.get(c, c) for c in grid.factors]
        ax.set_xticks(range(k), names)
        ax.set_yticks(range(k), names)
        unit = "points" if metric.endswith("_pct") else ("MB" if metric == "size_mb" else "ms/utt")
        title = {"wer_pct": "WER", "cer_pct": "CER", "latency_ms.mean": "latency", "size_mb": "size"}.get(metric, metric)
        ax.set_title(f"{title} ({unit})", fontsize=10.5)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        cb.set_label(f"Δ {unit}")
    fig.suptitle("Diagonal: cut alone vs baseline.  Off-diagonal: extra change when both are cut\n"
                 "(beyond the sum of each alone; 0 = effects add up; n/a = a run it needs is missing)\n"
                 f"compressed levels: {_levels_text(grid)}", fontsize=10)
    return _save(fig, path)


def plot_time_breakdown(sweep: Sweep, path: Path) -> Optional[Path]:
    """Stacked horizontal bars: where each run spends its time per utterance (ms)."""
    ok = sweep.ok
    parts = [p for p in TIME_PARTS if f"time_breakdown_ms.{p}" in ok and ok[f"time_breakdown_ms.{p}"].notna().any()]
    if not parts or ok.empty:
        return None
    labels = [short_label(sweep, r) for r in ok.index]
    fig, ax = plt.subplots(figsize=(9.5, 0.45 * len(ok) + 1.6))
    left = np.zeros(len(ok))
    ys = np.arange(len(ok))[::-1]
    names = part_names(sweep)
    for p in parts:
        v = ok[f"time_breakdown_ms.{p}"].to_numpy(float)
        ax.barh(ys, np.nan_to_num(v), left=left, color=COLORS[p], label=names[p], edgecolor="white", lw=0.5)
        left += np.nan_to_num(v)
    if "time_breakdown_ms.total" in ok:
        tot = ok["time_breakdown_ms.total"].to_numpy(float)
        ax.scatter(tot, ys, marker="|", s=250, color="black", zorder=3, label="measured total")
    ax.set_yticks(ys, labels)
    ax.set_xlabel("mean time per utterance (ms)")
    ax.set_title("Where the decoding time goes, per run", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    # outside, to the right: never covers a bar, whatever the number of runs
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False, title="time part",
              title_fontsize=9)
    return _save(fig, path)


def plot_cuts(rows: pd.DataFrame, path: Path, side_by_side: bool = False, timing: str = SEQUENTIAL) -> Optional[Path]:
    """A one-at-a-time study (`report/cuts.py`): one horizontal bar per cut, grouped by component, for
    the change in WER, latency and size against the baseline (bars: 95% bootstrap CIs; side-by-side
    latency: median and range over rounds)."""
    if rows.empty:
        return None

    def sbs(col: str):
        return np.array([s[col] if isinstance(s, dict) else np.nan for s in rows["side_by_side"]], float)

    if side_by_side:
        lat = (sbs("median"), sbs("min"), sbs("max"), "Δ latency (ms/utt)\nside by side, median [range] over rounds")
    else:
        lat = (rows["delta_latency"].to_numpy(float), rows["latency_ci_low"].to_numpy(float),
               rows["latency_ci_high"].to_numpy(float), f"Δ latency (ms/utt)\n{timing}")
    nan = np.full(len(rows), np.nan)
    panels = [(rows["delta_wer"].to_numpy(float), rows["wer_ci_low"].to_numpy(float),
               rows["wer_ci_high"].to_numpy(float), "Δ WER (points)"), lat,
              (rows["delta_size_mb"].to_numpy(float), nan, nan, "Δ size (MB)")]
    n = len(rows)
    ys = np.arange(n)[::-1]
    labels = [f"{ABBREV.get(c, c)}  {m}" for c, m in zip(rows["component"], rows["method"])]
    colors = [COLORS.get(c, "0.5") for c in rows["component"]]
    height = 0.34 * n + 1.9
    # constrained layout places the suptitle just above the panel titles at any height (tight_layout
    # ignores it: a fixed offset was too close on tall figures and far off on short ones)
    fig, axes = plt.subplots(1, len(panels), figsize=(13.0, height), sharey=True, layout="constrained")
    for ax, (v, lo, hi, title) in zip(axes, panels):
        err = None if np.isnan(lo).all() else np.clip(np.nan_to_num(np.vstack([v - lo, hi - v]), nan=0.0), 0.0, None)
        ax.barh(ys, np.nan_to_num(v), color=colors, xerr=err, capsize=2.5, ecolor="0.2", height=0.7)
        for y, x in zip(ys, v):
            if np.isnan(x):
                ax.text(0, y, " n/a", va="center", ha="left", fontsize=8, color="0.35")
        ax.axvline(0, color="0.2", lw=0.8)
        # a thin rule between components
        comp = rows["component"].tolist()
        for i in range(1, n):
            if comp[i] != comp[i - 1]:
                ax.axhline(ys[i] + 0.5, color="0.6", lw=0.6, ls=":")
        ax.set_title(title, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        ax.locator_params(axis="x", nbins=6)  # a third of 13 inches holds about six tick labels
    axes[0].set_yticks(ys, labels, fontsize=8.5)
    fig.suptitle("One-at-a-time study: each cut alone against the baseline (bars: 95% bootstrap CI; "
                 "n/a: failed, simulated kernel or not timed)", fontsize=11)
    return _save(fig, path)


def _levels_text(grid: Grid) -> str:
    return ", ".join(f"{ABBREV.get(c, c)}={grid.levels[c]}" for c in grid.factors)


def _save(fig, path: Path) -> Path:
    path = Path(path)
    if fig.get_layout_engine() is None:  # a figure made with layout="constrained" keeps its own
        fig.tight_layout()
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path
