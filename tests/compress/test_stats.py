"""component_stats: stored size as a user would store it, exact on the 30x32 CTC layer (960 weights + 30 bias)."""
import pytest

from asr_compress.compress import compress_, component_stats, make_config

W, B = 30 * 32, 30


@pytest.mark.parametrize("method,params,size", [
    ("none", {}, (W + B) * 4),
    ("fp16", {}, (W + B) * 2),
    # int8 codes (dense: bitmask would not be smaller) + float32 scale and int32 zero point per row + fp32 bias
    ("int8_dynamic", {}, W + B * 4 + B * 4 + B * 4),
    # int8 weight-only, one group per row, symmetric: codes + float32 scale per row + bias
    ("int8_weight", {"group_size": -1}, W + B * 4 + B * 4),
    # int8 through the private int8pack kernel: codes + bf16 scale per row + fp32 bias
    ("int8_weight", {"group_size": -1, "int8pack_kernel": True}, W + B * 2 + B * 4),
    # half the weights zero: bitmask (1 bit each) + nonzero float32 values, bias dense
    ("prune_unstructured", {"sparsity": 0.5}, W // 8 + (W // 2) * 4 + B * 4),
])
def test_size_bytes_exact(make, method, params, size):
    m = make("ctc")
    stats = component_stats(m, compress_(m, make_config(method, **params), "ctc"))
    assert stats["size_bytes"] == size
    assert stats["params"] == W + B


def test_kernel_and_sparsity_reported(make):
    m = make("ctc")
    stats = component_stats(m, compress_(m, make_config("prune_nm"), "ctc"))
    assert stats["kernel"] == "simulated"
    assert stats["nonzero_params"] == W // 2 + B
    assert stats["sparsity"] == pytest.approx((W // 2) / (W + B))


def test_frontend_has_no_parameters(make):
    m = make("frontend")
    stats = component_stats(m, compress_(m, make_config("none"), "frontend"))
    assert stats["params"] == 0 and stats["sparsity"] == 0.0 and stats["kernel"] == "none"


def test_weight_memory_shows_real_and_simulated_savings_honestly():
    import torch

    from asr_compress.compress import CompressionReport, compress_, component_stats, make_config

    def fresh():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64))

    dense = component_stats(fresh(), CompressionReport(method={"name": "none"}))["weight_memory_bytes"]
    assert dense == 2 * (64 * 64 + 64) * 4
    m = fresh()
    int8 = component_stats(m, compress_(m, make_config("int8_dynamic"), "decoder"))["weight_memory_bytes"]
    assert int8 == 2 * (64 * 64 * 1 + 64 * 4)  # int8 weights, float biases
    m = fresh()
    sim = component_stats(m, compress_(m, make_config("int8_weight"), "decoder"))
    assert sim["kernel"] == "simulated" and sim["weight_memory_bytes"] >= dense > sim["size_bytes"]
