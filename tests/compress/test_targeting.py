"""targets / ignore: type names, exact names, re: regexes; ignore wins; ancestors count."""
import pytest
import torch
from torch import nn

from asr_compress.compress.targeting import select
from asr_compress.errors import CompressionConfigError


def names(module, targets=(), ignore=()):
    return [fqn for fqn, _ in select(module, (nn.Linear,), list(targets), list(ignore), "encoder", "test")]


def test_empty_targets_select_every_linear(make):
    m = make("encoder")
    assert names(m) == [fqn for fqn, mod in m.named_modules() if isinstance(mod, nn.Linear)]


def test_type_name_selects_linears_inside_matching_blocks(make):
    m = make("encoder")
    assert names(m, ["PositionwiseFeedForward"]) == [
        f"encoders.{i}.{ff}.{w}" for i in range(2) for ff in ("feed_forward", "feed_forward_macaron") for w in ("w_1", "w_2")
    ]


def test_exact_name_and_regex(make):
    m = make("encoder")
    assert names(m, ["encoders.0.feed_forward.w_1"]) == ["encoders.0.feed_forward.w_1"]
    got = names(m, [r"re:encoders\.1\.self_attn\.linear_[qk]"])
    assert got == ["encoders.1.self_attn.linear_q", "encoders.1.self_attn.linear_k"]
    assert names(m, [r"re:encoders\.1"]) == [n for n in names(m) if n.startswith("encoders.1.")]  # fullmatch on the block, then its children


def test_ignore_wins_over_targets_and_covers_children(make):
    m = make("encoder")
    got = names(m, ["PositionwiseFeedForward"], ["re:.*macaron", "encoders.0"])
    assert got == ["encoders.1.feed_forward.w_1", "encoders.1.feed_forward.w_2"]


def test_invalid_regex_is_an_error(make):
    with pytest.raises(CompressionConfigError, match=r"^encoder: test targets entry 're:\(' is not a valid regex"):
        names(make("encoder"), ["re:("])


class _TorchAttentionBlock(torch.nn.Module):
    """torch's nn.MultiheadAttention, as SSL frontends and other non-ESPnet blocks use it: it reads its
    out_proj's weight in a fused kernel instead of calling it."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.att = torch.nn.MultiheadAttention(16, 2, batch_first=True)
        self.ff = torch.nn.Linear(16, 16)

    def forward(self, x):
        return self.ff(self.att(x, x, x)[0])


@pytest.mark.parametrize("method,params", [
    ("fp16", {}), ("bf16", {}), ("lowrank", {"rank": 2}), ("int8_weight", {"group_size": -1}),
    ("int4_weight", {"group_size": 16}), ("int8_dynamic", {}), ("prune_unstructured", {}), ("prune_nm", {}),
])
def test_methods_keep_torch_multihead_attention_working(method, params):
    from asr_compress.compress import compress_, make_config

    m = _TorchAttentionBlock().eval()
    x = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(1))
    compress_(m, make_config(method, **params), "encoder")
    assert torch.isfinite(m(x)).all()
    if method not in ("prune_unstructured", "prune_nm"):  # replaced layers: out_proj is left as it was
        assert type(m.att.out_proj) is torch.nn.modules.linear.NonDynamicallyQuantizableLinear
        assert m.att.out_proj.weight.dtype == torch.float32
