import torch

from asr_compress.config import DataConfig, DecodeConfig, EvalConfig
from asr_compress.evaluate.data import load_test_set
from asr_compress.evaluate.decode import PARTS, decode_set


def test_time_breakdown_adds_up_to_the_measured_total(tiny, tiny_pipeline):
    utts = load_test_set(DataConfig(name="t", dir=str(tiny["data"])))
    rows, summary = decode_set(tiny_pipeline, utts, DecodeConfig(beam_size=3), EvalConfig(warmup=1, progress=False))
    for r in rows:
        parts = r["time_breakdown_ms"]
        assert set(parts) == set(PARTS)
        assert all(v >= 0 for v in parts.values())
        # every scorer really ran and was timed
        assert parts["decoder"] > 0 and parts["ctc"] > 0 and parts["lm"] > 0 and parts["encoder"] > 0
        assert abs(sum(parts.values()) - r["latency_ms"]) <= 0.03 * r["latency_ms"]
    assert summary["warmup_utterances"] == 1 and summary["rtf"] > 0


def test_compute_counts_flops_per_part(tiny, tiny_pipeline):
    import torch

    from asr_compress.evaluate.data import read_audio
    from asr_compress.evaluate.decode import count_compute
    from asr_compress.evaluate.timing import Clock

    audio = [read_audio(tiny["data"] / "utt0.flac", 16000)]
    dec = DecodeConfig(beam_size=2)
    c = count_compute(tiny_pipeline, audio, dec, Clock(), 16000)
    assert c["encoder_flops_per_audio_s"] > 0 and c["decoder_flops_per_token"] > 0 and c["lm_flops_per_token"] > 0
    # int8 kernels are invisible to PyTorch's counter; our hook must still count them
    torch.ao.quantization.quantize_dynamic(tiny_pipeline.decoder, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    tiny_pipeline.changed()
    q = count_compute(tiny_pipeline, audio, dec, Clock(), 16000)
    assert q["decoder_flops_per_token"] > 0.5 * c["decoder_flops_per_token"]


def test_flops_of_cpu_scaled_dot_product_attention_are_counted_as_its_matmuls():
    # torch has no FLOP formula for the CPU attention kernel and counted it as 0
    import torch.nn.functional as F

    from asr_compress.evaluate.timing import flop_counter

    q, k, v = (torch.randn(2, 4, 50, 16) for _ in range(3))
    with flop_counter() as fused:
        F.scaled_dot_product_attention(q, k, v)
    with flop_counter() as explicit:
        torch.softmax(q @ k.transpose(-1, -2) / 4, -1) @ v
    assert fused.get_total_flops() == explicit.get_total_flops() == 2 * (2 * 2 * 4 * 50 * 50 * 16)
