"""The cut-by-cut report of a one-at-a-time study (asr_compress/report/cuts.py).

Effects come from asr_compress.analysis.synthetic: the encoder cut adds 2.5 WER points (its second
level 5.0), the decoder 2.0, the LM 3.5 (7.0); a cut halves its own time part (encoder 4 ms, decoder
37, LM 25) and divides its size by 4.
"""
import itertools
import json
from pathlib import Path

import pytest

from asr_compress.analysis.attribution import grids
from asr_compress.analysis.bootstrap import paired_bootstrap
from asr_compress.analysis.collect import collect
from asr_compress.report.cuts import cut_rows, is_cut_by_cut, side_by_side_cuts
from asr_compress.report.write import write_report

LEVELS = {"encoder": ["none", "int8_dynamic", "prune"], "decoder": ["none", "int8_dynamic"],
          "lm": ["none", "int8_dynamic", "prune"]}


def _one_at_a_time(make_sweep, name="oat", levels=LEVELS, **kwargs):
    combos = [cell for cell in itertools.product(*levels.values()) if sum(x != "none" for x in cell) >= 2]
    return make_sweep(name, levels=levels, missing=combos, **kwargs)


def test_is_cut_by_cut_only_for_one_at_a_time_designs_with_several_cuts(make_sweep):
    assert is_cut_by_cut(collect(_one_at_a_time(make_sweep)))
    assert not is_cut_by_cut(collect(make_sweep("factorial")))  # runs that cut two components
    single = _one_at_a_time(make_sweep, "single", levels={"encoder": ["none", "int8_dynamic"]})
    assert not is_cut_by_cut(collect(single))  # one cut: the grid summary says it once already
    # a component compressed in every run has no baseline to be cut from
    no_none = make_sweep("no_none", levels={"encoder": ["int8_dynamic", "prune"], "lm": ["none", "int8_dynamic"]})
    assert not is_cut_by_cut(collect(no_none))


def test_cut_rows_one_row_per_cut_with_its_effects(make_sweep):
    sweep = collect(_one_at_a_time(make_sweep))
    rows = cut_rows(sweep, paired_bootstrap(sweep, n_resamples=50, seed=0))
    assert list(zip(rows["component"], rows["method"])) == [  # pipeline order, then the sweep's level order
        ("encoder", "int8_dynamic"), ("encoder", "prune"), ("decoder", "int8_dynamic"), ("lm", "int8_dynamic"),
        ("lm", "prune")]
    r = rows.set_index(["component", "method"])
    assert r.loc[("encoder", "prune"), "delta_wer"] == pytest.approx(5.0)
    assert r.loc[("lm", "prune"), "delta_wer"] == pytest.approx(7.0)
    assert r.loc[("decoder", "int8_dynamic"), "wer_pct"] == pytest.approx(7.0)
    assert r.loc[("decoder", "int8_dynamic"), "delta_own_ms"] == pytest.approx(-18.5)
    assert r.loc[("lm", "int8_dynamic"), "delta_latency"] == pytest.approx(-12.5)
    assert r.loc[("encoder", "int8_dynamic"), "delta_size_mb"] == pytest.approx(-3.0)
    lo, hi = r.loc[("encoder", "prune"), ["wer_ci_low", "wer_ci_high"]]
    assert 0 < lo < 5.0 < hi
    assert rows["side_by_side"].isna().all()  # no bench file


def test_report_of_a_one_at_a_time_study_says_each_cut_once(make_sweep):
    root = _one_at_a_time(make_sweep)
    text = write_report(root, n_resamples=50).read_text()
    assert "Sub-grid" not in text  # 6 sub-grids (2 x 1 x 2 ... ), none of them repeated
    summary = text.split("## Summary")[1].split("\n## ")[0]
    assert summary.startswith("\n\n**A one-at-a-time study**: 5 cuts (5 finished), each of one component with "
                              "one method, against one baseline (WER 5.00%, 101.0 ms/utt, 9.20 MB).")
    assert ("|component|method|WER (%)|Δ WER (points)|WER 95% CI|Δ latency, sequential (ms/utt)|latency 95% CI|"
            "Δ own time part (ms/utt)|Δ size (MB)|") in summary
    assert "|encoder|prune|10.00|+5.00|" in summary and "|-2.0 (encoder forward)|-3.00|" in summary
    assert "**Least WER lost**, per component with several methods: encoder: int8_dynamic (+2.50 points" in summary
    assert "LM: int8_dynamic (+3.50 points" in summary and "decoder:" not in summary.split("**Least")[1].split(".")[0]
    assert ("**Fastest cut**, per component with several methods (sequential runs, drift included; ms/utt against "
            "the baseline, negative = faster): encoder: int8_dynamic, prune (-2.0") in summary
    assert "**Latency caveat**" in text  # nothing timed side by side
    attribution = text.split("## Attribution")[1].split("\n## ")[0]
    assert "the Summary's table is its attribution" in attribution and "|term|" not in attribution
    assert "## WER change per voice group, cut by cut" in text and "Shapley values per voice group" not in text
    groups = text.split("## WER change per voice group, cut by cut")[1].split("\n## ")[0]
    assert "|component|method|Δ WER seen (points)|Δ WER unseen (points)|" in groups
    assert "|encoder|prune|+0.00 [+0.00, +0.00]|+10.00 [" in groups  # the synthetic encoder errors hit unseen only
    missing = text.split("## Missing runs")[1].split("\n## ")[0]
    assert "12 combinations of two or more cuts are absent by design" in missing
    assert "Every cut and the baseline have a finished run." in missing and "|cell|" not in missing
    # one figure for the cuts, none per sub-grid
    assert (root / "cuts.png").is_file() and "![Each cut alone](cuts.png)" in text
    assert not list(root.glob("shapley*.png")) and not list(root.glob("interactions*.png"))
    # the CSVs keep every term and every absent combination
    assert (root / "attribution.csv").is_file() and len((root / "missing_runs.csv").read_text().splitlines()) > 12


