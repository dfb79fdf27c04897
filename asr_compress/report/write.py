"""Write the report of a sweep: runs.csv, attribution.csv, REPORT.md and the PNG figures.

    from asr_compress.report.write import write_report
    write_report("multirun/2026-11-22/21-40-00")                 # into the sweep dir
    write_report("exp/factorial", out_dir="results/factorial")    # for a committed study

Everything is read back from the run directories (see `asr_compress.analysis.collect`).
"""
from __future__ import annotations

import logging
import shlex
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import pandas as pd

from asr_compress.analysis.attribution import Attribution, Grid, attribute, blocked_reasons
from asr_compress.analysis.bootstrap import BootstrapSamples, paired_bootstrap
from asr_compress import COMPONENTS
from asr_compress.analysis.collect import NONE, Sweep, as_dirs, collect, concurrent_runs, same_machine_as_baseline, simulated_runs
from asr_compress.analysis.utterances import broken_utterances, error_shift, group_sweeps, group_wer
from asr_compress.report import plots
from asr_compress.report.cuts import cut_groups, cut_rows, cut_summary, cut_timing_section, is_cut_by_cut
from asr_compress.report.interleaved import (
    find_interleaved, interleaved_section, interleaved_summary, load_interleaved, schedule, side_by_side_latency,
    study_home)
from asr_compress.report.tables import (
    METRIC_NAMES, NA, fmt, fmt_ci, markdown_table, metrics_shapley_table, missing_table, pretty, with_ci,
    shapley_table, wer_table)

log = logging.getLogger(__name__)

ENV_KEYS = ("date", "git_hash", "code_sha256", "python", "torch", "espnet", "platform", "host", "cpu", "device",
            "num_threads", "gpu", "method_plugins")
# fields that, when they differ, mean the runs were not computed by the same code
CODE_KEYS = {"git_hash", "code_sha256", "python", "torch", "espnet", "method_plugins"}
SUMMARY_METRICS = ("wer_pct", "cer_pct", "latency_ms.mean", "time_breakdown_ms.frontend", "time_breakdown_ms.encoder",
                   "time_breakdown_ms.decoder", "time_breakdown_ms.ctc", "time_breakdown_ms.lm",
                   "time_breakdown_ms.search_other", "time_breakdown_ms.total", "size_mb")


