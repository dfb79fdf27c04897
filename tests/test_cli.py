"""The CLI as a user runs it: Hydra composition, outputs, and one-line errors."""
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from support import compose, tiny_overrides
from support import run_cli as _cli


def test_default_config_composes_to_the_shipped_model():
    cfg = compose()
    assert cfg.model.exp_dir == "models/default/asr" and cfg.data.dir == "testsets/synth_test"
    assert all(cfg[c].name == "none" for c in ("frontend", "encoder", "ctc", "decoder", "lm"))


def test_every_preset_of_every_group_composes():
    from asr_compress import COMPONENTS
    from asr_compress.compress import METHOD_CONFIGS

    for comp in COMPONENTS:
        for method in METHOD_CONFIGS:
            cfg = compose([f"{comp}={method}"])
            assert cfg[comp].name == method


@pytest.mark.parametrize("override,needle", [
    ("decode.beam_sise=3", "beam_sise"),          # typo'd key
    ("decode.beam_size=wide", "beam_size"),       # wrong type
    ("encoder=int9", "int9"),                     # unknown method
    ("calibration.dirr=x", "dirr"),               # typo'd key of the calibration node
])
def test_typos_fail_at_compose_time(override, needle):
    from hydra.errors import ConfigCompositionException
    from omegaconf.errors import OmegaConfBaseException

    with pytest.raises((ConfigCompositionException, OmegaConfBaseException)) as e:
        compose([override])
    assert needle in str(e.value) + str(e.value.__cause__)