def test_a_failed_cut_is_named_once_and_left_out_of_the_effects(make_sweep):
    root = _one_at_a_time(make_sweep, failed=[("prune", "none", "none")])
    text = write_report(root, n_resamples=20, plots_enabled=False).read_text()
    assert "5 cuts (4 finished)" in text
    assert "|encoder|prune|failed|n/a|n/a|" in text
    missing = text.split("## Missing runs")[1].split("\n## ")[0]
    # it sits in two sub-grids (with each LM level) and is listed once, without the blocked terms
    assert missing.count("|encoder=prune|failed|") == 1 and "blocks" not in missing


def test_simulated_cut_claims_no_latency(make_sweep):
    root = _one_at_a_time(make_sweep)
    sweep = collect(root)
    rid = sweep.runs.index[(sweep.runs["lm"] == "prune")][0]
    m = json.loads((root / rid / "metrics.json").read_text())
    m["components"]["lm"]["kernel"] = "simulated"
    (root / rid / "metrics.json").write_text(json.dumps(m))
    text = write_report(root, n_resamples=20, plots_enabled=False).read_text()
    assert "|LM|prune|12.00|+7.00|" in text
    row = next(line for line in text.splitlines() if line.startswith("|LM|prune|"))
    assert "|simulated kernel, no speed-up|n/a|n/a|" in row  # no latency, no own-part time claimed
    fastest = next(line for line in text.splitlines() if line.startswith("**Fastest cut**"))
    assert "encoder: int8_dynamic, prune (-2.0" in fastest
    assert "LM:" not in fastest  # one LM cut timed with a real kernel: nothing to compare it with
    assert "**Latency caveat**" in text  # other cuts have latencies to cite
    for rid in sweep.runs.index[sweep.runs[["encoder", "decoder", "lm"]].ne("none").any(axis=1)]:
        m = json.loads((root / rid / "metrics.json").read_text())
        for c in ("encoder", "decoder", "lm"):
            m["components"][c]["kernel"] = "simulated"
        (root / rid / "metrics.json").write_text(json.dumps(m))
    text = write_report(root, n_resamples=20, plots_enabled=False).read_text()
    assert "**Latency caveat**" not in text  # every cut simulated: no latency to cite, so no caveat
    assert "**Fastest cut**" not in text


def _retime_bench(root: Path, deltas):
    """A bench.json as `asr-compress-retime` writes it: per run, per round, ms/utt per time part.
    `deltas`: run_id -> per-round change of the total (the LM part carries it)."""
    sweep = collect(root)
    base = {"frontend": 1.0, "encoder": 4.0, "decoder": 37.0, "ctc": 24.0, "lm": 25.0, "search_other": 10.0}
    rounds = len(next(iter(deltas.values())))

    def times(extra):
        t = dict(base, lm=base["lm"] + extra)
        return dict(t, total=sum(t.values()))

    runs = {rid: {"label": sweep.runs.at[rid, "label"], "hyp_mismatches": 0,
                  "ms_per_utt": [times(deltas.get(rid, [0.0] * rounds)[r]) for r in range(rounds)]}
            for rid in sweep.runs.index}
    bench = {"model": "tiny_conformer", "data": "synthetic", "utterances": 4, "rounds": rounds,
             "interleave": "per utterance",
             "sweep": {"dir": str(root), "runs": runs, "skipped": {},
                       "grids": [{"grid": g.name, "components": g.factors, "levels": g.levels, "kind": "alone",
                                  "ms": {}, "untimed": []} for g in grids(sweep)]}}
    path = root / "bench.json"
    path.write_text(json.dumps(bench))
    return path, sweep


def test_side_by_side_timing_is_a_column_of_the_cut_table(make_sweep):
    root = _one_at_a_time(make_sweep)
    sweep = collect(root)
    lm_int8 = sweep.runs.index[sweep.runs["lm"] == "int8_dynamic"][0]
    path, sweep = _retime_bench(root, {lm_int8: [-10.0, -14.0, -12.0]})
    bench = json.loads(path.read_text())
    spans = side_by_side_cuts(bench)
    assert spans[lm_int8]["total"] == {"median": -12.0, "min": -14.0, "max": -10.0}
    assert spans[lm_int8]["lm"]["median"] == -12.0 and spans[lm_int8]["decoder"]["median"] == 0.0
    assert side_by_side_cuts({"factorial": {}}) == {}  # a --factorial file times no run of the sweep
    text = write_report(root, n_resamples=20, interleaved=path).read_text()
    summary = text.split("## Summary")[1].split("\n## ")[0]
    assert "|Δ latency, side by side (ms/utt)|" in summary
    assert "|LM|int8_dynamic|8.50|" in summary and "|-12.0 [-14.0 to -10.0]|" in summary
    assert "**Fastest cut**, per component with several methods (timed side by side, median [range]" in summary
    assert "LM: int8_dynamic (-12.0 [-14.0 to -10.0])" in summary
    assert f"Side by side (`{path}`, each of 4 utterances decoded by every cell back to back" in summary
    assert "Latency caveat" not in text and "Sub-grid" not in text
    timing = text.split("## Latency timed side by side")[1].split("\n## ")[0]
    assert "| component | method | total | frontend | encoder | decoder | ctc | lm | search_other |" in timing
    assert "| LM | int8_dynamic | -12.0 [-14.0 to -10.0] |" in timing
    assert sum(line.startswith("| encoder | ") for line in timing.splitlines()) == 2  # each cut once
    assert (root / "cuts.png").is_file()