def write_report(sweep_dir: Union[str, Path, Sequence[Union[str, Path]]], out_dir: Union[str, Path, None] = None,
                 n_resamples: int = 1000, seed: int = 0, plots_enabled: bool = True, bootstrap_by: str = "utterance",
                 interleaved: Union[str, Path, None] = None) -> Path:
    """Collect the runs under `sweep_dir`, attribute, and write the report; returns the REPORT.md path.

    `plots_enabled=False` skips the PNGs (tables only; rendering is most of the time on a small CPU).
    `bootstrap_by="speaker"` resamples speakers, each with all its utterances (analysis/bootstrap.py).
    `interleaved`: bench.json of `asr-compress-retime` or `bench_methods.py --factorial` over the same
    study; the summary cites its latency attribution (checked before anything is written:
    InterleavedMismatch). Without it, `SWEEP/interleaved/bench.json` is cited when it matches the sweep.
    `sweep_dir` may be a list: several sweep directories reported as one study (`collect`), into
    `out_dir`, which they then need; their side-by-side timing is `OUT/interleaved/bench.json`.
    """
    dirs = as_dirs(sweep_dir)
    if len(dirs) > 1 and out_dir is None:
        raise ValueError(f"{len(dirs)} sweep directories: out_dir names the folder of their combined report")
    out = Path(out_dir) if out_dir is not None else dirs[0]
    sweep = collect(dirs[0] if len(dirs) == 1 else dirs)
    found = (load_interleaved(interleaved, sweep), Path(interleaved)) if interleaved is not None else \
        find_interleaved(study_home(dirs, out), sweep)
    out.mkdir(parents=True, exist_ok=True)
    samples = paired_bootstrap(sweep, n_resamples=n_resamples, seed=seed, by=bootstrap_by)
    att = attribute(sweep, samples=samples)
    # a one-at-a-time study: one row per cut instead of the same effects once per sub-grid
    cuts = cut_rows(sweep, samples, found[0] if found is not None else None) if is_cut_by_cut(sweep) else None

    runs = _runs_with_cis(sweep, samples)
    runs.to_csv(out / "runs.csv", index=False)
    att.table.to_csv(out / "attribution.csv", index=False)
    if not att.missing.empty:
        att.missing.to_csv(out / "missing_runs.csv", index=False)
    broken = broken_utterances(sweep)
    if len(broken):
        broken.to_csv(out / "broken_utterances.csv", index=False)

    figures: Dict[str, Optional[Path]] = {}
    if plots_enabled:
        wer_ci = samples.run_ci()
        timing = plots.timing_label(sweep)
        figures["WER vs latency"] = _safe(plots.plot_wer_vs_latency, sweep, out / "wer_vs_latency.png",
                                          wer_ci[wer_ci["metric"] == "wer_pct"],
                                          side_by_side_latency(found[0]) if found is not None else None)
        if cuts is not None:
            figures["Each cut alone"] = _safe(plots.plot_cuts, cuts, out / "cuts.png", _timed_side_by_side(cuts),
                                              timing)
        for i, g in enumerate(att.grids if cuts is None else []):
            sfx = "" if i == 0 else f"_{i}"
            figures[f"Shapley values{_grid_note(att, g)}"] = _safe(plots.plot_shapley, att, g, out / f"shapley{sfx}.png",
                                                                   plots.part_names(sweep), timing)
            figures[f"Interactions{_grid_note(att, g)}"] = _safe(plots.plot_interactions, att, g,
                                                                  out / f"interactions{sfx}.png")
        figures["Time breakdown"] = _safe(plots.plot_time_breakdown, sweep, out / "time_breakdown.png")

    text = _markdown(sweep, dirs, out, att, samples, broken, figures, n_resamples, seed, found,
                     explicit=interleaved is not None, cuts=cuts)
    path = out / "REPORT.md"
    path.write_text(text)
    # debug: the callers say it once (the sweep callback logs "Report written", the CLI prints the path)
    log.debug("report written to %s", path)
    return path


def _timed_side_by_side(cuts: pd.DataFrame) -> bool:
    return bool(cuts["side_by_side"].notna().any())


def _safe(fn, *args) -> Optional[Path]:
    """A figure that fails is logged and left out; the tables still get written."""
    try:
        return fn(*args)
    except Exception:  # noqa: BLE001 - a broken plot must not lose the whole report
        log.exception("figure %s failed", getattr(fn, "__name__", fn))
        return None


def _grid_note(att: Attribution, g: Grid) -> str:
    return "" if len(att.grids) == 1 else f" ({g.name})"


def _add_speedups(sweep: Sweep, runs: pd.DataFrame) -> pd.DataFrame:
    """speedup.<timing> = baseline time / run time (>1 is faster); NaN across machines (never compared)
    and for runs with a simulated kernel (dense float32: their timing is no speed-up)."""
    if sweep.baseline is None:
        return runs
    same = same_machine_as_baseline(sweep) & ~simulated_runs(sweep)
    cols = ["latency_ms.mean"] + [c for c in runs.columns if c.startswith("time_breakdown_ms.")]
    for col in cols:
        if col in runs:
            base = pd.to_numeric(pd.Series([runs.at[sweep.baseline, col]]), errors="coerce").iloc[0]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = base / pd.to_numeric(runs[col], errors="coerce")
            runs[f"speedup.{col}"] = ratio.where(same)
    return runs


def _runs_with_cis(sweep: Sweep, samples: BootstrapSamples) -> pd.DataFrame:
    runs = _add_speedups(sweep, sweep.runs.copy())
    ci = samples.run_ci()
    d = samples.delta_ci()
    for metric in ("wer_pct", "latency_ms.mean"):
        c = ci[ci["metric"] == metric].set_index("run_id")
        runs[f"{metric}_ci_low"] = c["ci_low"].reindex(runs.index)
        runs[f"{metric}_ci_high"] = c["ci_high"].reindex(runs.index)
        if sweep.baseline is not None and metric in runs:
            runs[f"delta_{metric}"] = runs[metric] - runs.at[sweep.baseline, metric]
        dd = d[d["metric"] == metric].set_index("run_id")
        runs[f"delta_{metric}_ci_low"] = dd["ci_low"].reindex(runs.index)
        runs[f"delta_{metric}_ci_high"] = dd["ci_high"].reindex(runs.index)
    return runs


