"""Read the runs of a sweep back from disk into tidy tables.

    from asr_compress.analysis.collect import collect
    sweep = collect("multirun/2026-11-22/21-40-00")   # or a list of run dirs
    sweep.runs[["label", "encoder", "lm", "wer_pct", "latency_ms.mean"]]

A run directory holds `.hydra/config.yaml` (+ `overrides.yaml`), and, if it
finished, `metrics.json` and `utterances.jsonl`. A run without `metrics.json`
is a failed run: it keeps its row (status "failed") so that the grid knows
which cells are missing. A key missing from `metrics.json` is "not measured"
and becomes NaN, never 0.

The method chosen for a component is its `name`; when two runs use the same
name with different parameters (prune amount 0.3 vs 0.5), the level becomes
`name(amount=0.3)` so that the two are never merged.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

import pandas as pd
import yaml

from asr_compress import COMPONENTS

NONE = "none"
PathLike = Union[str, Path]

# Per-utterance timing parts, in the order the stacked bars draw them.
TIME_PARTS = ("frontend", "encoder", "decoder", "ctc", "lm", "search_other")


@dataclass
class Sweep:
    """All runs of one sweep, read back from disk."""

    # one row per run (index: run_id = path relative to the sweep root); columns: status,
    # run_dir, label, one column per component (method level), config context, flattened metrics
    runs: pd.DataFrame
    # run_id -> per-utterance table (only for runs that wrote utterances.jsonl)
    utterances: Dict[str, pd.DataFrame]
    # components whose method varies across runs, in COMPONENTS order
    factors: List[str]
    # factor -> its levels, "none" first
    levels: Dict[str, List[str]]
    # run_id of the run where every factor is "none" (None when it is missing or failed)
    baseline: Optional[str]
    # non-component config values that vary across runs (model, data, decode...): a warning sign
    varying_context: List[str] = field(default_factory=list)
    # human-readable problems found while reading (duplicates, unreadable files...)
    problems: List[str] = field(default_factory=list)
    root: Optional[Path] = None

    @property
    def ok(self) -> pd.DataFrame:
        """The runs that finished (have metrics.json)."""
        return self.runs[self.runs["status"] == "ok"]

    def utterance_table(self) -> pd.DataFrame:
        """All per-utterance rows of all runs in one long table, with run_id, label and the factors."""
        parts = []
        for run_id, df in self.utterances.items():
            info = self.runs.loc[run_id, ["label", *self.factors]]
            parts.append(df.assign(run_id=run_id, **{k: info[k] for k in info.index}))
        if not parts:
            return pd.DataFrame(columns=["run_id", "label", *self.factors, "id"])
        long = pd.concat(parts, ignore_index=True)
        front = ["run_id", "label", *self.factors]
        return long[front + [c for c in long.columns if c not in front]]


def find_run_dirs(sweep_dir: PathLike) -> List[Path]:
    """Run directories under `sweep_dir`: itself if it is a run, else its subdirs with `.hydra/`.

    Numbered subdirs (Hydra's default `${hydra.job.num}`) sort numerically, others by name.
    """
    root = Path(sweep_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"not a directory: {root}")
    if (root / ".hydra" / "config.yaml").is_file():
        return [root]
    found = [p for p in root.iterdir() if (p / ".hydra" / "config.yaml").is_file()]
    found.sort(key=lambda p: (0, int(p.name), "") if p.name.isdigit() else (1, 0, p.name))
    return found


def flatten(d: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """Nested dict -> {"a.b.c": scalar}; lists and None are dropped (not measured)."""
    out: Dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        elif isinstance(value, (bool, int, float, str)) and not isinstance(value, list):
            out[name] = value
    return out


def _read_yaml(path: Path) -> Any:
    with open(path) as f:
        return yaml.safe_load(f)


def _component_method(cfg: Dict[str, Any], component: str) -> Dict[str, Any]:
    """The method mapping of a component; a bare string is a name; a missing key means "none"."""
    value = cfg.get(component)
    if value is None:
        return {"name": NONE}
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, dict):
        return dict(value, name=str(value.get("name", NONE)))
    raise ValueError(f"config key {component!r} should be a mapping with `name`, got {value!r}")


def read_utterances(path: Path) -> pd.DataFrame:
    """utterances.jsonl -> one row per utterance; time_breakdown_ms flattened to `time_breakdown_ms.<part>`."""
    rows = []
    with open(path) as f:
        for line in f:
            if line.strip():
                rows.append(flatten(json.loads(line)))
    df = pd.DataFrame(rows)
    if "id" in df:
        df["id"] = df["id"].astype(str)
    return df


def load_run(run_dir: PathLike) -> Dict[str, Any]:
    """One run directory -> {"config", "overrides", "metrics", "utterances", "problems", "error"}.

    `metrics` is None for a failed run (no metrics.json) and also for an unreadable one (a truncated
    file from a killed job): that run counts as failed, with the reason in `problems`. An unreadable
    utterances.jsonl only loses the per-utterance view of that run. A broken config raises: without
    it the run cannot be placed in the grid. `error` is the first line of `error.txt`, which
    asr-compress writes when a sweep cell fails.
    """
    run_dir = Path(run_dir)
    hydra_dir = run_dir / ".hydra"
    config = _read_yaml(hydra_dir / "config.yaml") or {}
    overrides = _read_yaml(hydra_dir / "overrides.yaml") if (hydra_dir / "overrides.yaml").is_file() else []
    problems: List[str] = []
    metrics = None
    if (run_dir / "metrics.json").is_file():
        try:
            with open(run_dir / "metrics.json") as f:
                metrics = json.load(f)
            if not isinstance(metrics, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            metrics = None
            problems.append(f"{run_dir}: metrics.json unreadable ({exc}); counted as a failed run")
    utts = None
    if (run_dir / "utterances.jsonl").is_file():
        try:
            utts = read_utterances(run_dir / "utterances.jsonl")
        except ValueError as exc:
            problems.append(f"{run_dir}: utterances.jsonl unreadable ({exc}); no per-utterance view for it")
    error = None
    if (run_dir / "error.txt").is_file():  # written by asr-compress when a sweep cell fails
        error = (run_dir / "error.txt").read_text(errors="replace").strip().splitlines()[:1]
        error = error[0] if error else "(empty error.txt)"
    return {"config": config, "overrides": overrides or [], "metrics": metrics, "utterances": utts,
            "problems": problems, "error": error}


def _levels_for(methods: List[Dict[str, Any]]) -> List[str]:
    """Level names for one component across runs: the method name, plus the params that tell apart
    two runs with the same name."""
    by_name: Dict[str, List[Dict[str, Any]]] = {}
    for m in methods:
        by_name.setdefault(m["name"], []).append(m)
    varying: Dict[str, List[str]] = {}
    for name, ms in by_name.items():
        keys = sorted({k for m in ms for k in m if k != "name"})
        varying[name] = [k for k in keys if len({json.dumps(m.get(k), sort_keys=True) for m in ms}) > 1]
    out = []
    for m in methods:
        keys = varying[m["name"]]
        if keys:
            params = ",".join(f"{k}={json.dumps(m.get(k)) if not isinstance(m.get(k), (int, float, str)) else m.get(k)}" for k in keys)
            out.append(f"{m['name']}({params})")
        else:
            out.append(m["name"])
    return out


def _context(config: Dict[str, Any]) -> Dict[str, Any]:
    """Non-component config that should be equal across a sweep, as `config.<key>.<field>` columns."""
    ctx: Dict[str, Any] = {}
    for key in ("model", "data", "decode", "eval"):
        if isinstance(config.get(key), dict):
            ctx.update(flatten(config[key], f"config.{key}."))
    return ctx


def _add_derived(row: Dict[str, Any]) -> None:
    """Report units: WER/CER in percent, size in MB (10^6 bytes), total parameters."""
    for src, dst in (("wer", "wer_pct"), ("cer", "cer_pct")):
        if isinstance(row.get(src), (int, float)):
            row[dst] = 100.0 * row[src]
    if isinstance(row.get("total_size_bytes"), (int, float)):
        row["size_mb"] = row["total_size_bytes"] / 1e6
    params = [row.get(f"components.{c}.params") for c in COMPONENTS if f"components.{c}.params" in row]
    if params and all(isinstance(p, (int, float)) for p in params):
        row["params_total"] = float(sum(params))


def as_dirs(source: Union[PathLike, Sequence[PathLike]]) -> List[Path]:
    """One directory or several, as a list of paths (what the report and retime tools take)."""
    return [Path(source)] if isinstance(source, (str, Path)) else [Path(p) for p in source]


def collect(source: Union[PathLike, Sequence[PathLike]]) -> Sweep:
    """Read a multirun directory (or a single run dir) into a `Sweep`; or a list of them, read as one
    study (several multiruns of one model on one test set, e.g. a baseline sweep and a later one that
    adds a method). Run ids are then paths relative to the directories' common parent."""
    sources = as_dirs(source)
    if not sources:
        raise ValueError("collect() got an empty list of directories")
    run_dirs: List[Path] = []
    seen = set()
    for src in sources:
        found = find_run_dirs(src)
        if not found:
            raise FileNotFoundError(f"no run directories (with .hydra/config.yaml) under {src}")
        for d in found:  # a directory given twice, or a sweep and one of its runs, counts once
            if d.resolve() not in seen:
                seen.add(d.resolve())
                run_dirs.append(d)
    if isinstance(source, (str, Path)):
        root = sources[0]
    else:
        root = Path(*_common_parts(run_dirs)) if len(run_dirs) > 1 else run_dirs[0].parent
    problems: List[str] = []
    rows: List[Dict[str, Any]] = []
    utterances: Dict[str, pd.DataFrame] = {}
    methods: Dict[str, List[Dict[str, Any]]] = {c: [] for c in COMPONENTS}
    for run_dir in run_dirs:
        run_id = _run_id(run_dir, root)
        try:
            run = load_run(run_dir)
        except Exception as exc:  # one unreadable run must not hide the others
            problems.append(f"{run_dir}: unreadable ({type(exc).__name__}: {exc})")
            continue
        problems += run["problems"]
        cfg = run["config"]
        row: Dict[str, Any] = {"run_id": run_id, "run_dir": str(run_dir),
                               "status": "ok" if run["metrics"] is not None else "failed",
                               "overrides": " ".join(map(str, run["overrides"])),
                               "error": run.get("error")}
        for c in COMPONENTS:
            methods[c].append(_component_method(cfg, c))
            # every method parameter, so runs.csv holds every config choice
            row.update(flatten({k: v for k, v in methods[c][-1].items() if k != "name"}, f"config.{c}."))
        row.update(_context(cfg))
        if run["metrics"] is not None:
            row.update(flatten(run["metrics"]))
            _add_derived(row)
        rows.append(row)
        if run["utterances"] is not None and run["metrics"] is not None:
            utterances[run_id] = run["utterances"]
    runs = pd.DataFrame(rows)
    if runs.empty:
        raise FileNotFoundError(f"no readable runs under {root}: " + "; ".join(problems))
    for c in COMPONENTS:
        runs[c] = _levels_for(methods[c])
    runs = runs.set_index("run_id", drop=False)

    factors = [c for c in COMPONENTS if runs[c].nunique() > 1]
    levels = {c: sorted(runs[c].unique(), key=lambda lv: (lv != NONE, lv)) for c in factors}
    for c in factors:
        if NONE not in levels[c]:
            problems.append(f"component {c!r} varies but never runs uncompressed ('none'): "
                            f"no baseline to attribute its effect against")
    varying_context = [col for col in runs.columns if col.startswith(("config.model.", "config.data.",
                                                                       "config.decode.", "config.eval."))
                       and runs[col].astype(str).nunique() > 1]
    problems += _unplanned(sources, runs)
    if "resumed_utterances" in runs:  # a killed cell continued by resume=true (partial_decode.py)
        resumed = runs.index[runs["resumed_utterances"].fillna(0) > 0]
        if len(resumed):
            problems.append(f"run(s) {', '.join(resumed)} took some utterances from an earlier process of the same "
                            "cell that was stopped (resume=true; same kind of machine): their latencies were measured then")
    if varying_context:
        problems.append("config other than the components varies across runs: " + ", ".join(varying_context)
                        + " (attribution assumes it is fixed)")

    runs["label"] = [_label(r, factors) for _, r in runs.iterrows()]
    base = runs[(runs[factors] == NONE).all(axis=1)] if factors else runs
    baseline: Optional[str] = None
    base_ok = base[base["status"] == "ok"]
    if len(base_ok) >= 1:
        baseline = str(base_ok.index[0])
        if len(base_ok) > 1:
            problems.append(f"{len(base_ok)} baseline runs ({', '.join(base_ok.index)}); using {baseline}"
                            + _baselines_differ(base_ok))
    else:
        problems.append("no finished baseline run (every component 'none'): deltas cannot be computed")
    dup = runs[runs["status"] == "ok"].duplicated(subset=factors, keep=False) if factors else None
    if dup is not None:  # the baseline's copies have their own line above
        dup = dup & ~dup.index.isin(base_ok.index)
    if dup is not None and dup.any():
        problems.append("several finished runs share one grid cell: " + ", ".join(dup.index[dup])
                        + " (the first of each is used)")
    for p in problems:
        warnings.warn(p, stacklevel=2)
    cols = ["run_id", "label", "status"] + list(COMPONENTS)
    runs = runs[cols + [c for c in runs.columns if c not in cols]]
    return Sweep(runs=runs, utterances=utterances, factors=factors, levels=levels, baseline=baseline,
                 varying_context=varying_context, problems=problems, root=root)


def _baselines_differ(base: pd.DataFrame) -> str:
    """What runs of the same uncompressed cell disagree on (each sweep's own baseline, in a study read
    from several sweep directories): WER when they did not decode alike, latency when the machine
    drifted between them. Empty when they agree."""
    said = []
    for col, what, unit, fmt, why in (
            ("wer_pct", "WER", "%", ".2f", "they did not decode alike (other code, data or decoding)"),
            ("latency_ms.mean", "mean latency", " ms/utt", ".1f",
             f"the machine's timing drifted between them, and the cuts are compared with {base.index[0]} alone; "
             "time the cells side by side (asr-compress-retime)")):
        shown = [format(v, fmt) for v in base[col]] if col in base and base[col].notna().all() else []
        if len(set(shown)) > 1:
            said.append(f"their {what} differs ({', '.join(shown)}{unit}): {why}")
    return "".join(f"; {x}" for x in said)


def planned_levels(sweep_dir: PathLike) -> Dict[str, List[str]]:
    """Component -> method names the sweep asked for, from Hydra's `multirun.yaml` (empty if absent).

    Reads the command-line sweep (`hydra.overrides.task`, e.g. `encoder=none,int8_dynamic`) and
    `hydra.sweeper.params` (study presets).
    """
    path = Path(sweep_dir) / "multirun.yaml"
    if not path.is_file():
        return {}
    try:
        cfg = _read_yaml(path) or {}
    except Exception:  # noqa: BLE001 - a broken multirun.yaml only loses this cross-check
        return {}
    hydra_cfg = cfg.get("hydra") or {}
    specs: List[str] = list(((hydra_cfg.get("overrides") or {}).get("task")) or [])
    specs += [f"{k}={v}" for k, v in ((hydra_cfg.get("sweeper") or {}).get("params") or {}).items()]
    out: Dict[str, List[str]] = {}
    for spec in specs:
        key, _, value = str(spec).partition("=")
        key = key.lstrip("+~")
        if key.endswith(".name"):
            key = key[: -len(".name")]
        if key in COMPONENTS and value:
            out[key] = [v.strip().strip("'\"") for v in value.split(",")]
    return out


def _unplanned(sweep_dirs: Sequence[Path], runs: pd.DataFrame) -> List[str]:
    """Levels a sweep planned that none of its run directories holds (jobs that never started)."""
    problems = []
    for sweep_dir in sweep_dirs:
        inside = [_is_within(Path(d), sweep_dir) for d in runs["run_dir"]]
        problems += _unplanned_in(sweep_dir, runs[inside])
    return problems


def _is_within(path: Path, parent: Path) -> bool:
    try:
        _absolute(path).relative_to(_absolute(parent))
        return True
    except ValueError:
        return False


def _unplanned_in(sweep_dir: Path, runs: pd.DataFrame) -> List[str]:
    problems = []
    for c, levels in planned_levels(sweep_dir).items():
        seen = {str(x).split("(")[0] for x in runs[c]}
        lost = [lv for lv in levels if lv not in seen]
        if lost:
            problems.append(f"{sweep_dir / 'multirun.yaml'} plans {c} in {{{', '.join(levels)}}} but no run "
                            f"directory has {c}={', '.join(lost)} (jobs that never started)")
    return problems


MACHINE_KEYS = ("environment.cpu", "environment.device", "environment.num_threads", "environment.platform")


def same_machine_as_baseline(sweep: Sweep) -> pd.Series:
    """Per run: timed on the baseline's machine (cpu, device, threads, platform)? Unknown counts as same."""
    runs = sweep.runs
    same = pd.Series(True, index=runs.index)
    if sweep.baseline is None:
        return same
    for key in MACHINE_KEYS:
        if key in runs:
            base = runs.at[sweep.baseline, key]
            same &= runs[key].isna() | (runs[key].astype(str) == str(base)) | pd.isna(base)
    return same


def repeated_cells(sweep: Sweep) -> Dict[str, str]:
    """{run_id: the earlier finished run of its grid cell} for the finished runs that repeat a cell
    (each sweep's own baseline, in a study of several): the report uses the earlier one."""
    first: Dict[tuple, str] = {}
    repeats: Dict[str, str] = {}
    if not sweep.factors:
        return repeats
    for rid, cell in zip(sweep.ok.index, sweep.ok[sweep.factors].itertuples(index=False)):
        if tuple(cell) in first:
            repeats[rid] = first[tuple(cell)]
        else:
            first[tuple(cell)] = rid
    return repeats


def simulated_runs(sweep: Sweep) -> pd.Series:
    """Per run: does any component report `kernel: simulated`? Such a run reproduces the accuracy of a
    method but runs dense float32 kernels, so its timings must never be read as a speed-up."""
    cols = [f"components.{c}.kernel" for c in COMPONENTS if f"components.{c}.kernel" in sweep.runs]
    if not cols:
        return pd.Series(False, index=sweep.runs.index)
    return (sweep.runs[cols].astype(str) == "simulated").any(axis=1)


def _label(row: pd.Series, factors: Iterable[str]) -> str:
    cut = [f"{c}={row[c]}" for c in factors if row[c] != NONE]
    return "+".join(cut) if cut else "baseline"


def _run_id(run_dir: Path, root: Path) -> str:
    """The run's path under `root`, as given: a run linked into a study folder keeps the name it has there."""
    try:
        rel = _absolute(run_dir).relative_to(_absolute(root))
        return str(rel) if str(rel) != "." else run_dir.name
    except ValueError:
        return str(run_dir)


def _absolute(path: Path) -> Path:
    """Absolute and without `..`, symlinks kept (not `resolve()`)."""
    return Path(os.path.abspath(path))


def _common_parts(paths: List[Path]) -> List[str]:
    parts = [_absolute(p).parts for p in paths]
    common = []
    for items in zip(*parts):
        if len(set(items)) != 1:
            break
        common.append(items[0])
    return common or ["/"]


def concurrent_runs(sweep: Sweep) -> Dict[str, List[str]]:
    """{host: run ids} of finished runs whose decoding overlapped in time with another's on the same
    host (metrics.json `decode_window` and `environment.host`; runs without them are not judged)."""
    cols = ["decode_window.start", "decode_window.end", "environment.host"]
    ok = sweep.ok
    if not all(c in ok for c in cols):
        return {}
    t = ok[cols].dropna()
    out: Dict[str, List[str]] = {}
    for host, g in t.groupby("environment.host", sort=False):
        start, end = pd.to_datetime(g[cols[0]]), pd.to_datetime(g[cols[1]])
        hit = [r for r in g.index if ((start < end[r]) & (end > start[r]) & (g.index != r)).any()]
        if hit:
            out[str(host)] = [str(r) for r in hit]
    return out
