"""Expand a study preset (conf/study/<name>.yaml) into the list of override sets to run.

    python -m asr_compress.analysis.studies one_at_a_time --methods int8_dynamic,prune_unstructured
    python -m asr_compress.analysis.studies factorial --components encoder,lm

    expand_study("one_at_a_time", ["int8_dynamic"])
    # [[], ["encoder=int8_dynamic"], ["decoder=int8_dynamic"], ["ctc=int8_dynamic"], ["lm=int8_dynamic"]]

A preset either lists its runs (`study.runs`, each a list of overrides in which METHOD stands
for every method of `study.methods`) or is a Cartesian grid (`hydra.sweeper.params`, as Hydra's
basic sweeper would expand it). `methods` and `components` narrow or replace the preset's own.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import yaml

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
PLACEHOLDER = "METHOD"


def load_study(name: str, conf_dir: Union[str, Path, None] = None) -> dict:
    path = Path(conf_dir or CONF_DIR) / "study" / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yaml")) if path.parent.is_dir() else []
        raise FileNotFoundError(f"no study preset {name!r} at {path}; known presets: {', '.join(known) or 'none'}")
    with open(path) as f:
        return yaml.safe_load(f) or {}


def expand_study(name: str, methods: Optional[Sequence[str]] = None, components: Optional[Sequence[str]] = None,
                 conf_dir: Union[str, Path, None] = None) -> List[List[str]]:
    """Override sets (one list per run, baseline first) for the study preset `name`."""
    cfg = load_study(name, conf_dir)
    study = cfg.get("study") or {}
    user_methods = list(methods) if methods else None
    if "runs" in study:
        return _expand_runs(study["runs"], user_methods or list(study.get("methods") or []), components)
    params: Dict[str, str] = ((cfg.get("hydra") or {}).get("sweeper") or {}).get("params") or {}
    if not params:
        raise ValueError(f"study {name!r} has neither study.runs nor hydra.sweeper.params")
    if list(params) == ["cut"]:  # one component at a time: cut=<component>_<method>
        return _expand_cuts(str(params["cut"]), user_methods, components)
    grid: Dict[str, List[str]] = {}
    for key, values in params.items():
        if components is not None and key not in components:
            continue
        vals = [v.strip() for v in str(values).split(",")]
        if user_methods:  # the user's methods replace the preset's grid values
            vals = ["none"] + [m for m in user_methods if m != "none"]
        grid[key] = vals
    runs = []
    for combo in itertools.product(*grid.values()):
        runs.append([f"{k}={v}" for k, v in zip(grid, combo) if v != "none"])
    return sorted(runs, key=len) if runs else [[]]


def _expand_cuts(values: str, methods: Optional[Sequence[str]],
                 components: Optional[Sequence[str]]) -> List[List[str]]:
    """[[], [encoder=m], [decoder=m], ...] from a sweep over the `cut` group."""
    cuts = [v.strip() for v in values.split(",") if v.strip() and v.strip() != "none"]
    pairs = [tuple(c.split("_", 1)) for c in cuts]
    comps = list(dict.fromkeys(c for c, _ in pairs))
    if components is not None:
        comps = [c for c in comps if c in components]
    meths = list(methods) if methods else list(dict.fromkeys(m for _, m in pairs))
    return [[]] + [[f"{c}={m}"] for c in comps for m in meths if m != "none"]


def _expand_runs(templates: Sequence[Sequence[str]], methods: Sequence[str],
                 components: Optional[Sequence[str]]) -> List[List[str]]:
    out: List[List[str]] = []
    for tpl in templates:
        tpl = list(tpl or [])
        if components is not None and any(o.split("=")[0] not in components for o in tpl):
            continue
        if any(PLACEHOLDER in o for o in tpl):
            if not methods:
                raise ValueError(f"run {tpl} uses {PLACEHOLDER} but no methods are given")
            variants = [[o.replace(PLACEHOLDER, m) for o in tpl] for m in methods]
        else:
            variants = [tpl]
        for v in variants:
            if v not in out:
                out.append(v)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m asr_compress.analysis.studies",
                                description="Print one override set per line (the baseline is an empty line).")
    p.add_argument("name", help="study preset under conf/study/ (e.g. one_at_a_time, factorial)")
    p.add_argument("--methods", default=None, help="comma-separated methods replacing the preset's")
    p.add_argument("--components", default=None, help="comma-separated components to keep")
    p.add_argument("--conf-dir", default=None, help=f"config dir (default {CONF_DIR})")
    args = p.parse_args(argv)
    split = (lambda s: [x for x in s.split(",") if x] if s else None)  # noqa: E731
    try:
        runs = expand_study(args.name, split(args.methods), split(args.components), args.conf_dir)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for r in runs:
        print(" ".join(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
