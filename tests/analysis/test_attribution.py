import itertools
from math import factorial

import numpy as np
import pytest

from asr_compress.analysis.attribution import (
    apply_terms, attribute, shapley_values, terms_and_coefficients)
from asr_compress.analysis.collect import collect

FACTORS = ["encoder", "decoder", "lm"]


def _terms(att, metric="wer_pct", kind=None, grid=None):
    t = att.table[att.table["metric"] == metric]
    if grid is not None:
        t = t[t["grid"] == grid]
    if kind is not None:
        t = t[t["kind"] == kind]
    return dict(zip(t["term"], t["value"]))


def test_additive_grid_shapley_equals_main_effect_equals_effect_alone(make_sweep):
    att = attribute(collect(make_sweep(interaction=False)))
    shap = _terms(att, kind="shapley")
    assert shap == pytest.approx({"encoder": 2.5, "decoder": 2.0, "lm": 3.5}, abs=1e-12)
    assert _terms(att, kind="main_effect") == pytest.approx(shap, abs=1e-12)
    moeb = _terms(att, kind="moebius")
    assert {c: moeb[c] for c in FACTORS} == pytest.approx(shap, abs=1e-12)
    assert [moeb[k] for k in moeb if " x " in k] == pytest.approx([0, 0, 0, 0], abs=1e-12)
    assert _terms(att, kind="total")["total"] == pytest.approx(8.0)


def test_interaction_grid_hand_checked(make_sweep):
    att = attribute(collect(make_sweep(interaction=True)))
    # encoder alone +2.5, decoder alone +2.0, both together a further +5.0 split evenly by Shapley
    assert _terms(att, kind="shapley") == pytest.approx({"encoder": 5.0, "decoder": 4.5, "lm": 3.5}, abs=1e-12)
    moeb = _terms(att, kind="moebius")
    assert moeb["encoder"] == pytest.approx(2.5) and moeb["decoder"] == pytest.approx(2.0)
    assert moeb["encoder x decoder"] == pytest.approx(5.0)
    assert moeb["encoder x lm"] == pytest.approx(0.0, abs=1e-12)
    assert moeb["encoder x decoder x lm"] == pytest.approx(0.0, abs=1e-12)
    # latency: each cut halves its part; no interaction
    lat = _terms(att, metric="time_breakdown_ms.decoder", kind="shapley")
    assert lat == pytest.approx({"encoder": 0.0, "decoder": -18.5, "lm": 0.0}, abs=1e-12)


def test_shapley_sums_to_total_change_for_every_metric(make_sweep):
    sweep = collect(make_sweep(interaction=True))
    att = attribute(sweep)
    full = sweep.runs[(sweep.runs[FACTORS] != "none").all(axis=1)].iloc[0]
    base = sweep.runs.loc[sweep.baseline]
    for metric, t in att.table.groupby("metric"):
        shap = t[t["kind"] == "shapley"]["value"].to_numpy()
        expected = full[metric] - base[metric]
        assert np.isclose(shap.sum(), expected, rtol=1e-12, atol=0), metric
        assert np.isclose(t[t["kind"] == "moebius"]["value"].sum(), expected, rtol=1e-12, atol=1e-12), metric


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_efficiency_on_random_games_and_matches_permutation_definition(k):
    rng = np.random.default_rng(k)
    factors = [f"c{i}" for i in range(k)]
    vals = {cell: float(rng.normal(10, 3)) for cell in itertools.product([False, True], repeat=k)}
    phi = shapley_values(vals, factors)
    total = vals[(True,) * k] - vals[(False,) * k]
    assert np.isclose(sum(phi.values()), total, rtol=1e-12, atol=0)
    if k <= 4:  # brute force: average marginal contribution over all orderings
        brute = dict.fromkeys(factors, 0.0)
        for perm in itertools.permutations(range(k)):
            cell = [False] * k
            for i in perm:
                before = vals[tuple(cell)]
                cell[i] = True
                brute[factors[i]] += (vals[tuple(cell)] - before) / factorial(k)
        assert phi == pytest.approx(brute, rel=1e-12)


