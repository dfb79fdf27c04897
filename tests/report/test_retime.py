"""asr-compress-retime: a finished sweep's cells timed again side by side, and the report citing it."""
import json
import logging

import pytest
import yaml

from asr_compress.analysis.attribution import grids
from asr_compress.analysis.collect import TIME_PARTS, collect
from asr_compress.report.retime import grid_attribution, run_retime
from asr_compress.report.write import write_report
from support import calibration_dir, run_cli, tiny_overrides


def _round(enc, lm, drift, interaction=0.0):
    """ms/utt per part of one cell in one round: the machine's drift slows every part alike."""
    parts = {k: 0.0 for k in TIME_PARTS}
    parts["encoder"] = 100 + enc + drift
    parts["lm"] = 50 + lm + drift / 2 + interaction
    parts["total"] = sum(parts.values())
    return parts


def test_grid_attribution_is_blind_to_drift_between_rounds(make_sweep):
    sweep = collect(make_sweep(levels={"encoder": ["none", "int8_dynamic"], "lm": ["none", "int8_dynamic"]}))
    (g,) = grids(sweep)
    drift = [0, 300, 40]  # the machine slows down in round 2: every cell of that round alike
    cuts = dict(zip(g.run_ids, [(0, 0), (1, 0), (0, 1), (1, 1)]))
    ms = {rid: [_round(-10 * e, 4 * lm, d, interaction=3 * (e and lm)) for d in drift] for rid, (e, lm) in cuts.items()}
    att = grid_attribution(g, ms, {})
    assert att["kind"] == "shapley" and att["untimed"] == []
    assert att["ms"]["encoder"]["encoder"] == {"median": -10.0, "min": -10.0, "max": -10.0}
    assert att["ms"]["encoder"]["lm"]["median"] == pytest.approx(1.5)  # half the interaction each
    assert att["ms"]["lm"]["total"] == {"median": pytest.approx(5.5), "min": pytest.approx(5.5),
                                        "max": pytest.approx(5.5)}


def test_one_at_a_time_grid_reports_each_cut_alone(make_sweep):
    sweep = collect(make_sweep(levels={"encoder": ["none", "int8_dynamic"], "lm": ["none", "int8_dynamic"]},
                               missing=[("int8_dynamic", "int8_dynamic")]))
    (g,) = grids(sweep)
    ms = {rid: [_round(-10 * (i == 1), 4 * (i == 2), d) for d in (0, 50)]
          for i, rid in enumerate(g.run_ids) if rid is not None}
    att = grid_attribution(g, ms, {})
    # the two-cut cell a one-at-a-time design leaves out is not needed for "alone": not listed
    assert att["kind"] == "alone" and att["untimed"] == []
    assert att["ms"]["encoder"]["total"]["median"] == pytest.approx(-10)
    assert att["ms"]["lm"]["lm"]["median"] == pytest.approx(4)


@pytest.fixture(scope="module")
def retimed_sweep(tiny, tmp_path_factory):
    """A real 2x2 sweep of the tiny model whose callback retimes it (2 rounds of 2 utterances)."""
    root = tmp_path_factory.mktemp("retime")
    sweep = root / "sweep"
    res = run_cli(["-m", "encoder=none,int8_dynamic", "lm=none,int8_dynamic", f"hydra.sweep.dir={sweep}",
                   "hydra.callbacks.report.retime_rounds=2", "hydra.callbacks.report.retime_utterances=2",
                   "hydra.callbacks.report.n_resamples=20", "hydra.callbacks.report.plots=false",
                   *tiny_overrides(tiny, "eval.flops_utterances=0", "eval.warmup=0")], root)
    assert res.returncode == 0, res.stderr[-3000:]
    return sweep


def test_sweep_callback_retimes_and_the_report_cites_it(retimed_sweep):
    bench = json.loads((retimed_sweep / "interleaved" / "bench.json").read_text())
    assert (bench["model"], bench["data"], bench["rounds"], bench["utterances"]) == ("tiny", "tiny", 2, 2)
    runs = bench["sweep"]["runs"]
    assert sorted(r["label"] for r in runs.values()) == [
        "baseline", "encoder=int8_dynamic", "encoder=int8_dynamic+lm=int8_dynamic", "lm=int8_dynamic"]
    # each cell was rebuilt as its run compressed it: it decodes the same words
    assert all(r["hyp_mismatches"] == 0 for r in runs.values())
    assert all(len(r["ms_per_utt"]) == 2 for r in runs.values())
    (g,) = bench["sweep"]["grids"]
    assert g["grid"] == "encoder=int8_dynamic,lm=int8_dynamic" and g["kind"] == "shapley"
    report = (retimed_sweep / "REPORT.md").read_text()
    assert "**mean latency, timed side by side** (`" in report and "Latency caveat" not in report
    assert "## Latency timed side by side" in report and "| component cut | total | frontend |" in report
    # the sequential runs' latency sentences say what they are, next to the numbers to cite
    assert "**mean latency** (sequential runs, drift included; cite the side-by-side timing below): " in report
    assert "**Where the time went** (Shapley, time breakdown of the sequential runs): " in report


