"""resume=true: a cell's finished run is reused only when settings, test set, model files and code match."""
import json
import shutil

import pytest

from support import compose, tiny_overrides
from support import run_cli as _cli


@pytest.fixture
def finished(tiny, tmp_path):
    """A copy of the tiny test set, a config on it, and a run dir holding a finished run of that config."""
    from asr_compress import __version__
    from asr_compress.evaluate.environment import code_sha256, git_hash
    from asr_compress.pipeline.load import find_model_files
    from asr_compress.resume import settings_sha256

    data = tmp_path / "data"
    shutil.copytree(tiny["data"], data)
    cfg = compose([*tiny_overrides(tiny), f"data.dir={data}", "resume=true"])
    run = tmp_path / "run"
    run.mkdir()
    metrics = {"wer": 0.25, "settings_sha256": settings_sha256(cfg),
               "environment": {"asr_compress": __version__, "git_hash": git_hash(), "code_sha256": code_sha256()},
               "model": find_model_files(cfg.model).describe()}
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "utterances.jsonl").write_text("{}\n")
    return cfg, run, data, metrics


def test_a_matching_finished_run_is_reused_whatever_the_progress_bar(finished, tiny):
    from asr_compress.resume import finished_run

    cfg, run, data, metrics = finished
    assert finished_run(cfg, run) == metrics
    quiet = compose([*tiny_overrides(tiny), f"data.dir={data}", "resume=false", "eval.progress=true"])
    assert finished_run(quiet, run) == metrics  # neither the switch nor the progress bar changes a number


@pytest.mark.parametrize("change", ["setting", "test set", "model file", "code", "source edit", "plugin",
                                    "no utterances", "torn metrics"])
def test_any_difference_decodes_the_cell_again(finished, tiny, change):
    from asr_compress.resume import finished_run

    cfg, run, data, metrics = finished
    if change == "setting":
        cfg = compose([*tiny_overrides(tiny), f"data.dir={data}", "decode.beam_size=3"])
    elif change == "test set":
        (data / "text").write_text((data / "text").read_text().replace(" ", "  ", 1))
    elif change == "model file":
        metrics["model"]["asr_weights_sha256"] = "0" * 64  # as if retrained in place since
        (run / "metrics.json").write_text(json.dumps(metrics))
    elif change == "code":
        metrics["environment"]["git_hash"] = "0123abc"
        (run / "metrics.json").write_text(json.dumps(metrics))
    elif change == "source edit":  # uncommitted: the same "-dirty" git hash, other source
        metrics["environment"]["code_sha256"] = "0" * 64
        (run / "metrics.json").write_text(json.dumps(metrics))
    elif change == "plugin":  # decoded with a method plugin that is no longer installed
        metrics["environment"]["method_plugins"] = "weight_cluster from asr-compress-weight-cluster 0.1.0"
        (run / "metrics.json").write_text(json.dumps(metrics))
    elif change == "no utterances":
        (run / "utterances.jsonl").unlink()
    else:
        (run / "metrics.json").write_text('{"wer": 0.2')
    assert finished_run(cfg, run) is None


