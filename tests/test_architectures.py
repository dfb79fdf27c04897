"""Every method on the other architectures of ESPnet's LibriSpeech models: the E-Branchformer encoder
(the strongest recipe, egs2/librispeech/asr1 train_asr_e_branchformer.yaml) and the RNN attention
decoder (older recipes). The Conformer and Transformer parts are covered method by method in
tests/compress; parity with ESPnet's own decoding of these two is in test_parity.py."""
import numpy as np
import pytest
import torch

import tiny_model as tm
from asr_compress.compress import METHOD_CONFIGS, applicable, applicable_methods, make_config
from asr_compress.config import DataConfig, DecodeConfig, ModelConfig
from asr_compress.errors import CompressionConfigError
from asr_compress.evaluate.data import load_test_set, read_audio
from asr_compress.pipeline import load_pipeline

# need calibration audio (distill) or a list of steps (sequence); both run the methods tested here
NEEDS_MORE = {"none", "distill", "sequence"}
ARCHS = {"e_branchformer": {"encoder": tm.E_BRANCHFORMER}, "rnn_decoder": {"decoder": tm.RNN_DECODER}}
DECODE = DecodeConfig(beam_size=3, ctc_weight=0.3, lm_weight=0.0)


@pytest.fixture(scope="module")
def archs(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("archs")
    pipes = {a: load_pipeline(ModelConfig(name=a, exp_dir=str(tm.build_tiny_asr(root / a, **kw))))
             for a, kw in ARCHS.items()}
    utts = load_test_set(DataConfig(name="t", dir=str(tiny["data"]), limit=2))
    audio = [read_audio(u.audio, pipes["e_branchformer"].sample_rate) for u in utts]
    return pipes, audio


def _encoded(p, speech: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        return p.encode(speech)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("component", ["encoder", "ctc", "decoder"])
def test_every_applicable_method_compresses_and_decodes(archs, arch, component):
    pipes, audio = archs
    base = pipes[arch]
    names = applicable_methods(component, list(METHOD_CONFIGS), base.component(component))
    ref = _encoded(base, audio[0])
    for method in [n for n in names if n not in NEEDS_MORE]:
        p = base.copy(cut=[component])
        report = p.compress_(component, make_config(method))
        assert report.notes, (method, "says nothing about what it did")
        for speech in audio:
            assert len(p.recognize(speech, DECODE)[1]) > 0, (component, method)
        if component == "encoder":
            out = _encoded(p, audio[0])
            assert out.shape == ref.shape and out.isfinite().all(), method
            assert not torch.equal(out, ref), (method, "left the encoder's output as it was")
    assert _encoded(base, audio[0]).equal(ref)  # the copies left the loaded model alone


def test_the_rnn_decoder_is_searched_one_hypothesis_at_a_time(archs):
    pipes, _ = archs
    assert type(pipes["rnn_decoder"].build_search(DECODE)).__name__ == "BeamSearch"
    assert type(pipes["e_branchformer"].build_search(DECODE)).__name__ == "BatchBeamSearch"


@pytest.mark.parametrize("method,needle", [
    ("layer_drop", r"^decoder: layer_drop found no layer stack in RNNDecoder; valid: a module with one of encoders"),
    ("prune_structured", r"^decoder: prune_structured found no MultiHeadedAttention, PositionwiseFeedForward or ConvolutionalGatingMLP"),
])
def test_stack_methods_refuse_the_rnn_decoder_naming_what_they_need(archs, method, needle):
    pipes, _ = archs
    dec = pipes["rnn_decoder"].component("decoder")
    assert method not in applicable_methods("decoder", list(METHOD_CONFIGS), dec)
    with pytest.raises(CompressionConfigError, match=needle):
        applicable("decoder", make_config(method), dec)


def test_e_branchformer_structured_pruning_shrinks_attention_both_feed_forwards_and_the_cgmlp(archs):
    pipes, audio = archs
    p = pipes["e_branchformer"].copy(cut=["encoder"])
    p.compress_("encoder", make_config("prune_structured", heads_fraction=0.5, channels_fraction=0.25))
    for layer in p.component("encoder").encoders:
        assert layer.attn.h == 1 and tuple(layer.attn.linear_q.weight.shape) == (16, 32)
        for ff in (layer.feed_forward, layer.feed_forward_macaron):
            assert tuple(ff.w_1.weight.shape) == (36, 32) and tuple(ff.w_2.weight.shape) == (32, 36)
        # and the cgMLP branch: 8 of its 32 gating channels
        assert tuple(layer.cgmlp.channel_proj1[0].weight.shape) == (48, 32)
        assert tuple(layer.cgmlp.channel_proj2.weight.shape) == (32, 24)
    assert len(p.recognize(audio[0], DECODE)[1]) > 0


def test_e_branchformer_layer_drop_keeps_every_other_block(archs):
    pipes, audio = archs
    p = pipes["e_branchformer"].copy(cut=["encoder"])
    first = p.component("encoder").encoders[0]
    p.compress_("encoder", make_config("layer_drop"))
    assert list(p.component("encoder").encoders) == [first]
    assert len(p.recognize(audio[0], DECODE)[1]) > 0


def test_decoding_an_rnn_decoder_model_keeps_espnets_chatter_off_the_console(tiny, tmp_path):
    # ESPnet logs a make_pad_mask tracing hint and numpy warns about its CTC scorer's unread rows,
    # several times per utterance (quiet.quiet_espnet_decoding)
    from support import run_cli, tiny_overrides

    asr = tm.build_tiny_asr(tmp_path / "exp" / "asr_rnn", decoder=tm.RNN_DECODER)
    res = run_cli(tiny_overrides(tiny, f"model.exp_dir={asr}", "eval.flops_utterances=0",
                                 f"hydra.run.dir={tmp_path / 'run'}"), tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "WER" in res.stdout
    console = res.stdout + res.stderr  # Hydra's log handler writes to stdout
    assert "make_pad_mask" not in console and "RuntimeWarning" not in console, console[-2000:]


def test_a_ctc_only_model_decodes_compressed_and_refuses_a_method_for_its_missing_decoder(tiny, tmp_path):
    from asr_compress.errors import AsrCompressError
    from asr_compress.run import run_experiment
    from support import compose, tiny_overrides

    asr = tm.build_tiny_asr(tmp_path / "exp" / "asr_ctc", decoder=tm.CTC_ONLY)
    overrides = tiny_overrides(tiny, f"model.exp_dir={asr}", "eval.flops_utterances=0", "data.limit=2")
    m = run_experiment(compose([*overrides, "encoder=int8_dynamic"]), tmp_path / "run")
    assert set(m["components"]) == {"frontend", "encoder", "ctc", "lm"} and m["time_breakdown_ms"]["decoder"] == 0
    assert m["components"]["encoder"]["kernel"] == "real"
    with pytest.raises(AsrCompressError, match=r"^decoder=int8_dynamic: this model has no decoder "
                                               r"\(present: frontend, encoder, ctc, lm\)"):
        run_experiment(compose([*overrides, "decoder=int8_dynamic"]), tmp_path / "run2")