def test_retime_cli_efficiency_within_a_round(retimed_sweep, tmp_path, capsys):
    out = tmp_path / "one"
    assert run_retime([str(retimed_sweep), "--rounds", "1", "--utterances", "1", "--out", str(out),
                       "--no-report"]) == 0
    bench = json.loads((out / "bench.json").read_text())
    runs = {r["label"]: r["ms_per_utt"][0]["total"] for r in bench["sweep"]["runs"].values()}
    ms = bench["sweep"]["grids"][0]["ms"]
    # one round: the Shapley values add up to the all-cut cell minus the baseline, exactly
    assert ms["encoder"]["total"]["median"] + ms["lm"]["total"]["median"] == pytest.approx(
        runs["encoder=int8_dynamic+lm=int8_dynamic"] - runs["baseline"])
    assert capsys.readouterr().out.strip() == str(out / "bench.json")  # --no-report: no report path


def test_retime_rewrites_the_report_with_speaker_draws_or_says_why_not(retimed_sweep, tmp_path, capsys):
    # the tiny test set has no utt2spk: the timing is kept, and the report's failure is one line
    out = tmp_path / "spk"
    assert run_retime([str(retimed_sweep), "--rounds", "1", "--utterances", "1", "--out", str(out),
                       "--report-out", str(tmp_path / "report"), "--bootstrap-by", "speaker"]) == 1
    assert (out / "bench.json").is_file()
    err = capsys.readouterr().err
    assert f"the timing is in {out / 'bench.json'}, but the report failed (ValueError: bootstrap by speaker: " in err
    assert "valid: a test set with utt2spk, or by utterance" in err


def test_report_leaves_out_a_stale_retiming_and_says_so(retimed_sweep, tmp_path, caplog):
    stale = tmp_path / "stale"
    (stale / "interleaved").mkdir(parents=True)
    bench = json.loads((retimed_sweep / "interleaved" / "bench.json").read_text())
    bench["sweep"]["grids"][0]["grid"] = "encoder=fp16,lm=int8_dynamic"
    (stale / "interleaved" / "bench.json").write_text(json.dumps(bench))
    for run in retimed_sweep.glob("[0-9]*"):
        (stale / run.name).symlink_to(run)
    with caplog.at_level(logging.WARNING):
        text = write_report(stale, out_dir=tmp_path / "out", n_resamples=10, plots_enabled=False).read_text()
    assert "Latency caveat" in text and "timed side by side**" not in text
    assert "grids encoder=fp16,lm=int8_dynamic differ from the sweep's encoder=int8_dynamic,lm=int8_dynamic" \
        in caplog.text
    assert f"`asr-compress-retime {stale} --report-out {tmp_path / 'out'}`" in text


def _edit_config(run_dir, **changes):
    path = run_dir / ".hydra" / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        section, field = key.split("__")
        cfg[section][field] = value
    path.write_text(yaml.safe_dump(cfg))