def test_missing_cell_blocks_exactly_the_terms_that_need_it(make_sweep):
    # enc+lm failed (config, no metrics); dec+lm never ran at all
    root = make_sweep(interaction=True, failed=[("int8_dynamic", "none", "int8_dynamic")],
                      missing=[("none", "int8_dynamic", "int8_dynamic")])
    att = attribute(collect(root))
    wer = att.table[att.table["metric"] == "wer_pct"].set_index(["kind", "term"])
    for c in FACTORS:
        assert np.isnan(wer.loc[("shapley", c), "value"])
        assert np.isnan(wer.loc[("main_effect", c), "value"])
        assert "encoder=int8_dynamic+lm=int8_dynamic (failed)" in wer.loc[("shapley", c), "blocked_by"]
        assert "decoder=int8_dynamic+lm=int8_dynamic (absent)" in wer.loc[("shapley", c), "blocked_by"]
    # still computable from present cells, and computed correctly
    assert wer.loc[("moebius", "encoder"), "value"] == pytest.approx(2.5)
    assert wer.loc[("moebius", "encoder x decoder"), "value"] == pytest.approx(5.0)
    assert wer.loc[("total", "total"), "value"] == pytest.approx(13.0)
    assert wer.loc[("moebius", "encoder x decoder"), "blocked_by"] == ""
    assert np.isnan(wer.loc[("moebius", "encoder x lm"), "value"])
    assert np.isnan(wer.loc[("moebius", "decoder x lm"), "value"])
    assert np.isnan(wer.loc[("moebius", "encoder x decoder x lm"), "value"])
    missing = att.missing.set_index("cell")
    assert set(missing.index) == {"encoder=int8_dynamic+lm=int8_dynamic", "decoder=int8_dynamic+lm=int8_dynamic"}
    assert missing.loc["encoder=int8_dynamic+lm=int8_dynamic", "status"] == "failed"
    assert missing.loc["decoder=int8_dynamic+lm=int8_dynamic", "status"] == "absent"
    blocks = missing.loc["encoder=int8_dynamic+lm=int8_dynamic", "blocks"].split("; ")
    assert "shapley:encoder" in blocks and "moebius:encoder x lm" in blocks
    assert "moebius:decoder x lm" not in blocks and "moebius:encoder" not in blocks


def test_metric_not_measured_in_one_run_blocks_only_that_metric(make_sweep):
    import json
    root = make_sweep()
    m = json.loads((root / "7" / "metrics.json").read_text())
    del m["time_breakdown_ms"]["lm"]
    (root / "7" / "metrics.json").write_text(json.dumps(m))
    att = attribute(collect(root))
    lm = att.table[(att.table["metric"] == "time_breakdown_ms.lm") & (att.table["kind"] == "shapley")]
    assert lm["value"].isna().all() and lm["blocked_by"].str.contains("not measured").all()
    assert att.table[(att.table["metric"] == "wer_pct")]["value"].notna().all()
    assert att.missing.empty


def test_no_baseline_nothing_computable(make_sweep):
    att = attribute(collect(make_sweep(failed=[("none", "none", "none")])))
    assert att.table["value"].isna().all()


def test_one_at_a_time_sweep_gives_effects_alone_only(make_sweep):
    root = make_sweep()
    import shutil
    for num in ("3", "5", "6", "7"):  # drop every cell with two or more components cut
        shutil.rmtree(root / num)
    att = attribute(collect(root))
    assert _terms(att, kind="moebius")["lm"] == pytest.approx(3.5)
    assert all(np.isnan(v) for v in _terms(att, kind="shapley").values())
    assert len(att.missing) == 4


