"""Pruning: exact sparsity (unstructured, N:M), exact shapes (structured), output error bounds."""
import pytest
import torch

from asr_compress.compress import component_stats, compress_, make_config
from compress_parts import D, run, sqnr


def _linear_weights(m):
    return [mod.weight for mod in m.modules() if isinstance(mod, torch.nn.Linear)]


@pytest.mark.parametrize("scope", ["layer", "global"])
@pytest.mark.parametrize("component", ["decoder", "ctc"])
def test_unstructured_exact_sparsity(make, component, scope):
    m = make(component)
    ref = run(component, make(component))
    report = compress_(m, make_config("prune_unstructured", sparsity=0.3, scope=scope), component)
    weights = _linear_weights(m)
    total = sum(w.numel() for w in weights)
    zeros = sum(int((w == 0).sum()) for w in weights)
    if scope == "layer":
        assert all(int((w == 0).sum()) == round(0.3 * w.numel()) for w in weights)
    assert abs(zeros - round(0.3 * total)) <= len(weights)  # exact up to per-layer rounding
    assert report.kernel == "simulated"
    # 30% of the smallest-magnitude weights: observed 31-36 dB on these models
    assert 25 < sqnr(ref, run(component, m)) < 60


def test_unstructured_global_prunes_layers_unevenly(make):
    m = make("decoder")
    with torch.no_grad():
        m.decoders[0].feed_forward.w_1.weight.mul_(10)  # a layer with large weights loses less under a global threshold
    compress_(m, make_config("prune_unstructured", sparsity=0.5, scope="global"), "decoder")
    w = m.decoders[0].feed_forward.w_1.weight
    assert (w == 0).float().mean() < 0.1


def test_unstructured_stats_sparse_size(make):
    m = make("decoder")
    dense = component_stats(m, compress_(m, make_config("none"), "decoder"))
    stats = component_stats(m, compress_(m, make_config("prune_unstructured", sparsity=0.8), "decoder"))
    assert stats["params"] == dense["params"]
    assert stats["nonzero_params"] < 0.3 * dense["params"]
    # bitmask (1/32 of dense) + 20% nonzero values, plus dense biases/norms/embeddings
    assert stats["size_bytes"] < 0.35 * dense["size_bytes"]
    assert stats["sparsity"] == pytest.approx(1 - stats["nonzero_params"] / stats["params"])


@pytest.mark.parametrize("n,m_", [(2, 4), (1, 4), (4, 8)])
def test_nm_exact_pattern(make, n, m_):
    m = make("lm")
    ref = run("lm", make("lm"))
    compress_(m, make_config("prune_nm", n=n, m=m_), "lm")
    for w in _linear_weights(m):
        groups = (w != 0).view(w.shape[0], -1, m_).sum(-1)
        assert torch.all(groups == n)
    # observed 19.7 dB for 2:4 on the random LM; keeping more keeps more signal
    assert sqnr(ref, run("lm", m)) > {(2, 4): 15, (1, 4): 5, (4, 8): 15}[(n, m_)]