@pytest.mark.parametrize("setup, needle", [
    ("nodir", "no such directory"),
    ("rounds0", "--rounds 0 --utterances 16: both must be >= 1"),
    ("nobaseline", "no finished baseline run (every component `none`)"),
    ("varying", "the runs differ in config.decode.beam_size; side-by-side timing compares the methods of one study"),
    ("simulated", "fewer than two runs with real kernels to time side by side"),
])
def test_retime_bad_inputs_are_one_line_errors(make_sweep, tmp_path, capsys, setup, needle):
    root = make_sweep(levels={"lm": ["none", "int8_dynamic"]})
    args = [str(root)]
    if setup == "nodir":
        args = [str(tmp_path / "nope")]
    elif setup == "rounds0":
        args += ["--rounds", "0"]
    elif setup == "nobaseline":
        (root / "0" / "metrics.json").unlink()
    elif setup == "varying":
        _edit_config(root / "1", decode__beam_size=10)
    elif setup == "simulated":
        m = json.loads((root / "1" / "metrics.json").read_text())
        m["components"]["lm"]["kernel"] = "simulated"
        (root / "1" / "metrics.json").write_text(json.dumps(m))
    assert run_retime(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("asr-compress-retime: error: ") and needle in err[0], err
    assert not (root / "interleaved").exists()


def test_each_utterance_is_decoded_by_every_job_back_to_back():
    from asr_compress.evaluate.interleave import time_interleaved

    calls = []

    def job(name, ms):
        def one(i):
            calls.append((name, i))
            return f"{name}{i}", {"encoder": ms, "total": ms + 1}
        return one

    times, hyps = time_interleaved({"a": job("a", 2.0), "b": job("b", 5.0)}, n_utts=3, rounds=2)
    assert calls[:2] in ([("a", 0), ("b", 0)], [("b", 0), ("a", 0)])  # warm-up, untimed
    timed = calls[2:]
    assert len(timed) == 12
    # utterance by utterance: both jobs decode utterance i before either moves on
    assert [i for _, i in timed] == [0, 0, 1, 1, 2, 2] * 2
    assert times["a"] == [{"encoder": 6.0, "total": 9.0}] * 2 and times["b"][1]["total"] == 18.0
    assert hyps == {"a": ["a0", "a1", "a2"], "b": ["b0", "b1", "b2"]}
    with pytest.raises(ValueError, match="rounds=0: must be >= 1"):
        time_interleaved({"a": job("a", 1.0)}, n_utts=1, rounds=0)


def _simulated_lm_sweep(make_sweep):
    root = make_sweep(levels={"encoder": ["none", "int8_dynamic"], "lm": ["none", "int8_dynamic"]})
    sweep = collect(root)
    (g,) = grids(sweep)
    lm_only = g.run_ids[2]  # bit 1 = lm
    return root, sweep, g, lm_only


def test_untimed_cells_are_named_with_why(make_sweep):
    _, sweep, g, lm_only = _simulated_lm_sweep(make_sweep)
    skipped = {lm_only: "simulated kernel, no speed-up", g.run_ids[3]: "simulated kernel, no speed-up"}
    ms = {rid: [_round(-10 * (m == 1), 0, 0)] for m, rid in enumerate(g.run_ids) if rid not in skipped}
    att = grid_attribution(g, ms, skipped)
    assert att["kind"] == "alone" and att["untimed"] == ["lm=int8_dynamic (simulated kernel, no speed-up)"]
    assert list(att["ms"]) == ["encoder"] and att["ms"]["encoder"]["total"]["median"] == pytest.approx(-10)
    from asr_compress.report.interleaved import interleaved_summary

    text = interleaved_summary({"source": "sweep", "rounds": 1, "utterances": 2, "grids": [att]}, "b.json")
    # the cut that could not be timed is named in the sentence, not silently missing
    assert ("the encoder cut alone saved 10.0 ms (-10.0 to -10.0); not timed: lm=int8_dynamic (simulated "
            "kernel, no speed-up).") in text


def test_report_names_a_grid_with_nothing_timed_once(make_sweep):
    root, sweep, g, _ = _simulated_lm_sweep(make_sweep)
    bench = {"model": "tiny_conformer", "data": "synthetic", "utterances": 4, "rounds": 2, "interleave": "per utterance",
             "sweep": {"grids": [{"grid": g.name, "components": g.factors, "kind": "alone", "ms": {},
                                  "untimed": ["encoder=int8_dynamic (simulated kernel, no speed-up)",
                                              "lm=int8_dynamic (simulated kernel, no speed-up)"]}]}}
    (root / "interleaved").mkdir()
    (root / "interleaved" / "bench.json").write_text(json.dumps(bench))
    text = write_report(root, n_resamples=10, plots_enabled=False).read_text()
    assert ("each of 4 utterances decoded by every cell back to back in a shuffled order, 2 rounds in one "
            "process") in text
    assert "Not timed: simulated kernel, no speed-up. Cite these for latency" in text
    assert "No cut timed in `encoder=int8_dynamic,lm=int8_dynamic` (simulated kernel, no speed-up)." in text
    assert "| component cut" not in text.split("## Latency timed side by side")[1].split("##")[0]


def test_wer_vs_latency_places_runs_by_their_difference_within_a_round(make_sweep, tmp_path, monkeypatch):
    from asr_compress.report import plots
    from asr_compress.report.interleaved import side_by_side_latency

    def run(label, totals):
        return {"label": label, "ms_per_utt": [{"total": t} for t in totals]}

    # the machine slows down in round 2; the cell is 2 ms slower than the baseline in every round
    bench = {"utterances": 4, "rounds": 3, "sweep": {"runs": {
        "0": run("baseline", [100, 200, 150]), "1": run("lm=int8_dynamic", [102, 202, 152])}}}
    ms, how = side_by_side_latency(bench)
    assert ms == {"0": 150.0, "1": 152.0} and how == "first 4 utterances timed side by side, 3 rounds"
    assert side_by_side_latency({"factorial": {}}) is None  # a --factorial file: its cells are not runs
    root = make_sweep(levels={"lm": ["none", "int8_dynamic"]})
    assert plots.plot_wer_vs_latency(collect(root), tmp_path / "p.png", None, (ms, how)) == tmp_path / "p.png"
    assert (tmp_path / "p.png").stat().st_size > 0
    # a run that was not retimed has no side-by-side time: left out, not misplaced, and the title says why
    titles = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: titles.append(fig.axes[0].get_title()) or save(fig, path))
    assert plots.plot_wer_vs_latency(collect(root), tmp_path / "q.png", None, ({"0": 150.0}, how)) == tmp_path / "q.png"
    assert titles[-1].endswith("\n1 run(s) not timed side by side left out (1 absent from the timing file)")
    m = json.loads((root / "1" / "metrics.json").read_text())
    m["components"]["lm"]["kernel"] = "simulated"
    (root / "1" / "metrics.json").write_text(json.dumps(m))
    plots.plot_wer_vs_latency(collect(root), tmp_path / "r.png", None, ({"0": 150.0}, how))
    assert titles[-1].endswith("\n1 run(s) not timed side by side left out (1 simulated kernel)")


