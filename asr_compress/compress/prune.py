"""Pruning: unstructured magnitude, N:M semi-structured (both masks on dense weights: simulated),
and structured removal of attention heads, feed-forward channels and cgMLP gating channels (physically smaller: real)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import torch
from torch import nn

from asr_compress.compress.registry import (
    NO_HEADS,
    STACK_COMPONENTS,
    WEIGHT_COMPONENTS,
    CompressionReport,
    MethodConfig,
    invalid,
    register_method,
)
from asr_compress.compress.targeting import describe, is_kind, nothing_selected, select
from asr_compress.errors import CompressionConfigError

SCOPES = ("layer", "global")


def _linears(module, config, component) -> List[Tuple[str, nn.Linear]]:
    selected = select(module, (nn.Linear,), config.targets, config.ignore, component, config.name)
    if not selected:
        raise nothing_selected(component, config, "float Linear",
                               "patterns covering at least one float Linear (prune before quantizing)")
    return selected


def _zero_smallest(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean keep-mask with exactly `k` False entries at the smallest scores (ties broken by index)."""
    keep = torch.ones(scores.numel(), dtype=torch.bool)
    if k > 0:
        keep[torch.argsort(scores.flatten(), stable=True)[:k]] = False
    return keep.view_as(scores)


# ---------------------------------------------------------------- unstructured magnitude
@dataclass
class PruneUnstructuredConfig(MethodConfig):
    name: str = "prune_unstructured"
    # fraction of the targeted weights set to zero; 0.5 is usually safe for ASR Linear layers
    sparsity: float = 0.5
    # "layer": every weight matrix loses the same fraction; "global": one magnitude threshold over
    # all targeted matrices, so robust layers give up more than sensitive ones
    scope: str = "layer"

    def validate(self) -> None:
        super().validate()
        if not (isinstance(self.sparsity, (int, float)) and 0.0 <= self.sparsity < 1.0):
            raise invalid(self, "sparsity", self.sparsity, "0 <= sparsity < 1")
        if self.scope not in SCOPES:
            raise invalid(self, "scope", self.scope, f"one of {', '.join(SCOPES)}")


@register_method(PruneUnstructuredConfig, components=WEIGHT_COMPONENTS, check=_linears)
def _prune_unstructured(module, config: PruneUnstructuredConfig, component: str) -> CompressionReport:
    selected = _linears(module, config, component)
    with torch.no_grad():
        if config.scope == "layer":
            for _, m in selected:
                k = round(config.sparsity * m.weight.numel())
                m.weight.mul_(_zero_smallest(m.weight.abs(), k))
        else:
            scores = torch.cat([m.weight.abs().flatten() for _, m in selected])
            keep = _zero_smallest(scores, round(config.sparsity * scores.numel()))
            for _, m in selected:
                n = m.weight.numel()
                m.weight.mul_(keep[:n].view_as(m.weight))
                keep = keep[n:]
    return CompressionReport(
        method={}, kernel="simulated",
        notes=[f"{config.scope} magnitude pruning to {config.sparsity:.0%} on {describe(selected)}; "
               "zeros in dense weights (no sparse CPU kernel used: no speedup)"],
    )


# ---------------------------------------------------------------- N:M
@dataclass
class PruneNMConfig(MethodConfig):
    name: str = "prune_nm"
    # weights kept in every group of m consecutive input weights; 2:4 is the pattern GPUs accelerate
    n: int = 2
    # group length along the input dimension
    m: int = 4

    def validate(self) -> None:
        super().validate()
        if not (isinstance(self.m, int) and self.m >= 2):
            raise invalid(self, "m", self.m, "an integer >= 2")
        if not (isinstance(self.n, int) and 1 <= self.n < self.m):
            raise invalid(self, "n", self.n, f"1 <= n < m (m={self.m})")


def _nm_targets(module, config: PruneNMConfig, component: str):
    """(fqn, Linear) whose input size is a multiple of m, and the names of the others."""
    selected = _linears(module, config, component)
    fits = [(fqn, lin) for fqn, lin in selected if lin.in_features % config.m == 0]
    if not fits:
        raise CompressionConfigError(
            f"{component}: prune_nm m={config.m} divides the input size of no targeted Linear; "
            "valid: an m that divides the layers' in_features (e.g. 4)"
        )
    return fits, [fqn for fqn, lin in selected if lin.in_features % config.m]