def test_three_levels_split_into_two_level_subgrids(make_sweep):
    root = make_sweep(levels={"encoder": ["none", "int8_dynamic", "prune"], "lm": ["none", "int8_dynamic"]})
    att = attribute(collect(root))
    assert sorted(att.table["grid"].unique()) == ["encoder=int8_dynamic,lm=int8_dynamic", "encoder=prune,lm=int8_dynamic"]
    assert _terms(att, kind="shapley", grid="encoder=prune,lm=int8_dynamic")["encoder"] == pytest.approx(5.0)
    assert _terms(att, kind="shapley", grid="encoder=int8_dynamic,lm=int8_dynamic")["encoder"] == pytest.approx(2.5)


def test_apply_terms_never_imputes():
    terms, coef = terms_and_coefficients(["a", "b"])
    out = apply_terms(np.array([1.0, np.nan, 3.0, 4.0]), coef)
    named = {(t.kind, t.name): v for t, v in zip(terms, out)}
    assert named[("moebius", "b")] == pytest.approx(2.0)
    assert np.isnan(named[("moebius", "a")]) and np.isnan(named[("shapley", "b")])
    assert named[("total", "total")] == pytest.approx(3.0)


def test_timings_from_another_machine_block_timing_terms_only(make_sweep):
    import json
    root = make_sweep()
    m = json.loads((root / "5" / "metrics.json").read_text())
    m["environment"]["cpu"] = "A faster CPU"
    (root / "5" / "metrics.json").write_text(json.dumps(m))
    att = attribute(collect(root))
    lat = att.table[(att.table["metric"] == "latency_ms.mean") & (att.table["kind"] == "shapley")]
    assert lat["value"].isna().all() and lat["blocked_by"].str.contains("timed on another machine").all()
    assert att.table[(att.table["metric"] == "wer_pct")]["value"].notna().all()  # accuracy is comparable


def test_simulated_kernels_block_timing_terms_not_accuracy(make_sweep):
    import json
    root = make_sweep()
    for num in ("1", "3", "5", "7"):  # every run with the LM cut: the LM method only simulates its kernel
        m = json.loads((root / num / "metrics.json").read_text())
        m["components"]["lm"]["kernel"] = "simulated"
        (root / num / "metrics.json").write_text(json.dumps(m))
    att = attribute(collect(root))
    t = att.table.set_index(["metric", "kind", "term"])
    assert np.isnan(t.loc[("latency_ms.mean", "shapley", "lm"), "value"])
    assert "simulated kernel" in t.loc[("latency_ms.mean", "shapley", "lm"), "blocked_by"]
    assert t.loc[("latency_ms.mean", "moebius", "decoder"), "value"] == pytest.approx(-18.5)  # no LM involved
    assert t.loc[("wer_pct", "shapley", "lm"), "value"] == pytest.approx(3.5)
    assert t.loc[("size_mb", "shapley", "lm"), "value"] == pytest.approx(-2.25)


def test_many_methods_one_at_a_time_builds_one_grid_per_method(tmp_path):
    """Every method on every component, one at a time: the product of levels (4^4 = 256 sub-grids,
    nearly all absent) is replaced by one grid per method name."""
    import itertools

    from asr_compress.analysis.attribution import grids
    from asr_compress.analysis.collect import collect
    from asr_compress.analysis.synthetic import build_sweep

    methods = ["none", "int8_dynamic", "lowrank", "bf16", "prune_nm"]
    levels = {c: list(methods) for c in ("encoder", "ctc", "decoder", "lm")}
    multi = [cell for cell in itertools.product(*levels.values()) if sum(m != "none" for m in cell) > 1]
    sweep = collect(build_sweep(tmp_path / "s", levels=levels, missing=multi))
    gs = grids(sweep)
    assert len(gs) == 4
    assert sorted(set(g.levels.values()).pop() for g in gs) == sorted(methods[1:])
    for g in gs:
        assert g.factors == ["encoder", "ctc", "decoder", "lm"]
        ok = [m for m, st in enumerate(g.status) if st == "ok"]
        assert ok == [0, 1, 2, 4, 8]  # the baseline and each component alone