def test_a_distilled_cell_is_rebuilt_with_its_calibration_and_decodes_the_same(tiny, tmp_path):
    calib = calibration_dir(tiny, tmp_path / "calib")
    sweep = tmp_path / "sweep"
    res = run_cli(["-m", "decoder=none,layer_drop_distill", f"calibration.dir={calib}",
                   f"hydra.sweep.dir={sweep}", "~hydra.callbacks.report",
                   *tiny_overrides(tiny, "eval.flops_utterances=0", "eval.warmup=0")], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert run_retime([str(sweep), "--rounds", "1", "--utterances", "2", "--no-report"]) == 0
    runs = json.loads((sweep / "interleaved" / "bench.json").read_text())["sweep"]["runs"]
    assert sorted(r["label"] for r in runs.values()) == ["baseline", "decoder=layer_drop_distill"]
    assert all(r["hyp_mismatches"] == 0 for r in runs.values())


def test_several_sweeps_are_retimed_as_one_study_and_their_report_finds_it(retimed_sweep, tmp_path, capsys):
    import shutil

    labels = collect(retimed_sweep).runs["label"]
    run = {label: retimed_sweep / rid for rid, label in labels.items()}
    a, b, out = tmp_path / "a", tmp_path / "b", tmp_path / "ab"
    a.mkdir(), b.mkdir()
    (a / "0").symlink_to(run["baseline"]), (a / "1").symlink_to(run["encoder=int8_dynamic"])
    shutil.copytree(run["baseline"], b / "0")  # the second sweep ran its own baseline
    (b / "1").symlink_to(run["lm=int8_dynamic"])
    assert run_retime([str(a), str(b), "--rounds", "1", "--utterances", "1", "--report-out", str(out)]) == 0
    bench = json.loads((out / "interleaved" / "bench.json").read_text())
    assert bench["sweep"]["dir"] == [str(a), str(b)]
    # the report uses the first baseline; the second is not timed again
    assert bench["sweep"]["skipped"] == {"b/0": "same cell as a/0"}
    assert sorted(r["label"] for r in bench["sweep"]["runs"].values()) == [
        "baseline", "encoder=int8_dynamic", "lm=int8_dynamic"]
    text = (out / "REPORT.md").read_text()
    assert "Latency caveat" not in text and "timed side by side" in text
    # the report of the same directories, written again, finds the timing in its own folder
    capsys.readouterr()
    (out / "REPORT.md").unlink()
    from asr_compress.report.cli import run_report
    assert run_report([str(a), str(b), "--out", str(out), "--resamples", "10", "--no-plots"]) == 0
    again = (out / "REPORT.md").read_text()
    assert "Latency caveat" not in again and "timed side by side" in again


def test_several_sweeps_without_a_report_folder_are_one_line_errors(make_sweep, tmp_path, capsys):
    a = make_sweep("a", levels={"encoder": ["none", "int8_dynamic"]})
    b = make_sweep("b", levels={"lm": ["none", "int8_dynamic"]})
    assert run_retime([str(a), str(b), "--out", str(tmp_path / "bench")]) == 2  # the report still needs a home
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2 sweep directories: give --report-out DIR" in err[0], err
    assert run_retime([str(a), str(b), "--no-report"]) == 2  # no report: bench.json needs one
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2 sweep directories: give --out DIR, the folder for their bench.json" in err[0], err
    assert not (tmp_path / "bench").exists()
