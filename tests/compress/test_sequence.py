"""Composed recipes: steps applied in order, kernel combined honestly, preset overridable."""
import torch

from asr_compress.compress import METHOD_PRESETS, compress_, make_config
from asr_compress.compress.lowrank import LowRankLinear
from compress_parts import run, sqnr


def test_prune_lowrank_int8_preset_on_decoder(make):
    ref = run("decoder", make("decoder"))
    m = make("decoder")
    config = make_config("prune_lowrank_int8", steps=[
        {"name": "prune_structured", "heads_fraction": 0.5, "channels_fraction": 0.5},
        {"name": "lowrank", "rank": 4, "targets": ["PositionwiseFeedForward"]},
        {"name": "int8_dynamic"},
    ])
    report = compress_(m, config, "decoder")
    assert report.kernel == "real"
    assert report.method["name"] == "prune_lowrank_int8" and len(report.method["steps"]) == 3
    ff = m.decoders[0].feed_forward
    assert isinstance(ff.w_1, LowRankLinear) and ff.w_1.rank == 4
    assert type(ff.w_1.first).__module__.startswith("torch.ao.nn.quantized.dynamic")
    assert m.decoders[0].self_attn.h == 2 and m.decoders[0].self_attn.linear_q.weight().shape == (16, 32)
    assert [n.split(" ")[2] for n in report.notes] == ["prune_structured", "lowrank", "int8_dynamic"]
    # half the heads + rank-4 FF on a random decoder: observed 23.7 dB
    assert 15 < sqnr(ref, run("decoder", m)) < 60
    assert METHOD_PRESETS["prune_lowrank_int8"].steps[0]["heads_fraction"] == 0.25  # the preset itself is untouched


def test_one_simulated_step_makes_the_result_simulated(make):
    m = make("ctc")
    report = compress_(m, {"name": "sequence", "steps": [{"name": "prune_unstructured", "sparsity": 0.5},
                                                          {"name": "int8_dynamic"}]}, "ctc")
    assert report.kernel == "simulated"  # zeros in an int8 matmul: no sparse kernel
    w = m.ctc_lo.weight()
    assert (w.int_repr() == 0).float().mean() >= 0.5


def test_steps_inherit_sequence_targets(make):
    m = make("encoder")
    compress_(m, make_config("sequence", targets=["re:encoders\\.0\\..*"], steps=[{"name": "fp16"}]), "encoder")
    assert m.encoders[0].feed_forward.w_1.weight.dtype == torch.float16
    assert m.encoders[1].feed_forward.w_1.weight.dtype == torch.float32
