import json

import numpy as np
import pytest
import yaml

from asr_compress.analysis.collect import collect, find_run_dirs


def test_full_grid_reads_factors_baseline_and_metrics(make_sweep):
    sweep = collect(make_sweep())
    assert sweep.factors == ["encoder", "decoder", "lm"]
    assert sweep.levels["encoder"] == ["none", "int8_dynamic"]
    assert len(sweep.runs) == 8 and (sweep.runs["status"] == "ok").all()
    base = sweep.runs.loc[sweep.baseline]
    assert base["label"] == "baseline"
    assert base["wer_pct"] == pytest.approx(5.0)
    assert base["size_mb"] == pytest.approx(9.2)
    assert base["time_breakdown_ms.decoder"] == pytest.approx(37.0)
    assert base["config.decode.beam_size"] == 5
    assert set(sweep.utterances) == set(sweep.runs.index)
    assert sweep.problems == []


def test_failed_run_kept_and_missing_key_is_nan_not_zero(make_sweep):
    root = make_sweep(failed=[("int8_dynamic", "none", "none")])
    m = json.loads((root / "1" / "metrics.json").read_text())
    del m["time_breakdown_ms"]["ctc"]
    (root / "1" / "metrics.json").write_text(json.dumps(m))
    sweep = collect(root)
    failed = sweep.runs[sweep.runs["status"] == "failed"]
    assert list(failed["label"]) == ["encoder=int8_dynamic"]
    assert np.isnan(failed["wer_pct"].iloc[0])
    assert np.isnan(sweep.runs.loc["1", "time_breakdown_ms.ctc"])
    assert sweep.runs.loc["0", "time_breakdown_ms.ctc"] == pytest.approx(24.0)


def test_list_of_run_dirs_and_single_run_dir(make_sweep):
    root = make_sweep()
    sweep = collect([root / "0", root / "4"])
    assert sweep.factors == ["encoder"] and len(sweep.runs) == 2
    single = collect(root / "0")
    assert single.factors == [] and single.baseline is not None


def test_same_method_with_different_params_are_distinct_levels(make_sweep):
    root = make_sweep(levels={"encoder": ["none", "prune"]})
    for num, amount in (("1", 0.3),):
        cfg = yaml.safe_load((root / num / ".hydra" / "config.yaml").read_text())
        cfg["encoder"]["amount"] = amount
        (root / num / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    import shutil
    shutil.copytree(root / "1", root / "2")
    cfg = yaml.safe_load((root / "2" / ".hydra" / "config.yaml").read_text())
    cfg["encoder"]["amount"] = 0.5
    (root / "2" / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    sweep = collect(root)
    assert sweep.levels["encoder"] == ["none", "prune(amount=0.3)", "prune(amount=0.5)"]
    assert sweep.runs.loc["2", "config.encoder.amount"] == 0.5  # runs.csv keeps every config choice


def test_not_a_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        find_run_dirs(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no run directories"):
        collect(tmp_path)


def test_component_params_in_runs_table_and_not_flagged_as_context(make_sweep):
    sweep = collect(make_sweep())
    assert "config.encoder.targets" not in sweep.runs  # lists are not scalars
    assert sweep.varying_context == []


def test_planned_levels_that_never_ran_are_reported(make_sweep):
    import shutil
    root = make_sweep(levels={"encoder": ["none", "int8_dynamic"], "lm": ["none", "int8_dynamic"]})
    (root / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"overrides": {"task": [
        "encoder=none,int8_dynamic", "lm=none,int8_dynamic,prune_unstructured"]}}}))
    sweep = collect(root)
    assert any("lm=prune_unstructured" in p for p in sweep.problems)
    shutil.rmtree(root / "1")  # absent cells of observed levels are the grid's job, not this check
    assert not any("encoder=" in p for p in collect(root).problems)


def test_duplicate_cells_next_to_failed_runs_are_reported(make_sweep):
    import shutil
    root = make_sweep(failed=[("none", "none", "int8_dynamic")])
    shutil.copytree(root / "7", root / "8")
    sweep = collect(root)
    assert any("share one grid cell: 7, 8" in p for p in sweep.problems)


