import shutil
import subprocess
import sys

import pytest
import torch

from asr_compress.config import ModelConfig
from asr_compress.errors import ModelLoadError
from asr_compress.pipeline import find_model_files, load_pipeline


def test_load_from_experiment_dir(tiny):
    p = load_pipeline(ModelConfig(name="t", exp_dir=str(tiny["asr"]), lm_exp_dir=str(tiny["lm"])))
    assert set(p.components()) == {"frontend", "encoder", "ctc", "decoder", "lm"}
    assert p.files.source == "exp_dir"
    assert p.files.asr_weights.name == "valid.acc.ave.pth"
    desc = p.files.describe()
    assert len(desc["asr_weights_sha256"]) == 64 and len(desc["lm_config_sha256"]) == 64


def test_load_from_explicit_paths_matches_exp_dir(tiny):
    a = load_pipeline(ModelConfig(name="t", exp_dir=str(tiny["asr"])))
    b = load_pipeline(ModelConfig(name="t", asr_config=str(tiny["asr"] / "config.yaml"),
                                  asr_weights=str(tiny["asr"] / "valid.acc.ave.pth"),
                                  lm_config=str(tiny["lm"] / "config.yaml"), lm_weights=str(tiny["lm"] / "valid.acc.ave.pth")))
    assert b.files.source == "paths" and b.lm is not None and a.lm is None
    for (ka, va), (kb, vb) in zip(a.asr_model.state_dict().items(), b.asr_model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_missing_weights_names_the_file(tiny, tmp_path):
    exp = tmp_path / "exp"
    exp.mkdir()
    shutil.copy(tiny["asr"] / "config.yaml", exp)
    with pytest.raises(ModelLoadError, match=r"exp: no model weights"):
        find_model_files(ModelConfig(name="t", exp_dir=str(exp)))
    with pytest.raises(ModelLoadError, match=r"nope\.pth: file not found \(model\.asr_weights\)"):
        find_model_files(ModelConfig(name="t", asr_config=str(exp / "config.yaml"), asr_weights=str(tmp_path / "nope.pth")))
    with pytest.raises(ModelLoadError, match="exactly one of"):
        find_model_files(ModelConfig(name="t"))


@pytest.mark.parametrize("swap,needle", [
    ("asr", r"lm/config\.yaml: an ESPnet LM config, where the ASR model's is expected; valid: the ASR experiment in "
            r"model\.exp_dir or model\.asr_config, the LM one in model\.lm_exp_dir or model\.lm_config"),
    ("lm", r"asr/config\.yaml: an ESPnet ASR config, where the LM model's is expected; valid: the LM experiment in "
           r"model\.lm_exp_dir or model\.lm_config"),
])
def test_an_lm_given_as_the_asr_or_the_other_way_round_is_named(tiny, swap, needle):
    # rather than ESPnet's "'Namespace' object has no attribute 'input_size'" from deep in its builder
    asr, lm = (tiny["lm"], None) if swap == "asr" else (tiny["asr"], tiny["asr"])
    with pytest.raises(ModelLoadError, match=needle):
        load_pipeline(ModelConfig(name="t", exp_dir=str(asr), lm_exp_dir=str(lm) if lm else None))


def test_token_list_mismatch_is_one_clear_line(tiny, tmp_path):
    import yaml

    exp = tmp_path / "exp"
    exp.mkdir()
    cfg = yaml.safe_load((tiny["asr"] / "config.yaml").read_text())
    cfg["token_list"] = cfg["token_list"][:-3] + ["<sos/eos>"]  # two tokens short
    (exp / "config.yaml").write_text(yaml.safe_dump(cfg))
    shutil.copy(tiny["asr"] / "valid.acc.ave.pth", exp)
    with pytest.raises(ModelLoadError) as e:
        load_pipeline(ModelConfig(name="t", exp_dir=str(exp)))
    msg = str(e.value)
    assert "\n" not in msg and "valid.acc.ave.pth" in msg and "token list" in msg and "29 entries, weights expect 31" in msg


def _lm_with_tokens(tiny, tmp_path, tokens):
    import yaml

    lm = tmp_path / "lm"
    lm.mkdir()
    cfg = yaml.safe_load((tiny["lm"] / "config.yaml").read_text())
    cfg["token_list"] = tokens
    (lm / "config.yaml").write_text(yaml.safe_dump(cfg))
    shutil.copy(tiny["lm"] / "valid.acc.ave.pth", lm)
    return lm, cfg


def test_an_lm_over_other_units_is_refused(tiny, tmp_path):
    # same number of units, so its weights load: only the list tells that its ids mean other units
    import yaml

    units = yaml.safe_load((tiny["lm"] / "config.yaml").read_text())["token_list"]
    lm, _ = _lm_with_tokens(tiny, tmp_path, [units[0], *reversed(units[1:-1]), units[-1]])
    with pytest.raises(ModelLoadError, match=r"lm/config\.yaml: the LM's token list \(31 units\) is not the ASR's "
                                             r".*\(model\.lm_exp_dir / model\.lm_config\).*model\.lm_exp_dir=null"):
        load_pipeline(ModelConfig(name="t", exp_dir=str(tiny["asr"]), lm_exp_dir=str(lm)))


def test_an_lm_token_list_may_be_a_file(tiny, tmp_path):
    import yaml

    units = yaml.safe_load((tiny["lm"] / "config.yaml").read_text())["token_list"]
    (tmp_path / "tokens.txt").write_text("\n".join(units) + "\n")
    lm, _ = _lm_with_tokens(tiny, tmp_path, str(tmp_path / "tokens.txt"))
    assert load_pipeline(ModelConfig(name="t", exp_dir=str(tiny["asr"]), lm_exp_dir=str(lm))).lm is not None


def test_zoo_tag_offline_gives_one_line_error():
    # The machines that run these tests have no route to the model hub.
    with pytest.raises(ModelLoadError) as e:
        find_model_files(ModelConfig(name="zoo", zoo_tag="pyf98/librispeech_conformer"))
    msg = str(e.value)
    assert "\n" not in msg and "could not download" in msg and "model.exp_dir=" in msg


def test_sha256_is_hashed_once_but_follows_a_rewritten_file(tmp_path):
    import hashlib
    import os

    from asr_compress.pipeline import load

    f = tmp_path / "w.pth"
    f.write_bytes(b"weights one")
    assert load.sha256(f) == hashlib.sha256(b"weights one").hexdigest()
    assert sum(k[0] == str(f.resolve()) for k in load._digests) == 1
    load.sha256(f)  # again: from the memo, no second entry
    assert sum(k[0] == str(f.resolve()) for k in load._digests) == 1
    f.write_bytes(b"weights two")  # same size: the new modification time tells it apart
    st = os.stat(f)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert load.sha256(f) == hashlib.sha256(b"weights two").hexdigest()


def test_an_ssl_frontends_copy_of_its_pretrained_weights_is_dropped_and_the_model_still_decodes(tiny, tmp_path):
    # only training reads it (reload_pretrained_parameters); it would double the frontend's memory
    from tiny_model import build_tiny_asr, build_tiny_ssl, espnet_ssl_frontend

    from asr_compress.config import DecodeConfig
    from asr_compress.evaluate.data import read_audio

    asr = build_tiny_asr(tmp_path / "asr", frontend=espnet_ssl_frontend(build_tiny_ssl(tmp_path / "ssl")))
    p = load_pipeline(ModelConfig(name="t", exp_dir=str(asr)))
    assert not hasattr(p.component("frontend"), "pretrained_params")
    audio = read_audio(str(tiny["data"] / "utt0.flac"), p.sample_rate)
    assert len(p.recognize(audio, DecodeConfig(beam_size=2))[1]) > 0


def test_an_s3prl_upstream_that_cannot_be_downloaded_says_how_to_use_a_local_copy(tiny, tmp_path, monkeypatch):
    # S3PRL fetches a checkpoint named by hub name on first use; offline that is a ConnectionError
    # (an OSError), which the error turns into what to set. The download is simulated: a machine
    # with the internet would fetch 1.2 GB.
    import yaml
    from asr_compress.quiet import import_quietly

    config = yaml.safe_load((tiny["asr"] / "config.yaml").read_text())
    config.update(frontend="s3prl", frontend_conf={"frontend_conf": {"upstream": "hubert_large_ll60k"}})
    exp = tmp_path / "asr"
    exp.mkdir()
    (exp / "config.yaml").write_text(yaml.safe_dump(config))
    shutil.copy(tiny["asr"] / "valid.acc.ave.pth", exp)

    def offline(args):
        raise ConnectionError("Failed to resolve 'huggingface.co'")

    monkeypatch.setattr(import_quietly("espnet2.tasks.asr").ASRTask, "build_model", offline)
    with pytest.raises(ModelLoadError, match=r"asr/config\.yaml: ESPnet cannot build a model from it \(ConnectionError: "
                                             r"Failed to resolve 'huggingface\.co'\); S3PRL downloads upstream "
                                             r"'hubert_large_ll60k' on first use: offline, set frontend_conf\.download_dir"):
        load_pipeline(ModelConfig(name="t", exp_dir=str(exp)))
