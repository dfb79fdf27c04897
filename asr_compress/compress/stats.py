"""component_stats: parameter counts, sparsity and the stored size of a (compressed) component.

size_bytes is the component's state as a user would store it, tensor bytes only (no pickle overhead):
  - float weights at their dtype (fp16/bf16: 2 bytes per element);
  - int8 weights as int8 plus their scales/zero points; int4 codes packed two per byte;
  - a weight matrix with zeros stored as a bitmask + nonzero values when that is smaller than dense
    (what a user storing a pruned model would do); biases, norms and buffers dense.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Iterable, Tuple

import torch
from torch import nn

from asr_compress.compress.quantize import Int8PackedLinear, WeightOnlyQuantLinear
from asr_compress.compress.registry import CompressionReport


def tensor_bytes(t: torch.Tensor, nonzero: int = None, element_size: float = None) -> int:
    """Bytes to store `t`: dense, or bitmask + nonzero values for a matrix when that is smaller."""
    es = t.element_size() if element_size is None else element_size
    dense = math.ceil(t.numel() * es)
    if t.dim() < 2:
        return dense
    nnz = int(torch.count_nonzero(t)) if nonzero is None else nonzero
    return min(dense, math.ceil(t.numel() / 8) + math.ceil(nnz * es))


def _quantized_tensor(q: torch.Tensor) -> Tuple[int, int, int]:
    """(params, nonzero, bytes) of a PyTorch quantized weight: int8 codes + scales + zero points."""
    codes = q.int_repr()
    if q.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        zp = q.q_per_channel_zero_points()
        scales = q.q_per_channel_scales()
        shape = [-1] + [1] * (codes.dim() - 1)
        nonzero = int((codes.to(torch.int32) != zp.view(shape).to(torch.int32)).sum())
        extra = scales.numel() * 4 + zp.numel() * 4  # float32 scale, int32 zero point per channel
    else:
        nonzero = int((codes.to(torch.int32) != int(q.q_zero_point())).sum())
        extra = 8
    return codes.numel(), nonzero, tensor_bytes(codes, nonzero) + extra


def _own_state(m: nn.Module) -> Iterable[Tuple[int, int, int]]:
    """(params, nonzero, bytes) for each piece of state `m` holds itself (not its children)."""
    if isinstance(m, WeightOnlyQuantLinear):
        codes = m.codes()
        if not m.symmetric:
            codes = codes - m.zero_point.to(torch.int16)[..., None]
        nonzero = int(torch.count_nonzero(codes.view(m.out_features, -1)[:, : m.in_features]))
        n = m.in_features * m.out_features
        dense = m.qweight.numel() * m.qweight.element_size()  # int8 codes, or int4 packed two per byte
        yield n, nonzero, min(dense, math.ceil(n / 8) + math.ceil(nonzero * m.bits / 8))
        yield 0, 0, m.scale.numel() * m.scale.element_size()
        if not m.symmetric:
            yield 0, 0, m.zero_point.numel() * m.zero_point.element_size()
        if m.bias is not None:
            yield m.bias.numel(), int(torch.count_nonzero(m.bias)), tensor_bytes(m.bias)
        return
    if isinstance(m, Int8PackedLinear):
        nonzero = int(torch.count_nonzero(m.qweight))
        yield m.qweight.numel(), nonzero, tensor_bytes(m.qweight, nonzero)
        yield 0, 0, m.scale.numel() * m.scale.element_size()
        if m.bias is not None:
            yield m.bias.numel(), int(torch.count_nonzero(m.bias)), tensor_bytes(m.bias)
        return
    weight_fn = getattr(m, "weight", None)
    if callable(weight_fn) and not isinstance(weight_fn, nn.Module) and type(m).__module__.startswith("torch.ao.nn.quantized"):
        # dynamic quantized Linear: weight()/bias() unpack the int8 packed params
        yield _quantized_tensor(m.weight())
        b = m.bias()
        if b is not None:
            yield b.numel(), int(torch.count_nonzero(b)), tensor_bytes(b)
        return
    if hasattr(m, "get_weight") and type(m).__module__.startswith("torch.ao.nn.quantized"):
        for q in m.get_weight().values():  # dynamic quantized LSTM
            yield _quantized_tensor(q)
        for b in m.get_bias().values():
            yield b.numel(), int(torch.count_nonzero(b)), tensor_bytes(b)
        return
    for p in m.parameters(recurse=False):
        yield p.numel(), int(torch.count_nonzero(p)), tensor_bytes(p.detach())
    skip = getattr(m, "_non_persistent_buffers_set", set())
    for name, b in m.named_buffers(recurse=False):
        if name not in skip and b is not None:
            yield 0, 0, b.numel() * b.element_size()


def memory_bytes(module: nn.Module) -> int:
    """Bytes the component's weights occupy in memory now (float copies of simulated methods included)."""
    seen, total = set(), 0

    def add(t):
        nonlocal total
        if isinstance(t, torch.Tensor):
            if t.is_quantized:  # a fresh unpacked copy per call: never shared, never deduplicated
                total += t.numel() * t.element_size()
                return
            key = (t.data_ptr(), t.numel())
            if key not in seen:
                seen.add(key)
                total += t.numel() * t.element_size()
        elif isinstance(t, (tuple, list)):
            for x in t:
                add(x)

    for m in module.modules():
        for t in list(m._parameters.values()) + list(m._buffers.values()):
            add(t)
        if type(m).__module__.startswith("torch.ao.nn.quantized") and not list(m.children()):
            add(list(m.state_dict().values()))  # packed int8 weights live outside _parameters
    return total


def component_stats(module: nn.Module, report: CompressionReport) -> Dict[str, Any]:
    """Parameter count, nonzeros, sparsity, stored size and kernel status of a component.

    `params` counts logical weights (a quantized or packed weight counts its elements), so params
    stay comparable across methods; `sparsity` = 1 - nonzero_params / params.
    """
    params = nonzero = size = 0
    with torch.no_grad():
        for m in module.modules():
            for p, nz, nbytes in _own_state(m):
                params, nonzero, size = params + p, nonzero + nz, size + nbytes
    return {
        "method": report.method,
        "params": params,
        "nonzero_params": nonzero,
        "sparsity": 0.0 if params == 0 else 1.0 - nonzero / params,
        "size_bytes": size,
        "weight_memory_bytes": memory_bytes(module),
        "kernel": report.kernel,
        # what the method says it did (layers skipped, steps, a distillation's loss before and after)
        "notes": list(report.notes),
    }