def test_utterance_table_is_long_and_tagged(make_sweep):
    sweep = collect(make_sweep())
    long = sweep.utterance_table()
    assert len(long) == 8 * 20
    assert list(long.columns[:5]) == ["run_id", "label", "encoder", "decoder", "lm"]
    one = long[(long["label"] == "lm=int8_dynamic") & (long["id"] == "utt03")].iloc[0]
    assert one["insertions"] == 1 and one["time_breakdown_ms.lm"] == pytest.approx(12.5)


def test_truncated_files_degrade_gracefully(make_sweep):
    root = make_sweep()
    (root / "3" / "metrics.json").write_text('{"wer": 0.1, "cer"')  # a job killed mid-write
    with open(root / "5" / "utterances.jsonl", "a") as f:
        f.write('{"id": "broken"\n')
    sweep = collect(root)
    assert sweep.runs.loc["3", "status"] == "failed"
    assert sweep.runs.loc["5", "status"] == "ok" and "5" not in sweep.utterances
    assert any("metrics.json unreadable" in p for p in sweep.problems)
    assert any("utterances.jsonl unreadable" in p for p in sweep.problems)


def test_several_sweep_dirs_read_as_one_study(make_sweep):
    a = make_sweep("a", levels={"encoder": ["none", "int8_dynamic"]})
    b = make_sweep("b", levels={"lm": ["none", "int8_dynamic"]})
    sweep = collect([a, b, a / "1"])  # a run given again beside its sweep counts once
    assert list(sweep.runs.index) == ["a/0", "a/1", "b/0", "b/1"]
    assert sweep.factors == ["encoder", "lm"]
    assert sorted(sweep.runs["label"]) == ["baseline", "baseline", "encoder=int8_dynamic", "lm=int8_dynamic"]
    assert sweep.baseline == "a/0"
    assert any("2 baseline runs (a/0, b/0); using a/0" in p for p in sweep.problems)
    assert not any("share one grid cell" in p for p in sweep.problems)  # said once, in the line above
    # each multirun.yaml is checked against its own runs only
    assert not any("plans" in p for p in sweep.problems)


def test_each_sweep_dirs_plan_is_checked_against_its_own_runs(make_sweep):
    a = make_sweep("a", levels={"encoder": ["none", "int8_dynamic"]})
    b = make_sweep("b", levels={"encoder": ["none", "prune_unstructured"]})
    (a / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"overrides": {"task": [
        "encoder=none,int8_dynamic,prune_unstructured"]}}}))
    problems = collect([a, b]).problems
    # b ran prune_unstructured, but a planned it too and its job never started
    assert any(p.startswith(str(a / "multirun.yaml")) and "encoder=prune_unstructured" in p for p in problems)
    assert not any(str(b) + "/multirun.yaml" in p for p in problems)


def test_a_listed_directory_without_runs_is_named(make_sweep, tmp_path):
    a = make_sweep("a", levels={"encoder": ["none", "int8_dynamic"]})
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no run directories .* under .*empty"):
        collect([a, tmp_path / "empty"])
    with pytest.raises(FileNotFoundError, match="not a directory: .*gone"):
        collect([a, tmp_path / "gone"])


def test_baselines_of_several_sweeps_that_disagree_are_named(make_sweep):
    a = make_sweep("a", levels={"encoder": ["none", "int8_dynamic"]})
    b = make_sweep("b", levels={"lm": ["none", "int8_dynamic"]})
    (agree,) = [p for p in collect([a, b]).problems if "baseline runs" in p]
    assert agree == "2 baseline runs (a/0, b/0); using a/0"
    m = json.loads((b / "0" / "metrics.json").read_text())
    m["latency_ms"]["mean"] = 150.0  # the second sweep ran on a slower (or busier) machine
    (b / "0" / "metrics.json").write_text(json.dumps(m))
    (differ,) = [p for p in collect([a, b]).problems if "baseline runs" in p]
    assert differ.startswith("2 baseline runs (a/0, b/0); using a/0; their mean latency differs (101.0, 150.0 "
                             "ms/utt): the machine's timing drifted between them")
    assert "WER differs" not in differ


def test_a_run_that_resumed_a_killed_decode_is_named(make_sweep):
    root = make_sweep(levels={"encoder": ["none", "int8_dynamic"]})
    assert not any("earlier process" in p for p in collect(root).problems)
    m = json.loads((root / "1" / "metrics.json").read_text())
    m["resumed_utterances"] = 7
    (root / "1" / "metrics.json").write_text(json.dumps(m))
    assert any(p.startswith("run(s) 1 took some utterances from an earlier process") for p in collect(root).problems)