@pytest.fixture(scope="module")
def cli_run(tiny, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    res = _cli(tiny_overrides(tiny, f"hydra.run.dir={tmp / 'run'}"), tmp)
    assert res.returncode == 0, res.stderr
    return res, tmp / "run"


def test_cli_run_writes_metrics_utterances_and_config(tiny, cli_run):
    res, run = cli_run
    assert "WER" in res.stdout and "[nltk_data]" not in res.stderr and "Warning" not in res.stderr
    m = json.loads((run / "metrics.json").read_text())
    for key in ("wer", "cer", "n_utterances", "n_words", "substitutions", "deletions", "insertions", "rtf"):
        assert key in m
    assert m["n_utterances"] == 3 and m["n_words"] == 7
    assert set(m["latency_ms"]) >= {"mean", "p50", "p90"}
    assert set(m["components"]) == {"frontend", "encoder", "ctc", "decoder", "lm"}
    enc = m["components"]["encoder"]
    assert enc["method"]["name"] == "none" and enc["params"] > 0 and enc["nonzero_params"] > 0 and enc["size_bytes"] > 0
    assert len(m["model"]["asr_weights_sha256"]) == 64 and m["model"]["lm_config"].endswith("config.yaml")
    errs = m["substitutions"] + m["deletions"] + m["insertions"]
    assert m["wer"] == pytest.approx(errs / m["n_words"])
    assert set(m["groups"]) == {"seen", "unseen"}
    rows = [json.loads(l) for l in (run / "utterances.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["utt0", "utt1", "utt2"]
    for r in rows:
        assert {"id", "audio", "ref", "hyp", "substitutions", "deletions", "insertions", "audio_s", "latency_ms"} <= set(r)
        assert Path(r["audio"]).is_file()
    saved = OmegaConf.load(run / ".hydra" / "config.yaml")
    assert saved.model.exp_dir == str(tiny["asr"])


def test_a_model_and_test_set_given_by_folder_alone_are_labelled_by_their_folders(tiny, tmp_path):
    # the default model's config names it; model.exp_dir=<yours> without model.name must not be
    # filed and reported as "default", nor data.dir=<yours> as the shipped test set
    from tiny_model import build_tiny_asr

    asr = build_tiny_asr(tmp_path / "exp" / "asr_train_tiny_char")
    (tmp_path / "test_clean").symlink_to(tiny["data"])
    args = [a for a in tiny_overrides(tiny, f"model.exp_dir={asr}", f"data.dir={tmp_path / 'test_clean'}",
                                      "eval.flops_utterances=0", "data.limit=1")
            if not a.startswith(("model.name=", "data.name="))]
    res = _cli(args, tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    (run,) = (tmp_path / "outputs" / "asr_train_tiny_char" / "test_clean").iterdir()
    m = json.loads((run / "metrics.json").read_text())
    assert m["model"]["name"] == "asr_train_tiny_char" and m["data"]["name"] == "test_clean"
    saved = OmegaConf.load(run / ".hydra" / "config.yaml")  # what the report and the analysis read
    assert saved.model.name == "asr_train_tiny_char" and saved.data.name == "test_clean"


def test_the_default_model_and_test_set_keep_their_labels():
    from asr_compress.config import fill_labels

    cfg = compose()
    assert cfg.model.name is None and cfg.data.name is None
    fill_labels(cfg)
    assert (cfg.model.name, cfg.data.name) == ("default", "synth_test")


def test_cli_bad_audio_is_one_line_and_leaves_no_output(tiny, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny["data"], data)
    (data / "utt1.flac").write_bytes(b"not audio at all")
    res = _cli(tiny_overrides(tiny, f"data.dir={data}", f"hydra.run.dir={tmp_path / 'run'}"), tmp_path)
    assert res.returncode == 2
    err = [l for l in res.stderr.splitlines() if l.strip() and "[asr_compress][INFO]" not in l]
    assert len(err) == 1, res.stderr
    assert err[0].startswith("asr-compress: error: ") and "utt1.flac: unreadable audio" in err[0]
    assert not (tmp_path / "run").exists()


def test_study_presets_compose_against_the_real_config():
    one = compose(["study=one_at_a_time"])
    assert one.encoder.name == "none"
    cut = compose(["cut=decoder_prune_unstructured", "decoder.sparsity=0.3"])
    assert cut.decoder.name == "prune_unstructured" and cut.decoder.sparsity == 0.3 and cut.encoder.name == "none"
    fact = compose(["study=factorial"])
    assert fact.lm.name == "none"


def test_multirun_one_at_a_time_writes_the_report(tiny, tmp_path):
    sweep = tmp_path / "sweep"
    res = _cli(["study=one_at_a_time", "cut=none,encoder_int8_dynamic,lm_int8_dynamic",
                *tiny_overrides(tiny, "eval.flops_utterances=0", "eval.warmup=0"), f"hydra.sweep.dir={sweep}"], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    runs = sorted(p.parent.name for p in sweep.glob("*/metrics.json"))
    assert runs == ["0", "1", "2"]
    cfg1 = OmegaConf.load(sweep / "1" / ".hydra" / "config.yaml")
    assert cfg1.encoder.name == "int8_dynamic" and cfg1.lm.name == "none"
    report = (sweep / "REPORT.md").read_text()
    assert "encoder" in report and (sweep / "runs.csv").is_file() and list(sweep.glob("*.png"))


def test_a_failed_sweep_cell_does_not_stop_the_sweep_but_fails_its_exit_status(tiny, tmp_path):
    sweep = tmp_path / "sweep"
    res = _cli(["-m", "decode.beam_size=0,2", "~hydra.callbacks.report", f"hydra.sweep.dir={sweep}",
                *tiny_overrides(tiny, "eval.flops_utterances=0", "eval.warmup=0")], tmp_path)
    assert res.returncode == 1
    assert (sweep / "1" / "metrics.json").is_file() and not (sweep / "0" / "metrics.json").exists()
    assert "beam_size=0" in (sweep / "0" / "error.txt").read_text()
    assert f"1 run(s) of the sweep failed; their error.txt: {sweep / '0' / 'error.txt'}" in res.stderr
    # the same sweep dir again, cell 0 now valid: its old error.txt is not read as this run's failure
    res = _cli(["-m", "decode.beam_size=1,2", "~hydra.callbacks.report", f"hydra.sweep.dir={sweep}",
                *tiny_overrides(tiny, "eval.flops_utterances=0", "eval.warmup=0")], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (sweep / "0" / "metrics.json").is_file() and not (sweep / "0" / "error.txt").exists()


@pytest.mark.parametrize("report", [True, False])
def test_a_cell_failed_in_a_cluster_job_fails_the_sweeps_exit_status(tiny, tmp_path, report):
    # hydra/launcher=submitit_local runs each cell in a job of its own, as submitit_slurm does on a
    # cluster: the failure is found on disk when the sweep ends, not in the launching process, also
    # by a sweep run without the report (hydra.callbacks.cells looks)
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="the cluster extra is not installed")
    sweep = tmp_path / "sweep"
    res = _cli(["-m", "hydra/launcher=submitit_local", "decode.beam_size=0,2", f"hydra.sweep.dir={sweep}",
                "hydra.callbacks.report.plots=false" if report else "~hydra.callbacks.report",
                *tiny_overrides(tiny, "eval.flops_utterances=0", "eval.warmup=0")], tmp_path)
    assert res.returncode == 1, res.stderr[-2000:]
    assert (sweep / "1" / "metrics.json").is_file() and "beam_size=0" in (sweep / "0" / "error.txt").read_text()
    assert f"1 run(s) of the sweep failed; their error.txt: {sweep / '0' / 'error.txt'}" in res.stderr
    if report:
        assert "beam_size=0" in (sweep / "REPORT.md").read_text()  # the report, written once, lists it
    else:
        assert not (sweep / "REPORT.md").exists()


@pytest.mark.parametrize("launcher", ["basic", "submitit_local"])
def test_a_sweep_over_test_sets_reports_each_in_its_own_sweep_dir(tiny, tmp_path, launcher):
    # the sweep directory is named by the test set, and Hydra names it again for every cell: each
    # test set's cells land in a directory of their own, and each directory gets its report, also
    # when the cells ran as jobs of their own (a cluster launcher)
    if launcher != "basic":
        pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="the cluster extra is not installed")
    missing = tmp_path / "no_such_set"
    overrides = [o for o in tiny_overrides(tiny, "eval.flops_utterances=0", "eval.warmup=0", "data.limit=1")
                 if not o.startswith(("data.dir=", "data.name="))]
    # the default sweep directory (multirun/<model>/<data>/<time>), and a fixed one in the short form
    # the README gives for reruns (the labels without arguments: no quoting for Hydra's commas)
    fixed = launcher != "basic"
    res = _cli(["-m", f"data.dir={tiny['data']},{missing}", "hydra.callbacks.report.plots=false",
                "hydra.callbacks.report.n_resamples=10", *overrides]
               + (["hydra/launcher=submitit_local", "hydra.sweep.dir=study/${model_label:}/${data_label:}"]
                  if fixed else []), tmp_path)
    pattern = "study/tiny/{}" if fixed else "multirun/tiny/{}/*"
    (ok,) = tmp_path.glob(pattern.format(tiny["data"].name))
    (bad,) = tmp_path.glob(pattern.format("no_such_set"))
    assert res.returncode == 1, res.stderr[-2000:]
    assert f"1 run(s) of the sweep failed; their error.txt: {bad.absolute() / '1' / 'error.txt'}" in res.stderr
    assert (ok / "0" / "metrics.json").is_file() and "data.dir is not a directory" in (bad / "1" / "error.txt").read_text()
    assert "model: `tiny`, data: `" + tiny["data"].name + "`" in (ok / "REPORT.md").read_text()
    assert "no finished" in (bad / "REPORT.md").read_text().lower()
    # where the launch itself was filed (the test set before the sweep): its record, and where its cells went
    (launch,) = tmp_path.glob(pattern.format("synth_test"))
    assert sorted(launch.joinpath("sweep_dirs.txt").read_text().split()) == sorted(
        str(d.absolute()) for d in (ok, bad))


def test_baseline_results_table(cli_run, tmp_path):
    from asr_compress.report.baseline import main as baseline_main

    _, run = cli_run
    assert baseline_main([str(run), "--out", str(tmp_path / "res")]) == 0
    text = (tmp_path / "res" / "RESULTS.md").read_text()
    assert "|run|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|" in text and "|tiny (run)|3|7|" in text
    assert "num_threads: 1" in text and "git_hash:" in text and "|tiny|seen|2|4|" in text
    assert (tmp_path / "res" / "tiny.metrics.json").is_file() and not list((tmp_path / "res").glob("*.jsonl"))
    assert baseline_main([str(tmp_path / "nope"), "--out", str(tmp_path / "res2")]) == 2


@pytest.mark.parametrize("lm, ngram_file, ngram, label", [
    (0.5, "6gram.bin", 0.3, "dev"), (0.0, "6gram.bin", 0.0, "dev, no LM"), (0.0, None, 0.9, "dev, no LM"),
    (0.0, "6gram.bin", 0.3, "dev, n-gram only"), (0.5, None, 0.9, "dev")])
def test_baseline_no_lm_means_neither_the_lm_nor_the_ngram(lm, ngram_file, ngram, label):
    # a row marked 'no LM' that still scored the n-gram would credit the LM with less than it does
    from asr_compress.report.baseline import run_label

    metrics = {"data": {"name": "dev"}, "decode": {"lm_weight": lm, "ngram_weight": ngram},
               "model": {"ngram_file": ngram_file}}
    assert run_label(metrics) == label


def test_baseline_names_repository_files_from_the_root(tmp_path):
    # metrics.json records absolute paths; a committed report should not carry this machine's
    from asr_compress.config import PROJECT_ROOT
    from asr_compress.report.baseline import shown_path

    assert shown_path(str(PROJECT_ROOT / "models/default/ngram/4gram.bin")) == "models/default/ngram/4gram.bin"
    assert shown_path(str(tmp_path / "x.bin")) == str(tmp_path / "x.bin")  # outside: as recorded


def test_baseline_marks_the_run_without_lm(tiny, cli_run, tmp_path):
    """The LM-off row sits beside the LM row of the same test set, labelled, with its own metrics file."""
    from asr_compress.report.baseline import main as baseline_main

    _, run = cli_run
    res = _cli(tiny_overrides(tiny, "decode.lm_weight=0", "eval.flops_utterances=0", "eval.warmup=0",
                              f"hydra.run.dir={tmp_path / 'nolm'}"), tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert baseline_main([str(run), str(tmp_path / "nolm"), "--out", str(tmp_path / "res")]) == 0
    text = (tmp_path / "res" / "RESULTS.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("|tiny")]
    assert any(r.startswith("|tiny (") and "/run)|3|7|" in r for r in rows)
    assert any(r.startswith("|tiny, no LM (") and "/nolm)|3|7|" in r for r in rows)
    assert "|tiny, no LM|seen|2|4|" in text and "LM weight 0.5 (0 in the rows marked 'no LM')" in text
    assert (tmp_path / "res" / "tiny.no_lm.metrics.json").is_file()
    assert baseline_main([str(run), str(run), "--out", str(tmp_path / "dup")]) == 2  # same row twice
    nolm = json.loads((tmp_path / "res" / "tiny.no_lm.metrics.json").read_text())
    assert nolm["decode"]["lm_weight"] == 0 and nolm["time_breakdown_ms"].get("lm", 0.0) == 0.0


def test_a_cell_that_failed_in_an_earlier_multirun_into_the_same_sweep_dir_does_not_fail_the_next(tiny, tmp_path):
    # the README's two multiruns into one sweep dir: the second's exit status is its own cells',
    # while its report still covers (and lists the failure of) both
    sweep = tmp_path / "sweep"
    common = [f"hydra.sweep.dir={sweep}", "hydra.callbacks.report.plots=false",
              *tiny_overrides(tiny, "eval.flops_utterances=0", "eval.warmup=0")]
    res = _cli(["-m", "decode.beam_size=0", "hydra.sweep.subdir=first", *common], tmp_path)
    assert res.returncode == 1 and (sweep / "first" / "error.txt").is_file()
    res = _cli(["-m", "decode.beam_size=2", "hydra.sweep.subdir=second", *common], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (sweep / "second" / "metrics.json").is_file() and "run(s) of the sweep failed" not in res.stderr
    assert "beam_size=0" in (sweep / "REPORT.md").read_text()


@pytest.fixture
def failing_run(monkeypatch):
    """run_experiment replaced by one that fails the way a CUDA run out of memory does."""
    from asr_compress import failed_cells, run

    def _oom(cfg, out_dir):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\nsecond line")

    monkeypatch.setattr(run, "run_experiment", _oom)
    monkeypatch.setattr(failed_cells, "_failed", {})
    return failed_cells


def test_an_unexpected_error_in_a_sweep_cell_is_recorded_and_the_sweep_goes_on(failing_run, tmp_path, capsys):
    from asr_compress.cli import run_cell

    wer = run_cell(compose(), tmp_path / "3", multirun=True)
    assert wer != wer  # NaN: Hydra's basic launcher then starts the next cell
    lines = (tmp_path / "3" / "error.txt").read_text().splitlines()
    assert lines[0] == "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"  # the report's error line
    assert any(line.startswith("Traceback") for line in lines)  # and the traceback for debugging
    assert failing_run.failed() == [tmp_path / "3"]  # so the sweep exits 1
    assert "the sweep goes on" in capsys.readouterr().err


def test_an_unexpected_error_in_a_single_run_raises_with_its_traceback(failing_run, tmp_path):
    from asr_compress.cli import run_cell

    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        run_cell(compose(), tmp_path, multirun=False)
    assert not (tmp_path / "error.txt").exists() and failing_run.failed() == []


def test_help_names_the_command_and_lists_every_method(tmp_path):
    from asr_compress.compress import METHOD_CONFIGS

    res = _cli(["--help"], tmp_path)
    assert res.returncode == 0 and res.stdout.startswith("asr-compress: per-component compression studies")
    encoder_line = next(line for line in res.stdout.splitlines() if line.startswith("encoder: "))
    assert set(METHOD_CONFIGS) <= set(encoder_line.removeprefix("encoder: ").split(", "))


def test_a_weight_method_on_a_frontend_without_weights_fails_once_the_model_is_loaded(tiny, tmp_path):
    # whether a frontend has weights (an SSL one) or not (fbank, as here) is known from the model only
    res = _cli(["frontend=int8_dynamic", *tiny_overrides(tiny)], tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1] == (
        "asr-compress: error: frontend: int8_dynamic does not apply to this model's frontend: DefaultFrontend "
        "(STFT + fixed mel filterbank) has no weights; valid: frontend=none, or a model with an SSL frontend "
        "(S3prlFrontend, HuggingFaceFrontend, ESPnetSSLFrontend)")


def test_a_frontend_with_weights_is_compressed_and_attributed(tiny, tmp_path):
    # the frontend of an SSL model holds most of its weights; ESPnet's FusedFrontends (fbank + a
    # learned projection) stands in for one here
    from tiny_model import FUSED_FRONTEND, build_tiny_asr

    asr = build_tiny_asr(tmp_path / "exp" / "asr", frontend=FUSED_FRONTEND)
    res = _cli(["frontend=int8_dynamic", f"hydra.run.dir={tmp_path / 'run'}",
                *tiny_overrides(tiny, f"model.exp_dir={asr}", "eval.flops_utterances=0")], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    front = m["components"]["frontend"]
    assert front["method"]["name"] == "int8_dynamic" and front["kernel"] == "real"
    assert front["params"] == front["baseline_params"] > 0 and front["size_bytes"] < front["baseline_size_bytes"]
    assert m["time_breakdown_ms"]["frontend"] > 0


def test_layers_of_an_ssl_frontend_are_dropped_and_attributed(tiny, tmp_path):
    # a model whose frontend is an SSL model trained in ESPnet (ESPnetSSLFrontend, weighted sum of
    # its 4 layers): layer_drop on the frontend cuts that stack and renumbers the sum's weights
    from tiny_model import build_tiny_asr, build_tiny_ssl, espnet_ssl_frontend

    asr = build_tiny_asr(tmp_path / "exp" / "asr", frontend=espnet_ssl_frontend(build_tiny_ssl(tmp_path / "ssl")))
    res = _cli(["frontend=layer_drop", "frontend.drop=[-1]", f"hydra.run.dir={tmp_path / 'run'}",
                *tiny_overrides(tiny, f"model.exp_dir={asr}", "eval.flops_utterances=0")], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    front = json.loads((tmp_path / "run" / "metrics.json").read_text())["components"]["frontend"]
    assert front["kernel"] == "real" and front["params"] < front["baseline_params"]
    assert front["notes"] == ["kept 2 of 4 layers of encoders: [0, 2]",
                              "the featurizer's weighted sum keeps the weights of hidden states [0, 2]"]


def test_a_sweep_over_an_s3prl_frontend_compresses_each_cell_its_own_copy(tiny, tmp_path):
    # ESPnet's S3PRL frontend around S3PRL's HuBERT: s3prl imports under the pinned torchaudio
    # (s3prl_compat.patch_torchaudio), the cells' copies collect their own hidden states (rehook),
    # and quantization reaches fairseq attention's projections (targeting.reroute)
    pytest.importorskip("s3prl", reason="the ssl extra (s3prl) is not installed")
    from tiny_model import build_tiny_asr, build_tiny_s3prl_hubert, s3prl_frontend

    asr = build_tiny_asr(tmp_path / "exp" / "asr",
                         frontend=s3prl_frontend(build_tiny_s3prl_hubert(tmp_path / "s3prl" / "hubert.pt")))
    sweep = tmp_path / "sweep"
    res = _cli(["-m", "frontend=none,int8_dynamic,layer_drop", f"hydra.sweep.dir={sweep}",
                "hydra.callbacks.report.plots=false",
                *tiny_overrides(tiny, f"model.exp_dir={asr}", "eval.flops_utterances=0")], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    fronts = [json.loads((sweep / str(i) / "metrics.json").read_text())["components"]["frontend"] for i in range(3)]
    assert [f["method"]["name"] for f in fronts] == ["none", "int8_dynamic", "layer_drop"]
    assert fronts[1]["size_bytes"] < fronts[0]["size_bytes"] and fronts[2]["params"] < fronts[0]["params"]
    assert (sweep / "REPORT.md").is_file()
    # side-by-side timing holds every cell in one process, the cut frontends as copies (Pipeline.copy)
    from asr_compress.report.retime import run_retime

    assert run_retime([str(sweep), "--rounds", "1", "--utterances", "2", "--no-report"]) == 0
    runs = json.loads((sweep / "interleaved" / "bench.json").read_text())["sweep"]["runs"]
    assert len(runs) == 3 and all(r["hyp_mismatches"] == 0 and len(r["ms_per_utt"]) == 1 for r in runs.values())


@pytest.mark.parametrize("choice,overrides,warned", [
    ("default_model", ["model.exp_dir=/m/exp/asr_train_conformer"], True),   # another model, the shipped weights
    ("generic", ["model.exp_dir=/m/exp/asr_train_conformer"], False),
    ("default_model", [], False),                                             # the shipped model itself
    ("default_model", ["model.exp_dir=/m/exp/x", "model.name=default"], False),  # named so on purpose
])
def test_another_model_with_the_shipped_models_decoding_weights_is_warned(capsys, choice, overrides, warned):
    from asr_compress.cli import warn_decode_weights

    warn_decode_weights(choice, compose(overrides))
    err = capsys.readouterr().err
    assert ("decode=default_model holds the weights tuned for the shipped model" in err) == warned
    if warned:
        assert "model 'asr_train_conformer' is another one: pass decode=generic" in err
