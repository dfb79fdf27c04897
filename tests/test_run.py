"""run_experiment in-process: compression choices reach the components, bad ones fail early."""
import json
import sys

import pytest

from asr_compress.errors import AsrCompressError, CompressionConfigError
from asr_compress.run import run_experiment
from support import calibration_dir, compose, tiny_overrides


@pytest.mark.parametrize("overrides,needle", [
    (["decoder=prune_unstructured", "decoder.sparsity=1.0"], "decoder: prune_unstructured sparsity=1.0 is invalid; valid: 0 <= sparsity < 1"),
    (["encoder=lowrank", "encoder.rank=0"], "encoder: "),
    (["ctc=layer_drop"], "ctc: layer_drop does not apply"),
    (["encoder=layer_drop", "encoder.keep_every=0", "encoder.drop=[0,1]"], "drops all 2 layers"),
    (["decoder=int8_dynamic", "decoder.targets=[NoSuchLayer]"], "NoSuchLayer"),
    (["decode.beam_size=0"], "decode.beam_size=0: must be >= 1"),
    (["decode.lm_weight=-1"], "decode.lm_weight=-1.0: must be >= 0"),
    (["decode.minlenratio=-0.1"], "decode.minlenratio=-0.1: must be >= 0"),
    (["eval.repeats=0"], "eval.repeats=0: must be >= 1"),
    (["lm=int8_dynamic", "eval.device=cuda"], "lm=int8_dynamic: dynamic int8 kernels run on CPU only"),
    (["eval.num_threads=0"], "eval.num_threads=0: must be >= 1"),
    (["decode.transducer_search=beam"], "decode.transducer_search=beam: not a search of ESPnet's BeamSearchTransducer; "
                                        "valid: default, tsd, alsd, nsc, maes (greedy: decode.beam_size=1"),
    (["encoder=layer_drop_distill"], "encoder=layer_drop_distill: learns from data; set calibration.dir="),
    (["decoder=distill", "decoder.steps=[{name: layer_drop}]", "lm=layer_drop_distill"],
     "decoder=distill, lm=layer_drop_distill: learns from data; set calibration.dir="),
    (["encoder=layer_drop_distill", "calibration.dir=/nonexistent/dev"],
     "calibration.dir=/nonexistent/dev: not a directory; valid: a Kaldi-style data dir with wav.scp (for encoder=layer_drop_distill)"),
])
def test_bad_parameters_fail_before_decoding_with_one_line(tiny, tmp_path, overrides, needle):
    cfg = compose(tiny_overrides(tiny, *overrides))
    with pytest.raises(AsrCompressError) as e:
        run_experiment(cfg, tmp_path / "out")
    assert needle in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "out").exists()


def test_methods_reach_their_components_and_are_reported(tiny, tmp_path):
    cfg = compose(tiny_overrides(tiny, "encoder=int8_dynamic", "decoder=prune_unstructured", "decoder.sparsity=0.5",
                                 "eval.flops_utterances=0", "eval.warmup=0"))
    m = run_experiment(cfg, tmp_path / "out")
    comps = m["components"]
    assert comps["encoder"]["method"]["name"] == "int8_dynamic" and comps["encoder"]["kernel"] == "real"
    assert comps["encoder"]["size_bytes"] < comps["encoder"]["baseline_size_bytes"]
    assert comps["decoder"]["kernel"] == "simulated" and comps["decoder"]["sparsity"] >= 0.45
    assert comps["lm"]["method"]["name"] == "none" and comps["lm"]["kernel"] == "none"
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["components"]["decoder"]["method"]["sparsity"] == 0.5
    # its own memory peak (Linux), not the test process's so far
    assert saved["peak_rss_scope"] == ("run" if sys.platform.startswith("linux") else "process")
    assert 0 < saved["peak_rss_mb"]


def test_calibrating_on_the_test_set_is_refused(tiny, tmp_path):
    cfg = compose(tiny_overrides(tiny, "encoder=layer_drop_distill", f"calibration.dir={tiny['data']}/."))
    with pytest.raises(AsrCompressError, match=r"calibration.dir=.* is the test set \(data.dir\): training on it would "
                                               r"leak the test set into the WER; valid: any other data dir$"):
        run_experiment(cfg, tmp_path / "out")


def test_distill_trains_on_calibration_audio_and_records_it(tiny, tmp_path):
    calib = calibration_dir(tiny, tmp_path / "calib")
    cfg = compose(tiny_overrides(tiny, "decoder=layer_drop_distill", "decoder.updates=4", f"calibration.dir={calib}",
                                 "calibration.name=mine", "eval.flops_utterances=0", "eval.warmup=0"))
    m = run_experiment(cfg, tmp_path / "out")
    dec = m["components"]["decoder"]
    assert dec["method"]["name"] == "layer_drop_distill" and dec["kernel"] == "real"
    assert dec["params"] < dec["baseline_params"]
    assert any("distilled 4 updates" in n and "on 2 calibration utterances from mine" in n for n in dec["notes"])
    assert m["calibration"] == {"dir": str(calib), "limit": 32, "name": "mine"}
    assert m["components"]["encoder"]["method"]["name"] == "none"


def test_runs_of_one_process_decode_the_calibration_set_once(tiny, tmp_path, monkeypatch):
    # a multirun's jobs share one process: the second learning cell reuses the first one's capture
    import asr_compress.pipeline.calibration as calibration
    import asr_compress.run as run

    calls = []
    real = calibration.capture
    monkeypatch.setattr(calibration, "capture", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(run, "_CAPTURED", {})
    calib = calibration_dir(tiny, tmp_path / "calib")

    def cell(name, *more):
        cfg = compose(tiny_overrides(tiny, "decoder=layer_drop_distill", "decoder.updates=4", f"calibration.dir={calib}",
                                     "eval.flops_utterances=0", "eval.warmup=0", *more))
        return run_experiment(cfg, tmp_path / name)["components"]["decoder"]["notes"]

    first = cell("a")
    assert len(calls) == 1
    assert cell("b") == first and len(calls) == 1  # the same capture: the same distilled decoder
    cell("c", "decode.beam_size=2")  # another decoding gives other hypotheses: decoded again
    assert len(calls) == 2


def test_calibration_audio_from_the_test_set_is_refused(tiny, tmp_path):
    calib = tmp_path / "calib"  # another dir, but its wav.scp points at a test-set file
    calib.mkdir()
    uid, path = (tiny["data"] / "wav.scp").read_text().splitlines()[1].split(maxsplit=1)
    audio = path if path.startswith("/") else tiny["data"] / path
    (calib / "wav.scp").write_text(f"other_id {audio}\n")
    cfg = compose(tiny_overrides(tiny, "lm=layer_drop_distill", f"calibration.dir={calib}"))
    with pytest.raises(AsrCompressError, match=r"calibration.dir=.*: 1 of its audio files are in the test set \(first: "
                                               r".*\); training on them would leak the test set into the WER; valid: "
                                               r"audio the test set does not use$"):
        run_experiment(cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists()