@pytest.mark.parametrize("component", ["encoder", "conformer_relpos", "transformer_encoder", "decoder", "lm"])
def test_structured_exact_shapes(make, component):
    m = make(component)
    ref = run(component, make(component))
    report = compress_(m, make_config("prune_structured", heads_fraction=0.5, channels_fraction=0.25),
                       "lm" if component == "lm" else "encoder" if "encoder" in component else component)
    assert report.kernel == "real"
    layers = m.encoder.encoders if component == "lm" else m.decoders if component == "decoder" else m.encoders
    for layer in layers:
        atts = [layer.self_attn] + ([layer.src_attn] if component == "decoder" else [])
        for att in atts:
            assert att.h == 2 and att.d_k == D // 4
            assert tuple(att.linear_q.weight.shape) == (16, D)
            assert tuple(att.linear_v.weight.shape) == (16, D)
            assert tuple(att.linear_out.weight.shape) == (D, 16)
            if hasattr(att, "pos_bias_u"):
                assert tuple(att.pos_bias_u.shape) == (2, D // 4)
                assert tuple(att.linear_pos.weight.shape) == (16, D)
        assert tuple(layer.feed_forward.w_1.weight.shape) == (48, D)
        assert tuple(layer.feed_forward.w_2.weight.shape) == (D, 48)
    out = run(component, m)
    assert out.shape == ref.shape
    # half the heads of a random model: observed 9-44 dB; a broken head slicing gives ~0 dB
    assert sqnr(ref, out) > 6


def test_structured_fewer_params_than_dense(make):
    m = make("decoder")
    dense = component_stats(m, compress_(m, make_config("none"), "decoder"))["params"]
    pruned = component_stats(m, compress_(m, make_config("prune_structured"), "decoder"))["params"]
    # 2 layers x (self+src attn 1/4 of 4*32*32, FF 16 of 64 channels)
    assert dense - pruned == 2 * (2 * (4 * 8 * D + 8 * 3) + 16 * (2 * D + 1))


def test_structured_keeps_at_least_one_head(make):
    m = make("lm")
    compress_(m, make_config("prune_structured", heads_fraction=0.99, channels_fraction=0.99), "lm")
    assert m.encoder.encoders[0].self_attn.h == 1
    assert m.encoder.encoders[0].feed_forward.w_1.out_features == 1
    run("lm", m)


@pytest.mark.parametrize("component", ["e_branchformer", "branchformer"])
def test_structured_shrinks_the_cgmlp_branch(make, component):
    # the cgMLP branch is the largest block of an E-Branchformer or Branchformer layer (Branchformer
    # has no feed-forward at all): channels_fraction removes its gating channels, each one a row in
    # both halves of channel_proj1, a LayerNorm entry, a depthwise-conv channel, a row and column of
    # the linear after the conv, and a column of channel_proj2
    m = make(component)
    ref = run(component, make(component))
    low = [3, 7, 11, 20, 21, 25, 30, 31]  # 8 of 32 gating channels: made the least important of layer 0
    with torch.no_grad():
        m.encoders[0].cgmlp.channel_proj2.weight[:, low] = 0
    report = compress_(m, make_config("prune_structured", heads_fraction=0.5, channels_fraction=0.25), "encoder")
    assert "16 cgMLP channels" in report.notes[0] and report.kernel == "real"
    for layer in m.encoders:
        cg = layer.cgmlp
        assert tuple(cg.channel_proj1[0].weight.shape) == (48, D) and tuple(cg.channel_proj1[0].bias.shape) == (48,)
        assert tuple(cg.channel_proj2.weight.shape) == (D, 24)
        conv = cg.csgu.conv
        assert conv.in_channels == conv.out_channels == conv.groups == 24 and tuple(conv.weight.shape) == (24, 1, 7)
        assert tuple(cg.csgu.norm.weight.shape) == (24,) and tuple(cg.csgu.norm.normalized_shape) == (24,)
        assert tuple(cg.csgu.linear.weight.shape) == (24, 24)
        assert layer.attn.h == 2
    assert torch.count_nonzero(m.encoders[0].cgmlp.channel_proj2.weight.abs().sum(0)) == 24  # the zeroed ones went
    out = run(component, m)
    assert out.shape == ref.shape and out.isfinite().all()
    # half the heads and a quarter of the cgMLP of a random model: observed 9.4 and 15.8 dB
    assert sqnr(ref, out) > 5


def test_a_pruned_cgmlp_computes_the_kept_channels_of_the_original():
    # the pruned branch against the original's arithmetic restricted to the kept channels: a value
    # half sliced out of step with its gate half still gives 24 dB against the unpruned branch, so
    # only an exact comparison tells it
    import torch.nn.functional as F
    from espnet2.asr.layers.cgmlp import ConvolutionalGatingMLP

    torch.manual_seed(0)
    cg = ConvolutionalGatingMLP(size=D, linear_units=64, kernel_size=5, dropout_rate=0.0,
                                use_linear_after_conv=True, gate_activation="tanh").eval()
    drop = [0, 5, 6, 17, 18, 19, 28, 31]
    with torch.no_grad():
        cg.channel_proj2.weight[:, drop] = 0  # the least important: these 8 of 32 go
    keep = torch.tensor([i for i in range(32) if i not in drop])
    x = torch.randn(2, 11, D)
    with torch.no_grad():
        h = cg.channel_proj1(x)
        x_r, x_g = h[..., keep], h[..., 32 + keep]
        norm, conv, lin = cg.csgu.norm, cg.csgu.conv, cg.csgu.linear
        x_g = F.layer_norm(x_g, (len(keep),), norm.weight[keep], norm.bias[keep], norm.eps)
        x_g = F.conv1d(x_g.transpose(1, 2), conv.weight[keep], conv.bias[keep], padding=2, groups=len(keep)).transpose(1, 2)
        x_g = F.linear(x_g, lin.weight[keep][:, keep], lin.bias[keep])
        expected = F.linear(x_r * torch.tanh(x_g), cg.channel_proj2.weight[:, keep], cg.channel_proj2.bias)
        compress_(cg, make_config("prune_structured", channels_fraction=0.25), "encoder")
        assert torch.allclose(cg(x, None), expected, atol=1e-6)


def test_every_method_runs_on_a_branchformer_encoder(make):
    # the Branchformer (attention beside a cgMLP branch, no feed-forward): each method's output stays
    # finite and of the same shape, and each changes it (E-Branchformer: tests/test_architectures.py)
    from asr_compress.compress import METHOD_CONFIGS, applicable_methods

    ref = run("branchformer", make("branchformer"))
    names = [n for n in applicable_methods("encoder", list(METHOD_CONFIGS), make("branchformer"))
             if n not in ("none", "distill", "sequence")]
    assert {"int8_dynamic", "fp16", "prune_structured", "lowrank", "layer_drop"} <= set(names)
    for name in names:
        m = make("branchformer")
        compress_(m, make_config(name), "encoder")
        out = run("branchformer", m)
        assert out.shape == ref.shape and out.isfinite().all() and not torch.equal(out, ref), name


@pytest.mark.parametrize("simplified", [False, True])
def test_heads_of_the_transducer_task_attention_are_removed_exactly(simplified):
    # espnet2/asr_transducer's RelPositionMultiHeadedAttention is not ESPnet's MultiHeadedAttention:
    # `num_heads` for `h`, and in the simplified score one linear_pos row per head. A head that adds
    # nothing (its rows and output columns zero) is the one removed, and the output stays the same
    from espnet2.asr_transducer.encoder.modules.attention import RelPositionMultiHeadedAttention

    torch.manual_seed(0)
    att = RelPositionMultiHeadedAttention(4, 32, simplified_attention_score=simplified).eval()
    head = slice(8, 16)  # head 1 of 4, d_k 8
    with torch.no_grad():
        for lin in (att.linear_q, att.linear_k, att.linear_v):
            lin.weight[head] = 0
        att.linear_out.weight[:, head] = 0
    x, pos = torch.randn(2, 7, 32), torch.randn(2, 13, 32)
    mask = torch.zeros(2, 7, dtype=torch.bool)
    with torch.no_grad():
        expected = att(x, x, x, pos, mask)
        report = compress_(att, make_config("prune_structured", heads_fraction=0.25), "encoder")
        out = att(x, x, x, pos, mask)
    assert report.notes[0].startswith("removed 1 attention heads") and att.num_heads == 3
    assert att.linear_pos.out_features == (3 if simplified else 24)
    assert torch.allclose(out, expected, atol=1e-5)
