"""Quantization methods on small real ESPnet components: output error bounds, dtypes, stored size."""
import pytest
import torch

from asr_compress.compress import component_stats, compress_, make_config
from asr_compress.compress.quantize import HalfLinear, WeightOnlyQuantLinear
from asr_compress.errors import CompressionConfigError
from compress_parts import D, run, sqnr

# (method, component, minimum SQNR in dB of the component's entry-method output vs float32).
# Observed on these seeded models: int8_dynamic 40-55, fp16 65-85, bf16 47-66, int8_weight 46-64,
# int4_weight 23-40; bounds sit a few dB below so a real regression (a wrong scale, a lost cast) fails.
BOUNDS = [
    ("int8_dynamic", "encoder", 35), ("int8_dynamic", "decoder", 45), ("int8_dynamic", "ctc", 45),
    ("int8_dynamic", "lm", 40), ("int8_dynamic", "rnn_lm", 40),
    ("fp16", "encoder", 55), ("fp16", "conformer_relpos", 55), ("int8_dynamic", "conformer_relpos", 35), ("fp16", "decoder", 70), ("fp16", "lm", 70), ("fp16", "rnn_lm", 80),
    ("bf16", "encoder", 40), ("bf16", "decoder", 55), ("bf16", "ctc", 55), ("bf16", "lm", 55),
    ("int8_weight", "encoder", 40), ("int8_weight", "decoder", 55), ("int8_weight", "lm", 55),
    ("int8_weight_kernel", "encoder", 35), ("int8_weight_kernel", "decoder", 45), ("int8_weight_kernel", "lm", 45),
    ("int4_weight", "encoder", 18), ("int4_weight", "decoder", 33), ("int4_weight", "lm", 30),
]


@pytest.mark.parametrize("method,component,min_sqnr", BOUNDS)
def test_sqnr_bound_and_float32_interface(make, method, component, min_sqnr):
    ref = run(component, make(component))
    m = make(component)
    config = make_config("int8_weight", group_size=-1, int8pack_kernel=True) if method == "int8_weight_kernel" else make_config(method)
    report = compress_(m, config, component="lm" if component == "rnn_lm" else component)
    out = run(component, m)
    assert out.dtype == torch.float32  # the next component / beam search sees float32
    assert min_sqnr <= sqnr(ref, out) < 120  # < 120: something was actually quantized
    assert report.kernel == ("simulated" if method.endswith("_weight") else "real")


def test_int8_dynamic_uses_pytorch_quantized_linear_and_quarter_size(make):
    m = make("decoder")
    base = component_stats(m, compress_(m, make_config("none"), "decoder"))
    stats = component_stats(m, compress_(m, make_config("int8_dynamic"), "decoder"))
    assert type(m.output_layer).__module__.startswith("torch.ao.nn.quantized.dynamic")
    assert stats["params"] == base["params"]
    # Linear weights go 4 -> 1 byte; embeddings and norms stay float32
    assert 0.3 < stats["size_bytes"] / base["size_bytes"] < 0.4


def test_fp16_halves_size_and_keeps_norms_float32(make):
    m = make("encoder")
    before = component_stats(m, compress_(m, make_config("none"), "encoder"))["size_bytes"]
    stats = component_stats(m, compress_(m, make_config("fp16"), "encoder"))
    assert isinstance(m.encoders[0].feed_forward.w_1, HalfLinear)
    assert m.encoders[0].feed_forward.w_1.weight.dtype == torch.float16
    assert m.after_norm.weight.dtype == torch.float32
    assert 0.5 <= stats["size_bytes"] / before < 0.53


def test_fp16_targets_only_feed_forward(make):
    m = make("encoder")
    compress_(m, make_config("fp16", targets=["PositionwiseFeedForward"]), "encoder")
    assert m.encoders[1].feed_forward_macaron.w_2.weight.dtype == torch.float16
    assert m.encoders[1].self_attn.linear_q.weight.dtype == torch.float32


@pytest.mark.parametrize("bits,symmetric,group_size", [(8, True, 16), (8, False, -1), (4, False, 32), (4, True, 8)])
def test_weight_only_codes_roundtrip_and_error_bound(bits, symmetric, group_size):
    torch.manual_seed(0)
    lin = torch.nn.Linear(40, 12)  # 40 is not a multiple of 16 or 32: exercises the ragged last group
    q = WeightOnlyQuantLinear(lin, bits, group_size, symmetric)
    codes = q.codes()
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if symmetric else (0, 2**bits - 1)
    assert lo <= int(codes.min()) and int(codes.max()) <= hi
    # max error per weight is half a quantization step of its group
    step = q.scale.float().repeat_interleave(q.group_size, dim=1)[:, :40]
    assert torch.all((q.dequantize() - lin.weight).abs() <= step / 2 + 1e-3 * step + 1e-7)
    x = torch.randn(5, 40)
    assert sqnr(lin(x), q(x)) > (30 if bits == 8 else 15)
    assert q.qweight.dtype in (torch.int8, torch.uint8)
    if bits == 4:
        assert q.qweight.numel() == (12 * q.scale.shape[1] * q.group_size + 1) // 2  # two codes per byte


def test_int4_weight_size_is_about_an_eighth(make):
    m = make("ctc")
    before = component_stats(m, compress_(m, make_config("none"), "ctc"))["size_bytes"]
    stats = component_stats(m, compress_(m, make_config("int4_weight", group_size=32), "ctc"))
    # 30x32 weight: 480 bytes of packed codes + float32 scales + uint8 zero points + float32 bias
    assert stats["size_bytes"] == 30 * 32 // 2 + 30 * 4 + 30 + 30 * 4
    assert stats["kernel"] == "simulated" and before == (30 * 32 + 30) * 4


