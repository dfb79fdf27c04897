"""ESPnet parity: with nothing compressed, our hypotheses are ESPnet's own.

Runs `python -m espnet2.bin.asr_inference` (ESPnet's decoding CLI) on the same model,
data and decoding parameters and compares the tokens it writes with ours, one by one:
on the tiny random test model, and on the shipped default model (real BPE tokens, LM).
"""
import subprocess
import sys
from pathlib import Path

import pytest

from asr_compress.config import PROJECT_ROOT, DataConfig, DecodeConfig, ModelConfig
from asr_compress.evaluate.data import load_test_set, read_audio
from asr_compress.pipeline import load_pipeline


def _lm_in_eval_mode(search_module: str) -> str:
    """Python that makes `search_module`'s BeamSearchTransducer put the LM it is given in eval mode."""
    return (f"import {search_module} as b; init = b.BeamSearchTransducer.__init__; b.BeamSearchTransducer.__init__ = "
            "lambda self, *a, lm=None, **k: init(self, *a, lm=lm and lm.eval(), **k)")


# ESPnet's decoding CLI run after a stand-in that lets ESPnet itself build the model here: s3prl
# importable under torchaudio >= 2.9 (asr_compress/pipeline/s3prl_compat.py), a transducer built
# without warp-transducer's loss, which PyPI does not have (asr_compress/pipeline/transducer.py). For a
# transducer, also one fix of ESPnet 202511: its Speech2Text hands BeamSearchTransducer the LM as
# LMTask built it, in training mode (the attention search is put in eval mode with its scorers, the
# transducer's is not), so its dropout is on while decoding; asr_compress decodes with the LM in eval
# mode, as every other search does, and is compared with ESPnet's output under the same fix
STAND_INS = {"s3prl": "from asr_compress.pipeline.s3prl_compat import patch_torchaudio; patch_torchaudio()",
             "transducer": "from asr_compress.pipeline.transducer import stand_in_rnnt_loss; stand_in_rnnt_loss(); "
                           + _lm_in_eval_mode("espnet2.asr.transducer.beam_search_transducer"),
             # the same fix for the transducer task's own search (espnet2.bin.asr_transducer_inference)
             "asr_transducer": _lm_in_eval_mode("espnet2.asr_transducer.beam_search_transducer")}
RUN_INFERENCE = "import runpy; runpy.run_module('espnet2.bin.{task}_inference', run_name='__main__', alter_sys=True)"


def _espnet_tokens(files, utts, decode, tmp_path: Path, stand_in: str = None, task: str = "asr"):
    """ESPnet's tokens from its decoding CLI: asr_inference, or for a model of its transducer task
    (`task="asr_transducer"`) asr_transducer_inference, which has no CTC weight or penalty."""
    scp = tmp_path / "wav.scp"
    scp.write_text("".join(f"{u.id} {u.audio}\n" for u in utts))
    out = tmp_path / "espnet"
    cli = f"espnet2.bin.{task}_inference"
    cmd = [
        sys.executable, *(["-c", f"{STAND_INS[stand_in]}; {RUN_INFERENCE.format(task=task)}"] if stand_in else ["-m", cli]),
        "--output_dir", str(out), "--ngpu", "0", "--batch_size", "1",
        "--data_path_and_name_and_type", f"{scp},speech,sound",
        "--asr_train_config", str(files.asr_config), "--asr_model_file", str(files.asr_weights),
        "--beam_size", str(decode.beam_size), "--lm_weight", str(decode.lm_weight), "--nbest", "1",
    ]
    if task == "asr":
        cmd += ["--ctc_weight", str(decode.ctc_weight), "--penalty", str(decode.penalty)]
    if files.lm_config is not None:
        cmd += ["--lm_train_config", str(files.lm_config), "--lm_file", str(files.lm_weights)]
    if decode.transducer_search != "default":  # ESPnet's CLIs take the search's settings from a config file
        key = "transducer_conf" if task == "asr" else "beam_search_config"
        (tmp_path / "decode.yaml").write_text(f"{key}:\n  search_type: {decode.transducer_search}\n")
        cmd += ["--config", str(tmp_path / "decode.yaml")]
    if files.ngram_file is not None and decode.ngram_weight != 0:
        cmd += ["--ngram_file", str(files.ngram_file), "--ngram_weight", str(decode.ngram_weight)]
    # the model's config.yaml paths are relative to the repository root, as in ESPnet's zoo archives
    subprocess.run(cmd, check=True, cwd=PROJECT_ROOT, capture_output=True, env={"OMP_NUM_THREADS": "1", "PATH": ""})
    tokens = {}
    for line in (out / "1best_recog" / "token").read_text().splitlines():
        uid, *toks = line.split()
        tokens[uid] = toks
    return tokens


def _check_parity(model_cfg, data_cfg, decode, tmp_path, stand_in=None, task="asr"):
    utts = load_test_set(data_cfg)
    p = load_pipeline(model_cfg)
    ours = {u.id: p.recognize(read_audio(u.audio, p.sample_rate), decode)[1] for u in utts}
    assert len(ours) == len(utts) and all(len(t) > 0 for t in ours.values())
    assert ours == _espnet_tokens(p.files, utts, decode, tmp_path, stand_in, task)


