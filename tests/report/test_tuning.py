"""Decoding-weight tuning: a multirun over decode.* on a dev set, the lowest-WER setting written as a config."""
import json
import shutil

import pytest
from omegaconf import OmegaConf

from asr_compress.report.tuning import main as tuning_main
from support import compose, run_cli, tiny_overrides


@pytest.fixture(scope="module")
def lm_sweep(tiny, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tune")
    sweep = tmp / "sweep"
    res = run_cli(["-m", "decode.lm_weight=0,0.5", "~hydra.callbacks.report", f"hydra.sweep.dir={sweep}",
                   *tiny_overrides(tiny, "eval.flops_utterances=0", "eval.warmup=0")], tmp)
    assert res.returncode == 0, res.stderr[-2000:]
    return sweep


def test_tuning_table_marks_the_lowest_wer_and_writes_the_decode_config(lm_sweep, tmp_path):
    conf = tmp_path / "conf" / "decode" / "tuned.yaml"
    assert tuning_main([str(lm_sweep), "--out", str(tmp_path / "res"), "--write-conf", str(conf)]) == 0
    text = (tmp_path / "res" / "TUNING.md").read_text()
    runs = {json.loads(p.read_text())["decode"]["lm_weight"]: json.loads(p.read_text())
            for p in lm_sweep.glob("*/metrics.json")}
    assert set(runs) == {0, 0.5}
    best_w = min(sorted(runs), key=lambda w: runs[w]["wer"])  # ties to the smaller weight
    rows = [line for line in text.splitlines() if line.startswith("|0")]
    assert len(rows) == 2 and sum("(chosen)" in r for r in rows) == 1
    chosen = next(r for r in rows if "(chosen)" in r)
    assert chosen.startswith(f"|{best_w:g}|{100 * runs[best_w]['wer']:.2f} **(chosen)**|")
    assert "num_threads: 1" in text and "Fixed: beam_size 5, ctc_weight 0.3, penalty 0" in text
    written = OmegaConf.load(conf)
    assert dict(written) == {"lm_weight": best_w} and "do not edit by hand" in conf.read_text()


def test_the_default_run_uses_the_shipped_decode_config_and_generic_the_schema():
    from asr_compress.config import PROJECT_ROOT, DecodeConfig

    shipped = OmegaConf.load(PROJECT_ROOT / "conf" / "decode" / "default_model.yaml")
    assert len(shipped) > 0
    cfg = compose()
    assert all(cfg.decode[k] == v for k, v in shipped.items())
    generic = compose(["decode=generic"]).decode
    assert OmegaConf.to_container(generic) == OmegaConf.to_container(OmegaConf.structured(DecodeConfig()))


def test_bad_sweeps_fail_with_one_line_errors(lm_sweep, tmp_path, capsys):
    assert tuning_main([str(tmp_path / "nope"), "--out", str(tmp_path / "r")]) == 2
    assert "no */metrics.json" in capsys.readouterr().err
    one = tmp_path / "one"
    shutil.copytree(lm_sweep / "0", one / "0")
    shutil.copytree(lm_sweep / "0", one / "1")
    assert tuning_main([str(one), "--out", str(tmp_path / "r")]) == 2
    assert "no decode.* value varies" in capsys.readouterr().err
    m = json.loads((one / "1" / "metrics.json").read_text())
    m["data"]["name"] = "other"
    (one / "1" / "metrics.json").write_text(json.dumps(m))
    assert tuning_main([str(one), "--out", str(tmp_path / "r")]) == 2
    assert "data differs" in capsys.readouterr().err
    assert not (tmp_path / "r" / "TUNING.md").exists()


def test_tuning_on_a_set_named_test_warns_everywhere_it_writes(lm_sweep, tmp_path, capsys):
    conf = tmp_path / "tuned.yaml"
    assert tuning_main([str(lm_sweep), "--out", str(tmp_path / "dev"), "--write-conf", str(conf)]) == 0
    assert "warning" not in capsys.readouterr().err  # data.name=tiny: no warning
    assert "Warning" not in (tmp_path / "dev" / "TUNING.md").read_text()
    sweep = tmp_path / "on_test"
    shutil.copytree(lm_sweep, sweep)
    for p in sweep.glob("*/metrics.json"):
        m = json.loads(p.read_text())
        m["data"]["name"] = "test_clean"
        p.write_text(json.dumps(m))
    assert tuning_main([str(sweep), "--out", str(tmp_path / "res"), "--write-conf", str(conf)]) == 0
    err = capsys.readouterr().err
    assert "warning: these weights were tuned on `test_clean`" in err and "is optimistic" in err
    assert "**Warning**: these weights were tuned on `test_clean`" in (tmp_path / "res" / "TUNING.md").read_text()
    assert "# WARNING: these weights were tuned on `test_clean`" in conf.read_text()


@pytest.mark.parametrize("name,warns", [("test_clean", True), ("synth_test", True), ("eval92", True),
                                         ("dev93", False), ("dev_clean", False), ("contest", False)])
def test_test_set_names(name, warns):
    from asr_compress.report.tuning import test_set_warning

    assert bool(test_set_warning({"name": name, "dir": "/data/x"})) is warns