@register_method(PruneNMConfig, components=WEIGHT_COMPONENTS, check=_nm_targets)
def _prune_nm(module, config: PruneNMConfig, component: str) -> CompressionReport:
    done, skipped = _nm_targets(module, config, component)
    with torch.no_grad():
        for fqn, lin in done:
            out_f, in_f = lin.weight.shape
            groups = lin.weight.abs().view(out_f, in_f // config.m, config.m)
            drop = torch.argsort(groups, dim=-1, stable=True)[..., : config.m - config.n]
            mask = torch.ones_like(groups, dtype=torch.bool).scatter_(-1, drop, False)
            lin.weight.mul_(mask.view(out_f, in_f))
    notes = [f"{config.n}:{config.m} pruning on {describe(done)}; zeros in dense weights (no CPU kernel: no speedup)"]
    if skipped:
        notes.append(f"skipped {len(skipped)} Linear whose in_features is not a multiple of {config.m}: {skipped}")
    return CompressionReport(method={}, kernel="simulated", notes=notes)


# ---------------------------------------------------------------- structured: heads and channels
@dataclass
class PruneStructuredConfig(MethodConfig):
    name: str = "prune_structured"
    # fraction of attention heads removed per attention module (at least one head always stays)
    heads_fraction: float = 0.25
    # fraction of hidden channels removed per feed-forward block and per cgMLP branch (the gating
    # channels of Branchformer/E-Branchformer layers); at least one stays
    channels_fraction: float = 0.25

    def validate(self) -> None:
        super().validate()
        for param in ("heads_fraction", "channels_fraction"):
            value = getattr(self, param)
            if not (isinstance(value, (int, float)) and 0.0 <= value < 1.0):
                raise invalid(self, param, value, f"0 <= {param} < 1")


def _rows(lin: nn.Linear, idx: torch.Tensor) -> None:
    _take(lin, "weight", idx)
    if lin.bias is not None:
        _take(lin, "bias", idx)
    lin.out_features = len(idx)


def _cols(lin: nn.Linear, idx: torch.Tensor) -> None:
    lin.weight = nn.Parameter(lin.weight.data[:, idx].clone())
    lin.in_features = len(idx)


def _take(module: nn.Module, name: str, idx: torch.Tensor) -> None:
    """Keep entries `idx` (first dimension) of the parameter `name`."""
    setattr(module, name, nn.Parameter(getattr(module, name).data[idx].clone()))


def _n_removed(n: int, fraction: float) -> int:
    """How many of `n` heads or channels `fraction` removes; at least one always stays."""
    return min(round(n * fraction), n - 1)


def _kept(score: torch.Tensor, n_remove: int) -> torch.Tensor:
    """Indices of all but the `n_remove` lowest scores, in their original order (ties by index)."""
    return torch.sort(torch.argsort(score, descending=True, stable=True)[: len(score) - n_remove]).values


def _is_attention(m) -> bool:
    """ESPnet's MultiHeadedAttention and its RelPosition variants, and the transducer task's own
    RelPositionMultiHeadedAttention (espnet2/asr_transducer, not a subclass of it), with float projections."""
    return ((is_kind(m, "MultiHeadedAttention") or is_kind(m, "RelPositionMultiHeadedAttention"))
            and isinstance(getattr(m, "linear_q", None), nn.Linear))


def _prune_heads(att: nn.Module, fraction: float) -> int:
    """Remove the least important heads of an ESPnet MultiHeadedAttention (or RelPosition variant).

    Importance of a head: squared norm of its rows in linear_q/k/v and its columns in linear_out.
    ESPnet reshapes with `.view(batch, -1, self.h, self.d_k)` (the transducer task's attention with
    `self.num_heads`), so shrinking the projections and setting the head count is all the attention
    needs; d_k (and the 1/sqrt(d_k) scale) is unchanged.
    """
    heads = "h" if hasattr(att, "h") else "num_heads"
    h, d_k = getattr(att, heads), att.d_k
    n_remove = _n_removed(h, fraction)
    if n_remove <= 0:
        return 0
    per_head = lambda w: w.view(h, d_k, -1).pow(2).sum((1, 2))  # noqa: E731
    score = (per_head(att.linear_q.weight) + per_head(att.linear_k.weight) + per_head(att.linear_v.weight)
             + per_head(att.linear_out.weight.t()))
    keep_heads = _kept(score, n_remove)
    idx = (keep_heads[:, None] * d_k + torch.arange(d_k)).flatten()
    with torch.no_grad():
        for lin in (att.linear_q, att.linear_k, att.linear_v):
            _rows(lin, idx)
        _cols(att.linear_out, idx)
        if hasattr(att, "linear_pos"):  # one row per head in the transducer task's simplified score
            _rows(att.linear_pos, keep_heads if att.linear_pos.out_features == h else idx)
        for bias in ("pos_bias_u", "pos_bias_v"):
            if hasattr(att, bias):
                _take(att, bias, keep_heads)
    setattr(att, heads, len(keep_heads))
    return n_remove


def _prune_channels(ff: nn.Module, fraction: float) -> int:
    """Remove the least important hidden channels of an ESPnet PositionwiseFeedForward (w_1 -> act -> w_2).

    Importance of a channel: |row of w_1| * |column of w_2|.
    """
    n_remove = _n_removed(ff.w_1.out_features, fraction)
    if n_remove <= 0:
        return 0
    idx = _kept(ff.w_1.weight.norm(dim=1) * ff.w_2.weight.norm(dim=0), n_remove)
    with torch.no_grad():
        _rows(ff.w_1, idx)
        _cols(ff.w_2, idx)
    return n_remove


def _prune_gating(cg: nn.Module, fraction: float) -> int:
    """Remove the least important gating channels of an ESPnet ConvolutionalGatingMLP (the cgMLP
    branch of Branchformer and E-Branchformer layers).

    channel_proj1 makes 2n channels, which the gating unit splits into a value half x_r and a gate
    half x_g; channel i of the output is x_r[i] * act(linear(conv(norm(x_g)))[i]), and channel_proj2
    reads it. Removing channel i takes rows i and n+i of channel_proj1, entry i of the gate's
    LayerNorm, channel i of the depthwise convolution, row and column i of the optional linear after
    it, and column i of channel_proj2. The LayerNorm then normalises over the kept channels only,
    which the WER measures like any other cut. Importance of a channel: |value row| * |column of
    channel_proj2| * (|conv weights| * |LayerNorm gain| + |conv bias|), the size of what it passes on.
    """
    proj1, csgu, proj2 = cg.channel_proj1[0], cg.csgu, cg.channel_proj2
    n = proj2.in_features
    n_remove = _n_removed(n, fraction)
    if n_remove <= 0:
        return 0
    conv = csgu.conv
    gate = conv.weight.flatten(1).norm(dim=1) * csgu.norm.weight.abs() + (conv.bias.abs() if conv.bias is not None else 0)
    score = proj1.weight[:n].norm(dim=1) * proj2.weight.norm(dim=0) * gate
    idx = _kept(score, n_remove)
    with torch.no_grad():
        _rows(proj1, torch.cat([idx, idx + n]))
        _cols(proj2, idx)
        _take(csgu.norm, "weight", idx)
        _take(csgu.norm, "bias", idx)
        csgu.norm.normalized_shape = (len(idx),)
        _take(conv, "weight", idx)
        if conv.bias is not None:
            _take(conv, "bias", idx)
        conv.in_channels = conv.out_channels = conv.groups = len(idx)
        if csgu.linear is not None:
            _rows(csgu.linear, idx)
            _cols(csgu.linear, idx)
    return n_remove


def _structured_targets(module, config: PruneStructuredConfig, component: str):
    def kind(m) -> bool:
        return _is_attention(m) or (
            is_kind(m, "PositionwiseFeedForward") and isinstance(getattr(m, "w_1", None), nn.Linear)) or (
            is_kind(m, "ConvolutionalGatingMLP") and isinstance(getattr(m, "channel_proj2", None), nn.Linear))

    selected = select(module, kind, config.targets, config.ignore, component, config.name)
    if not selected:
        raise CompressionConfigError(
            f"{component}: prune_structured found no MultiHeadedAttention, PositionwiseFeedForward or "
            f"ConvolutionalGatingMLP (with float Linear weights) under targets={config.targets} ignore={config.ignore}; "
            "valid: an ESPnet transformer/conformer/branchformer stack, pruned before any quantization"
        )
    return selected


@register_method(PruneStructuredConfig, components=STACK_COMPONENTS, reasons=NO_HEADS, check=_structured_targets)
def _prune_structured(module, config: PruneStructuredConfig, component: str) -> CompressionReport:
    selected = _structured_targets(module, config, component)
    heads = channels = gating = 0
    for _, m in selected:
        if _is_attention(m):
            heads += _prune_heads(m, config.heads_fraction)
        elif is_kind(m, "ConvolutionalGatingMLP"):
            gating += _prune_gating(m, config.channels_fraction)
        else:
            channels += _prune_channels(m, config.channels_fraction)
    cgmlp = f", {gating} cgMLP channels" if any(is_kind(m, "ConvolutionalGatingMLP") for _, m in selected) else ""
    return CompressionReport(
        method={}, kernel="real",
        notes=[f"removed {heads} attention heads, {channels} feed-forward channels{cgmlp} in {describe(selected)}; "
               "weights physically smaller"],
    )