def test_parity_tiny_model(tiny, tmp_path):
    _check_parity(ModelConfig(name="t", exp_dir=str(tiny["asr"]), lm_exp_dir=str(tiny["lm"])),
                  DataConfig(name="t", dir=str(tiny["data"])),
                  DecodeConfig(beam_size=4, ctc_weight=0.3, lm_weight=0.5, penalty=0.1), tmp_path)


def test_parity_tiny_model_with_ngram(tiny, tmp_path):
    pytest.importorskip("kenlm")
    from tiny_model import build_tiny_ngram

    tokens = load_pipeline(ModelConfig(name="t", exp_dir=str(tiny["asr"]))).token_list
    ngram = build_tiny_ngram(tmp_path / "2gram.arpa", tokens)
    _check_parity(ModelConfig(name="t", exp_dir=str(tiny["asr"]), lm_exp_dir=str(tiny["lm"]), ngram_file=str(ngram)),
                  DataConfig(name="t", dir=str(tiny["data"])),
                  DecodeConfig(beam_size=4, ctc_weight=0.3, lm_weight=0.5, penalty=0.1, ngram_weight=2.0), tmp_path)


def test_parity_default_model(tmp_path):
    from support import compose
    from asr_compress.run import to_config

    cfg = to_config(compose(["data.limit=4"]))
    if not (PROJECT_ROOT / cfg.model.exp_dir).is_dir():
        pytest.fail(f"the shipped default model is missing: {cfg.model.exp_dir}")
    _check_parity(cfg.model, cfg.data, cfg.decode, tmp_path)


@pytest.mark.parametrize("arch", ["e_branchformer", "rnn_decoder", "ctc_only", "espnet_ssl", "s3prl", "transducer"])
def test_parity_other_architectures(arch, tiny, tmp_path):
    # ESPnet's LibriSpeech models beside the Conformer: the E-Branchformer encoder (its strongest
    # recipe), the RNN attention decoder (older recipes), which has no batch_score, so that both
    # ESPnet and asr_compress decode with the non-batch BeamSearch, a CTC-only model, and a model
    # whose frontend is an SSL model trained in ESPnet (ESPnetSSLFrontend, weighted sum of its layers)
    # or S3PRL's HuBERT (S3prlFrontend, S3PRL's featurizer), as ESPnet's LibriSpeech SSL recipes use,
    # and a transducer (librispeech_100's RNN-T recipes), decoded by ESPnet's BeamSearchTransducer
    import tiny_model as tm

    if arch == "s3prl":
        pytest.importorskip("s3prl", reason="the ssl extra (s3prl) is not installed")

    parts = {"e_branchformer": lambda: {"encoder": tm.E_BRANCHFORMER}, "rnn_decoder": lambda: {"decoder": tm.RNN_DECODER},
             "ctc_only": lambda: {"decoder": tm.CTC_ONLY},
             "espnet_ssl": lambda: {"frontend": tm.espnet_ssl_frontend(tm.build_tiny_ssl(tmp_path / "ssl"))},
             "s3prl": lambda: {"frontend": tm.s3prl_frontend(tm.build_tiny_s3prl_hubert(tmp_path / "s3prl" / "hubert.pt"))},
             "transducer": lambda: {"decoder": tm.TRANSDUCER}}
    asr = tm.build_tiny_asr(tmp_path / "exp" / arch, **parts[arch]())
    _check_parity(ModelConfig(name="t", exp_dir=str(asr), lm_exp_dir=str(tiny["lm"])),
                  DataConfig(name="t", dir=str(tiny["data"])),
                  DecodeConfig(beam_size=4, ctc_weight=0.3, lm_weight=0.5, penalty=0.1), tmp_path,
                  stand_in=arch if arch in STAND_INS else None)


def test_parity_transducer_with_a_faster_search(tiny, tmp_path):
    # modified adaptive expansion search (ESPnet's --transducer_conf search_type: maes), which cannot
    # take a Transformer LM: decoded without one
    import tiny_model as tm

    asr = tm.build_tiny_asr(tmp_path / "exp" / "transducer", decoder=tm.TRANSDUCER)
    _check_parity(ModelConfig(name="t", exp_dir=str(asr)), DataConfig(name="t", dir=str(tiny["data"])),
                  DecodeConfig(beam_size=4, lm_weight=0.0, transducer_search="maes"), tmp_path, stand_in="transducer")


@pytest.mark.parametrize("search,lm", [("default", False), ("tsd", True)])
def test_parity_transducer_task(search, lm, tiny, tmp_path):
    # ESPnet's other transducer task (espnet2.bin.asr_transducer_train: its own encoder blocks, RNN
    # decoder, joint network), decoded by espnet2.bin.asr_transducer_inference, with the LSTM LM its
    # search takes (and the fix above) or without an LM
    import tiny_model as tm

    asr = tm.build_tiny_asr_transducer(tmp_path / "exp" / "asr_transducer", seed=3)  # a seed with no empty hypothesis
    lm_dir = str(tm.build_tiny_rnn_lm(tmp_path / "exp" / "rnn_lm")) if lm else None
    _check_parity(ModelConfig(name="t", exp_dir=str(asr), lm_exp_dir=lm_dir), DataConfig(name="t", dir=str(tiny["data"])),
                  DecodeConfig(beam_size=4, lm_weight=0.5 if lm else 0.0, transducer_search=search), tmp_path,
                  stand_in="asr_transducer" if lm else None, task="asr_transducer")