def test_a_rerun_sweep_with_resume_decodes_only_its_failed_cell(tiny, tmp_path):
    sweep = tmp_path / "sweep"
    common = ["~hydra.callbacks.report", f"hydra.sweep.dir={sweep}",
              *tiny_overrides(tiny, "eval.flops_utterances=0", "eval.warmup=0")]
    res = _cli(["-m", "decode.beam_size=0,2", *common], tmp_path)
    assert res.returncode == 1 and (sweep / "1" / "metrics.json").is_file()
    first = (sweep / "1" / "metrics.json").read_text()
    # cell 0 fixed, cell 1 as before: only cell 0 decodes
    res = _cli(["-m", "decode.beam_size=1,2", "resume=true", *common], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"resume=true: reusing {sweep / '1' / 'metrics.json'}" in res.stdout
    assert (sweep / "1" / "metrics.json").read_text() == first
    assert (sweep / "0" / "metrics.json").is_file() and not (sweep / "0" / "error.txt").exists()
    assert res.stdout.count("reusing") == 1


@pytest.fixture
def killable(tiny, tmp_path, monkeypatch):
    """A config of the tiny model (resume=true) and a decoder whose k-th call can be made to kill the cell."""
    from asr_compress.evaluate import decode

    cfg = compose([*tiny_overrides(tiny, "eval.flops_utterances=0", "eval.warmup=0"), "resume=true"])
    real, calls = decode._decode_one, []

    def decode_one(*args, **kwargs):
        calls.append(1)
        if len(calls) == state["kill_at"]:
            raise RuntimeError("DUE TO TIME LIMIT")  # what a job sees of its node's end, near enough
        return real(*args, **kwargs)
    state = {"kill_at": 0}
    monkeypatch.setattr(decode, "_decode_one", decode_one)
    return cfg, calls, state


def test_a_killed_cell_resumes_where_it_stopped_and_decodes_the_same(killable, tiny, tmp_path):
    from asr_compress.partial_decode import FILE
    from asr_compress.run import run_experiment

    _, calls, state = killable
    # two timed repeats: more decodes than the tiny set's three utterances, and a kill may fall in either
    cfg = compose([*tiny_overrides(tiny, "eval.flops_utterances=0", "eval.warmup=0", "eval.repeats=2"), "resume=true"])
    fresh = run_experiment(cfg, tmp_path / "fresh")  # the cell decoded in one go
    n = len(calls)
    assert fresh["resumed_utterances"] == 0 and not (tmp_path / "fresh" / FILE).exists() and n >= 6
    run = tmp_path / "run"
    calls.clear()
    state["kill_at"] = 1  # stopped before its first utterance: nothing to keep, no file
    with pytest.raises(RuntimeError, match="TIME LIMIT"):
        run_experiment(cfg, run)
    assert not (run / FILE).exists()
    calls.clear()
    state["kill_at"] = 3
    with pytest.raises(RuntimeError, match="TIME LIMIT"):
        run_experiment(cfg, run)
    assert len((run / FILE).read_text().splitlines()) == 1 + 2  # the record, then two utterances
    with open(run / FILE, "a") as f:
        f.write('{"repeat": 0, "id": "utt_tor')  # the kill came mid-write: that line is dropped
    calls.clear()
    state["kill_at"] = 2  # stopped again, after one more utterance
    with pytest.raises(RuntimeError, match="TIME LIMIT"):
        run_experiment(cfg, run)
    rows = [json.loads(line) for line in (run / FILE).read_text().splitlines()[1:]]
    assert len(rows) == 3 and len({r["id"] for r in rows}) == 3  # the torn line is not carried on
    calls.clear()
    state["kill_at"] = 0
    metrics = run_experiment(cfg, run)
    # the first repeat's three utterances were decoded before: the second repeat decodes in this process
    assert len(calls) == n - 3 and metrics["resumed_utterances"] == 3 and not (run / FILE).exists()
    hyps = [json.loads(line)["hyp"] for line in (run / "utterances.jsonl").read_text().splitlines()]
    assert hyps == [json.loads(line)["hyp"] for line in (tmp_path / "fresh" / "utterances.jsonl").read_text().splitlines()]
    assert metrics["wer"] == fresh["wer"]
    from asr_compress.run import summary_line
    assert summary_line(metrics).endswith("(3 utts decoded before the cell was stopped)")
    assert "before the cell" not in summary_line(fresh)


@pytest.mark.parametrize("change", ["machine", "setting", "resume off"])
def test_a_killed_cells_decodes_are_not_taken_when_anything_differs(killable, tiny, tmp_path, change):
    from asr_compress.partial_decode import FILE
    from asr_compress.run import run_experiment

    cfg, calls, state = killable
    run = tmp_path / "run"
    state["kill_at"] = 3
    with pytest.raises(RuntimeError):
        run_experiment(cfg, run)
    if change == "machine":  # latencies measured on two kinds of machine are not one run's
        lines = (run / FILE).read_text().splitlines()
        header = json.loads(lines[0])
        assert "host" not in header["machine"]  # another node of the same kind times alike
        header["machine"]["cpu"] = "another CPU model"
        (run / FILE).write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    elif change == "setting":
        cfg = compose([*tiny_overrides(tiny, "eval.flops_utterances=0", "eval.warmup=0"), "resume=true",
                       "decode.beam_size=3"])
    else:
        cfg = compose([*tiny_overrides(tiny, "eval.flops_utterances=0", "eval.warmup=0")])
    calls.clear()
    state["kill_at"] = 0
    metrics = run_experiment(cfg, run)
    assert metrics["resumed_utterances"] == 0 and len(calls) == metrics["n_utterances"]