def test_int8_dynamic_lstm_keeps_espnet_batch_scoring(make):
    m = make("rnn_lm")
    ref = run("rnn_lm", make("rnn_lm"))
    stats = component_stats(m, compress_(m, make_config("int8_dynamic"), "lm"))
    assert isinstance(m.rnn, torch.nn.LSTM)  # SequentialRNNLM.batch_score branches on this
    assert type(m.rnn.quantized).__module__.startswith("torch.ao.nn.quantized.dynamic")
    assert not list(m.rnn.parameters())  # no float LSTM weights left behind
    assert stats["params"] == component_stats(make("rnn_lm"), compress_(make("rnn_lm"), make_config("none"), "lm"))["params"]
    states = [None] * 3
    ys = torch.randint(1, 30, (3, 1))
    for _ in range(2):  # second step feeds the per-hypothesis (h, c) states back in
        logp, states = m.batch_score(ys, states, None)
    assert logp.shape == (3, 30) and sqnr(ref, run("rnn_lm", m)) > 40


def test_int8_dynamic_only_on_targets(make):
    m = make("encoder")
    compress_(m, make_config("int8_dynamic", targets=["PositionwiseFeedForward"], ignore=["encoders.1"]), "encoder")
    quantized = sorted(fqn for fqn, mod in m.named_modules() if type(mod).__module__.startswith("torch.ao.nn.quantized.dynamic"))
    assert quantized == [f"encoders.0.{ff}.{w}" for ff in ("feed_forward", "feed_forward_macaron") for w in ("w_1", "w_2")]


def test_int8_dynamic_after_fp16_is_an_error_not_a_silent_noop(make):
    m = make("ctc")
    compress_(m, make_config("fp16"), "ctc")
    with pytest.raises(CompressionConfigError, match=r"^ctc: int8_dynamic targets=\[\] ignore=\[\] select no uncompressed Linear/LSTM"):
        compress_(m, make_config("int8_dynamic"), "ctc")


def test_fp16_depthwise_conv_finishes_on_every_length_with_two_threads():
    # oneDNN's float16 depthwise kernel (AVX512-FP16 CPUs) never finished generating its code for
    # 56, 64, 112 or 128 frames on 2 threads: encoder=fp16 hung on the 31st test utterance.
    # In a subprocess with a deadline, so that a regression fails instead of hanging the suite.
    import subprocess
    import sys

    code = """
import torch
from torch import nn
from asr_compress.compress.quantize import _half_copy
torch.set_num_threads(2)
torch.manual_seed(0)
conv = nn.Conv1d(144, 144, 15, padding=7, groups=144)
half = _half_copy(conv, torch.float16)
for frames in (55, 56, 64, 112, 128):
    x = torch.randn(1, frames, 144).transpose(1, 2)  # a Conformer's layout: transposed, not copied
    with torch.no_grad():
        y, ref = half(x), conv(x)
    assert y.dtype == torch.float32 and y.shape == ref.shape
    assert (y - ref).abs().max() < 1e-2 * ref.abs().max(), frames
assert torch.backends.mkldnn.enabled  # switched off only inside the call
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


@pytest.mark.parametrize("style", ["parametrization", "hook"])
@pytest.mark.parametrize("method", ["fp16", "bf16"])
def test_half_precision_keeps_a_weight_normed_convolution(method, style):
    # weight-normed `weight` is computed, not a parameter (wav2vec2's positional convolution): the
    # half copy must take the effective weight, not its own random init (parametrization) or the
    # value the old hook computed before a checkpoint was loaded into weight_g/weight_v (hook)
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(8, 8, 3, padding=1)
    if style == "parametrization":
        conv = torch.nn.utils.parametrizations.weight_norm(conv)
    else:
        conv = torch.nn.utils.weight_norm(conv)
        with torch.no_grad():  # as loading a checkpoint does: the hook's cached weight is now stale
            conv.weight_v.add_(torch.randn_like(conv.weight_v))
    m = torch.nn.Sequential(conv).eval()
    x = torch.randn(2, 8, 20)
    with torch.no_grad():  # from g and v, not through `m`: its forward would refresh the hook's weight
        weight = conv.weight if style == "parametrization" else torch._weight_norm(conv.weight_v, conv.weight_g, 0)
        ref = torch.nn.functional.conv1d(x, weight, conv.bias, padding=1)
    compress_(m, make_config(method), "encoder")
    with torch.no_grad():
        assert sqnr(ref, m(x)) > (50 if method == "fp16" else 35)


@pytest.mark.parametrize("include_lstm", [True, False])
def test_int8_dynamic_quantizes_the_rnn_decoders_lstm_cells(include_lstm):
    # RNNDecoder (older ESPnet recipes) steps nn.LSTMCell layers, which PyTorch has a dynamic int8 kernel for
    from espnet2.asr.decoder.rnn_decoder import RNNDecoder

    def decoder():
        torch.manual_seed(0)
        return RNNDecoder(vocab_size=30, encoder_output_size=D, hidden_size=D, num_layers=2).eval()

    def step(m):  # the beam search's call: score one prefix against the encoder output
        g = torch.Generator().manual_seed(1)
        x, ys = torch.randn(9, D, generator=g), torch.randint(1, 30, (4,), generator=g)
        with torch.no_grad():
            return m.score(ys, m.init_state(x), x)[0]

    m, ref = decoder(), step(decoder())
    compress_(m, make_config("int8_dynamic", include_lstm=include_lstm), "decoder")
    quantized = [type(cell).__module__.startswith("torch.ao.nn.quantized.dynamic") for cell in m.decoder]
    assert quantized == [include_lstm] * 2
    # observed 82 dB with the cells quantized on this random decoder; a cell left unquantized or
    # float weights lost would show as no change or as noise
    assert sqnr(ref, step(m)) > 30