def environment_block(sweep: Sweep, concurrent: Optional[Dict[str, List[str]]] = None) -> str:
    """`key: value` per environment field; a field that differs between runs lists every value.
    `concurrent`: `concurrent_runs(sweep)` when the caller has it already."""
    ok = sweep.ok
    lines = []
    differs = []
    for key in ENV_KEYS:
        col = f"environment.{key}"
        if col not in ok or ok[col].isna().all():
            # gpu: only for runs on a GPU; method_plugins: only with plugins installed; host: since
            # 2026-12-07, code_sha256: since 2026-12-07 (session 33)
            if key not in ("gpu", "host", "method_plugins", "code_sha256"):
                lines.append(f"{key}: not recorded")
            continue
        # a column with a failed run's NaN is float: 2 threads must not read "2.0"
        vals = ok[col].dropna().map(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
        if key == "code_sha256":  # 16 hex digits tell sources apart in a table; metrics.json has all 64
            vals = vals.str[:16]
        uniq = list(dict.fromkeys(vals))
        if key == "date":
            lines.append(f"date: {min(uniq)} .. {max(uniq)}" if len(uniq) > 1 else f"date: {uniq[0]}")
        elif len(uniq) == 1:
            lines.append(f"{key}: {uniq[0]}")
        else:
            lines.append(f"{key}: DIFFERS between runs: " + " | ".join(f"{u} ({(vals == u).sum()} runs)" for u in uniq))
            differs.append(key)
    text = "```\n" + "\n".join(lines) + "\n```"
    if set(differs) & {"cpu", "device", "num_threads", "platform", "gpu", "host"}:
        text += "\n\n**Warning**: runs were timed on different machines or thread counts; latency differences are not comparable."
    if set(differs) & CODE_KEYS:
        text += ("\n\n**Warning**: runs were computed by different code (" + ", ".join(k for k in differs if k in CODE_KEYS)
                 + "); a difference between them may come from the code, not the cuts. Rerunning the sweep with "
                 "`resume=true` decodes again the cells that other code than the installed one computed.")
    for host, ids in (concurrent_runs(sweep) if concurrent is None else concurrent).items():
        text += (f"\n\n**Warning**: runs {', '.join(ids)} decoded at the same time on one machine ({host}), as a "
                 "launcher that runs cells in parallel does (`submitit_local`, or Slurm jobs sharing a node): their "
                 "latencies measure the contention for its cores, not the cuts. Time them side by side "
                 "(`asr-compress-retime`) before citing any latency.")
    return text


def _setup(sweep: Sweep, samples: BootstrapSamples, n_resamples: int, seed: int) -> str:
    ok = sweep.ok
    first = ok.iloc[0] if len(ok) else sweep.runs.iloc[0]
    get = lambda k: first.get(f"config.{k}", NA)  # noqa: E731
    ngram = get("model.ngram_file")  # a path, or NA ("n/a") / None / NaN: no n-gram (or runs made before it existed)
    weights = (f"LM weight {get('decode.lm_weight')}, search_type {get('decode.transducer_search')} (ESPnet's "
               "BeamSearchTransducer: the model is a transducer, which reads no CTC weight or penalty)"
               if first.get("search") == "BeamSearchTransducer" else
               f"CTC weight {get('decode.ctc_weight')}, LM weight {get('decode.lm_weight')}, penalty {get('decode.penalty')}")
    lines = [
        f"- model: `{get('model.name')}`, data: `{get('data.name')}`, decoding: beam {get('decode.beam_size')}, "
        + weights
        + (f", n-gram `{ngram}` at weight {get('decode.ngram_weight')}" if isinstance(ngram, str) and ngram not in (NA, "") else ""),
        "- compressed components (factors): " + (", ".join(
            f"{pretty(c)} in {{{', '.join(sweep.levels[c])}}}" for c in sweep.factors) or "none (single run)"),
        f"- runs: {len(sweep.runs)} found, {len(ok)} finished, {int((sweep.runs['status'] != 'ok').sum())} failed",
        f"- uncertainty: paired bootstrap over {samples.n_utterances} utterances"
        + (f" of {samples.n_speakers} speaker{'s' if samples.n_speakers != 1 else ''}, drawn by speaker"
           if samples.by == "speaker" else "")
        + f", {n_resamples} resamples, "
        f"seed {seed}, 95% percentile intervals" + (f" ({samples.n_dropped} utterances not in every run left out)"
                                                  if samples.n_dropped else ""),
    ]
    fixed = [f"{pretty(c)}={first[c]}" for c in COMPONENTS if c not in sweep.factors and first[c] != NONE]
    if fixed:
        lines.append("- compressed in every run (part of the baseline): " + ", ".join(fixed))
    if sweep.varying_context:
        lines.append("- **warning**: config other than the components varies: " + ", ".join(sweep.varying_context))
    return "\n".join(lines)


def _amount(v: float, unit: str) -> str:
    return f"{abs(v):.2f} {unit}" if unit != "ms" else f"{abs(v):.1f} ms"


def _ci_text(row: pd.Series, unit_fmt: str = "+.2f") -> str:
    if np.isnan(row["ci_low"]):
        return ""
    lo, hi = row["ci_low"], row["ci_high"]
    if lo == hi == 0:  # nothing moved on any resample (e.g. no utterance's errors changed)
        return " (0 on every bootstrap resample)"
    note = "; CI includes 0, so not distinguishable from noise" if lo <= 0 <= hi else ""
    return f" (95% CI {fmt(lo, unit_fmt)} to {fmt(hi, unit_fmt)}{note})"


def summary(sweep: Sweep, att: Attribution, side_by_side: bool = False) -> str:
    """A few plain-language sentences per grid: WER, latency and size, and which cut is responsible.
    `side_by_side`: the report also cites the cells timed side by side, so the sequential runs'
    latency sentences say what they are."""
    if not att.grids:
        return "No component varies in this sweep (or none runs uncompressed), so there is nothing to attribute."
    if len(att.grids) == 1:
        return _grid_summary(sweep, att, att.grids[0], side_by_side)
    return "\n\n".join(f"**Sub-grid `{g.name}`**\n\n" + _grid_summary(sweep, att, g, side_by_side)
                       for g in att.grids)


SEQUENTIAL_TAG = " (sequential runs, drift included; cite the side-by-side timing below)"


def _grid_summary(sweep: Sweep, att: Attribution, g: Grid, side_by_side: bool = False) -> str:
    t = att.table[att.table["grid"] == g.name]
    out: List[str] = []
    base_id, full_id = g.run_ids[0], g.run_ids[-1]
    for metric, noun, unit in (("wer_pct", "WER", "points"), ("latency_ms.mean", "mean latency", "ms"),
                               ("size_mb", "model size", "MB")):
        m = t[t["metric"] == metric]
        if m.empty:
            continue
        tag = SEQUENTIAL_TAG if side_by_side and metric == "latency_ms.mean" else ""
        tot = m[m["kind"] == "total"].iloc[0]
        shap = m[m["kind"] == "shapley"].set_index("term").reindex(g.factors)
        alone = m[(m["kind"] == "moebius") & (m["order"] == 1)].set_index("term").reindex(g.factors)
        level = {"points": "%", "ms": " ms", "MB": " MB"}[unit]
        digits = 1 if unit == "ms" else 2
        cells = [sweep.runs.at[r, metric] for r, st in zip(g.run_ids, g.status) if st == "ok"]
        if len(cells) > 1 and len(set(cells)) == 1:
            # every finished cell the same (a short test set, a cut too light to flip a word): say
            # so, rather than "cutting the encoder cost 0.00 points of the 0.00 points"
            every = "every run" if set(g.status) == {"ok"} else "every finished run"
            out.append(f"**{noun}**{tag}: {cells[0]:.{digits}f}{level} in {every} of this grid: no cut changed it.")
            continue
        if np.isnan(tot["value"]):
            if alone["value"].notna().any():
                parts = [f"cutting the {pretty(c)} alone changed {noun} by {_signed(a['value'], unit)}{_ci_text(a)}"
                         for c, a in alone.iterrows() if not np.isnan(a["value"])]
                why = (plots.ONE_AT_A_TIME if g.one_at_a_time else f"the all-compressed run has no usable "
                       f"{noun} ({'; '.join(blocked_reasons([tot['blocked_by']]))})")
                out.append(f"**{noun}**{tag}: {why}, so only the effects of each cut alone are known, and they need "
                           f"not add up: " + "; ".join(parts) + ".")
            continue
        b = sweep.runs.at[base_id, metric] if g.status[0] == "ok" else np.nan
        f = sweep.runs.at[full_id, metric] if g.status[-1] == "ok" else np.nan
        # "together" and a Shapley split only say something when two or more components were cut:
        # with one factor its Shapley value is the total itself
        together = " together" if len(g.factors) > 1 else ""
        head = (f"**{noun}**{tag}: cutting the {_and(g.factors)}{together} moved {noun} from "
                f"{b:.{digits}f}{level} to {f:.{digits}f}{level}: {_signed(tot['value'], unit)}{_ci_text(tot)}.")
        if len(g.factors) == 1:
            pass  # the total above is the one component's effect
        elif shap["value"].notna().all():
            order = shap["value"].abs().sort_values(ascending=False).index
            first, rest = order[0], order[1:]
            s0 = shap.loc[first]
            verb0 = _verb(metric, s0["value"])
            of_total = f" of the {_amount(tot['value'], unit)}" if tot["value"] != 0 else ""
            sent = (f" Shapley attribution{' (the shares cancel)' if not of_total else ''}: cutting the "
                    f"{pretty(first)} {verb0} {_amount(s0['value'], unit)}{of_total}{_ci_text(s0)}")
            for c in rest:
                sc = shap.loc[c]
                sent += f"; the {pretty(c)} {_verb(metric, sc['value'])} {_amount(sc['value'], unit)}{_ci_text(sc)}"
            head += sent + "."
        else:
            head += (" Shapley values are not computable because grid cells are missing (see Missing runs); "
                     "effects alone: " + "; ".join(f"{pretty(c)} {_signed(a['value'], unit)}"
                                                   for c, a in alone.iterrows()) + ".")
        inter = m[(m["kind"] == "moebius") & (m["order"] == 2)].dropna(subset=["value"])
        if metric == "wer_pct" and len(inter) and np.isfinite(tot["value"]) and tot["value"] != 0:
            big = inter.loc[inter["value"].abs().idxmax()]
            share = abs(big["value"]) / abs(tot["value"])
            if share >= 0.1:
                a, c = big["components"].split("+")
                more = "more" if big["value"] > 0 else "less"
                head += (f" The effects do not add up: cutting the {pretty(a)} and the {pretty(c)} together cost "
                         f"{abs(big['value']):.2f} points {more} than the sum of cutting each alone{_ci_text(big)}.")
            else:
                head += " The effects roughly add up (every pairwise interaction is under 10% of the total)."
        out.append(head)
    # where the time went: per component, the time part that changed most when it was cut
    parts = [p for p in ("frontend", "encoder", "decoder", "ctc", "lm", "search_other")
             if f"time_breakdown_ms.{p}" in set(t["metric"])]
    if parts:
        sents, names, elsewhere = [], plots.part_names(sweep), False
        # Shapley shares where the grid has them; in a one-at-a-time study each cut's effect alone
        # (Möbius order 1), the only time effect it measured
        kind = "shapley" if t[(t["kind"] == "shapley") & t["metric"].str.startswith("time_breakdown_ms.")][
            "value"].notna().any() else "moebius"
        for c in g.factors:
            vals = {}
            for p in parts:
                row = t[(t["metric"] == f"time_breakdown_ms.{p}") & (t["kind"] == kind) & (t["term"] == c)]
                if len(row) and not np.isnan(row["value"].iloc[0]):
                    vals[p] = row["value"].iloc[0]
            if vals:
                big = max(vals, key=lambda k: abs(vals[k]))  # the part that moved most, either way
                # lead with the part the cut component runs itself (each component's time part has
                # its name); naming only the biggest mover told readers that an int8 encoder "saved
                # 5.5 ms/utt in LM scoring" when the later run had merely met a faster machine
                p = c if c in vals else big
                if abs(vals[p]) < 0.05:
                    sent = f"the {pretty(c)} cut changed {names[p] if p == c else 'no time part'} by less than 0.05 ms/utt"
                elif vals[p] < 0:
                    sent = f"the {pretty(c)} cut saved {abs(vals[p]):.1f} ms/utt in {names[p]}"
                else:  # compressed but slower (e.g. int8 kernels on a small CPU model): say so plainly
                    sent = f"the {pretty(c)} cut made {names[p]} SLOWER by {vals[p]:.1f} ms/utt"
                if big != p and abs(vals[big]) >= 0.05:
                    sent += f", while {names[big]}, which the {pretty(c)} does not run, moved by {vals[big]:+.1f} ms/utt"
                    elsewhere = True
                sents.append(sent)
        if sents:
            how = "Shapley" if kind == "shapley" else "each cut alone"
            out.append(f"**Where the time went** ({how}, time breakdown"
                       f"{' of the sequential runs' if side_by_side else ''}): " + "; ".join(sents) + "." + (
                " A part that the cut component does not run moves when the search takes other paths, or when the"
                " machine drifts between runs." if elsewhere else ""))
    if not out:
        why = ("no run of this grid finished" if "ok" not in g.status else
               "the baseline (nothing compressed) did not finish" if g.status[0] != "ok" else
               "no run with a component cut finished")
        out.append(f"Nothing can be attributed: {why}. See Missing runs and Warnings below.")
    return "\n\n".join(out)


def _group_shapley(sweep: Sweep, n_resamples: int, seed: int, by: str) -> str:
    """Markdown table: per utterance group, the WER total change and each component's Shapley value."""
    rows = []
    for group, sub in group_sweeps(sweep).items():
        att = attribute(sub, metrics=["wer_pct"],
                        samples=paired_bootstrap(sub, n_resamples=n_resamples, seed=seed, metrics=["wer_pct"], by=by))
        if not att.grids:
            continue
        g = att.grids[0]
        t = att.table[att.table["grid"] == g.name]
        row = {"group": group, "total change": with_ci(t[t["kind"] == "total"].iloc[0])}
        for c in g.factors:
            row[pretty(c)] = with_ci(t[(t["kind"] == "shapley") & (t["term"] == c)].iloc[0])
        rows.append(row)
    if not rows:
        return ""
    return markdown_table(pd.DataFrame(rows), align=["---"] + ["---:"] * (len(rows[0]) - 1))


def _and(components) -> str:
    names = [pretty(c) for c in components]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _verb(metric: str, v: float) -> str:
    if metric == "wer_pct":
        return "cost" if v >= 0 else "gained back"
    return "saved" if v < 0 else "added"


def _signed(v: float, unit: str) -> str:
    return f"{v:+.1f} ms" if unit == "ms" else f"{v:+.2f} {unit}"


def _command(prog: str, dirs: List[Path], out: Path, out_flag: str) -> str:
    """`prog DIR... [out_flag OUT]`, the flag left out where OUT is the one sweep directory itself."""
    own = len(dirs) == 1 and out.resolve() == dirs[0].resolve()
    return " ".join([prog, *(shlex.quote(str(d)) for d in dirs), *([] if own else [out_flag, shlex.quote(str(out))])])


def _latency_note(att: Attribution, interleaved, dirs: List[Path], out: Path, concurrent: bool = False) -> str:
    """After the summary: the side-by-side latency attribution, or why the sweep's needs one.
    `concurrent`: some runs decoded at the same time on one machine (`concurrent_runs`)."""
    if interleaved is not None:
        return interleaved_summary(*interleaved)
    if not att.grids or "latency_ms.mean" not in set(att.table["metric"]):
        return ""
    retime = _command("asr-compress-retime", dirs, out, "--report-out")
    if concurrent:
        return ("**Latency caveat**: some of these runs decoded at the same time on one machine (see the warning "
                "under Environment), so their latencies include the contention between them. Do not cite this "
                f"latency attribution: time the cells side by side (`{retime}`, which rewrites this report to "
                "cite them) or add `hydra.callbacks.report.retime_rounds=6` to the sweep.")
    return ("**Latency caveat**: these runs were timed one after another, and the intervals above cover "
            "which utterances were drawn, not the machine's drift between runs, which lands on the "
            "components the later runs cut. Before citing a latency attribution, time the cells side by "
            f"side (`{retime}`, which rewrites this report to cite "
            "them) or add `hydra.callbacks.report.retime_rounds=6` to the sweep.")


ONE_AT_A_TIME_ATTRIBUTION = (
    "A one-at-a-time study: no run cuts two components, so each cut's effect alone against the baseline is "
    "all it measures, and the Summary's table is its attribution. Shapley values, main effects and "
    "interactions need the runs that cut several components together (`study=factorial`); `attribution.csv` "
    "has every term of every sub-grid, those blocked named in `blocked_by`.")


def _title(sweep: Sweep, dirs: List[Path]) -> str:
    """`<model> on <test set>` and the folder(s): a sweep folder is named by its time, which says little."""
    def labels(key: str) -> str:
        col = f"config.{key}.name"
        values = [str(v) for v in sweep.runs[col].dropna().unique()] if col in sweep.runs else []
        return ", ".join(values)
    folders = " + ".join(f"`{d.name}`" for d in dirs)
    model, data = labels("model"), labels("data")
    return f"{model} on {data} ({folders})" if model and data else folders


def _markdown(sweep: Sweep, dirs: List[Path], out: Path, att: Attribution, samples: BootstrapSamples,
              broken: pd.DataFrame, figures: Dict[str, Optional[Path]], n_resamples: int, seed: int,
              interleaved=None, explicit: bool = False, cuts: Optional[pd.DataFrame] = None) -> str:
    cmd = _command("asr-compress-report", dirs, out, "--out") + (
        f" --interleaved {shlex.quote(str(interleaved[1]))}" if interleaved is not None and explicit else "")
    concurrent = concurrent_runs(sweep)
    s = [f"# Compression study: {_title(sweep, dirs)}", "",
         f"Generated by `{cmd}` from the run directories; do not edit by hand.", "",
         "## Environment", "", environment_block(sweep, concurrent), "",
         "## Setup", "", _setup(sweep, samples, n_resamples, seed), "",
         "## Summary", ""]
    # cut by cut: the side-by-side timing is a column of the cut table, when the file times the runs
    by_cut = cuts is not None and _timed_side_by_side(cuts)
    if cuts is not None:
        s += [cut_summary(sweep, cuts, plots.part_names(sweep), side_by_side=(
            f"`{interleaved[1]}`, {schedule(interleaved[0])}" if by_cut else None)), ""]
    else:
        s += [summary(sweep, att, side_by_side=interleaved is not None), ""]
    # no caveat where no cut has a latency to cite (every one simulated, failed or on another machine)
    untimed = cuts is not None and cuts["delta_latency"].isna().all()
    note = None if by_cut or untimed else _latency_note(att, interleaved, dirs, out, bool(concurrent))
    if note:
        s += [note, ""]
    if by_cut:
        s += cut_timing_section(cuts, interleaved[0], schedule(interleaved[0]))
    elif interleaved is not None:
        s += interleaved_section(interleaved[0])
    s += ["## WER per run", "",
          "Percent of reference words (Corr, Sub, Del, Ins, Err) and of sentences (S.Err), ESPnet style.", "",
          wer_table(sweep), ""]
    d = samples.delta_ci()
    if len(d):
        dd = d[d["metric"] == "wer_pct"].set_index("run_id")
        rows = [{"run": sweep.runs.at[r, "label"], "WER (%)": sweep.runs.at[r, "wer_pct"],
                 "Δ WER vs baseline (points)": dd.at[r, "delta"],
                 "95% CI": fmt_ci(dd.at[r, "ci_low"], dd.at[r, "ci_high"]),
                 "P(Δ ≤ 0)": dd.at[r, "p_le_0"]} for r in dd.index]
        s += ["Paired bootstrap of each run against the baseline (same resampled utterances):", "",
              markdown_table(pd.DataFrame(rows), {"Δ WER vs baseline (points)": lambda x: fmt(x, "+.2f"),
                                                  "P(Δ ≤ 0)": lambda x: fmt(x, ".3f")}), ""]
    s += ["## Attribution", "", ONE_AT_A_TIME_ATTRIBUTION if cuts is not None else
          "None: no component varies in this sweep (see Summary)." if not att.grids else
          "Shapley: the component's fair share of the all-compressed change (the shares add up to the total). "
          "Alone: cutting only that component vs the baseline; interaction: the extra change when both "
          "are cut beyond the sum of each alone (0 = they add up). Main effect: mean change over the "
          "other components' settings. Brackets: 95% paired-bootstrap CIs. Full table: `attribution.csv`.", ""]
    metric_names = ({**METRIC_NAMES, "time_breakdown_ms.lm": f"time: {plots.LM_WITH_NGRAM} (ms/utt)"}
                    if plots.searched_with_ngram(sweep) else METRIC_NAMES)
    for g in att.grids if cuts is None else []:
        if len(att.grids) > 1:
            s += [f"### Sub-grid `{g.name}`", ""]
        for metric in ("wer_pct", "latency_ms.mean"):
            if metric in set(att.table["metric"]):
                s += [f"**{METRIC_NAMES.get(metric, metric)}**", "", shapley_table(att, g.name, metric), ""]
        every = metrics_shapley_table(att, g.name, [m for m in SUMMARY_METRICS if m in set(att.table["metric"])],
                                      metric_names)
        if every:
            s += ["**Shapley values for every metric** (total change and each component's share)", "", every, ""]
    s += ["## Per utterance", ""]
    shift = error_shift(sweep)
    if len(shift):
        shift = shift.assign(cut=[f"{pretty(c)} ({lv})" for c, lv in zip(shift["component"], shift["level"])])
        s += ["Cutting one component alone, utterance by utterance against the baseline:", "",
              markdown_table(shift[["cut", "n_utterances", "broke", "fixed", "unchanged", "delta_substitutions",
                                    "delta_deletions", "delta_insertions", "delta_wer_pct"]].rename(columns={
                  "n_utterances": "utts", "delta_substitutions": "Δ Sub", "delta_deletions": "Δ Del",
                  "delta_insertions": "Δ Ins", "delta_wer_pct": "Δ WER (points)"}),
                  {c: (lambda x: fmt(x, "+.0f")) for c in ("Δ Sub", "Δ Del", "Δ Ins")} |
                  {"Δ WER (points)": lambda x: fmt(x, "+.2f"), "utts": lambda x: fmt(x, ".0f"),
                   "broke": lambda x: fmt(x, ".0f"), "fixed": lambda x: fmt(x, ".0f"),
                   "unchanged": lambda x: fmt(x, ".0f")}), ""]
    else:
        s += ["No single-cut run with per-utterance results.", ""]
    if len(broken):
        top = broken.groupby("component", sort=False).head(3)
        s += ["Worst regressions per cut (all in `broken_utterances.csv`):", "",
              markdown_table(top[["component", "id", "delta_errors", "ref", "hyp_baseline", "hyp_cut"]].rename(
                  columns={"delta_errors": "Δ errors"}), {"Δ errors": lambda x: fmt(x, "+.0f")}), ""]
    gw = group_wer(sweep)
    if len(gw):
        gw = gw.reset_index().rename(columns={"label": "run"})
        gw.columns = [str(c) if c == "run" else f"WER {c} (%)" for c in gw.columns]
        s += ["## WER per voice group", "", markdown_table(gw, {c: (lambda x: fmt(x, ".2f"))
                                                                for c in gw.columns if c != "run"}), ""]
    gs = _group_shapley(sweep, n_resamples, seed, samples.by) if cuts is None else ""
    gc = cut_groups(sweep, n_resamples, seed, samples.by) if cuts is not None else ""
    if gc:
        s += ["## WER change per voice group, cut by cut", "",
              "Each cut against the baseline on each group's utterances alone: which cut hurts which voices "
              "(WER points; brackets: 95% paired-bootstrap CIs within the group).", "", gc, ""]
    if gs:
        s += ["## Shapley values per voice group", "",
              "The same runs restricted to each group's utterances: which cut hurts which voices "
              "(WER points; brackets: 95% paired-bootstrap CIs within the group).", "", gs, ""]
    s += ["## Missing runs", "", missing_table(att, sweep, one_at_a_time=cuts is not None), ""]
    problems = sweep.problems + samples.problems
    if problems:
        s += ["## Warnings", ""] + [f"- {p}" for p in problems] + [""]
    s += ["## Figures", ""]
    if not figures:
        s += ["Not generated (`--no-plots`).", ""]
    for title, p in figures.items():
        if p is not None:
            s += [f"### {title}", "", f"![{title}]({Path(p).name})", ""]
    return "\n".join(s)
