"""Quantization: int8_dynamic (PyTorch kernels), fp16/bf16 casts, int8/int4 weight-only (simulated)."""
from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from asr_compress.compress.registry import (
    WEIGHT_COMPONENTS,
    CompressionReport,
    MethodConfig,
    invalid,
    register_method,
)
from asr_compress.compress.targeting import (
    describe,
    nothing_selected,
    select,
    reroute,
    set_submodule,
    swappable,
    weight_norm_hooks,
)
from asr_compress.errors import CompressionConfigError


def _none_selected(component: str, config: MethodConfig, kinds: str) -> CompressionConfigError:
    return nothing_selected(component, config, f"uncompressed {kinds}", f"patterns covering at least one float "
                            f"{kinds} (quantize after pruning/low-rank, not after a cast)")


# ---------------------------------------------------------------- int8 dynamic (real kernel)
@dataclass
class Int8DynamicConfig(MethodConfig):
    name: str = "int8_dynamic"
    # one scale per output row keeps accuracy close to fp32 at the same int8 kernel speed
    per_channel: bool = True
    # LSTM weights too (SequentialRNNLM's nn.LSTM, RNNDecoder's nn.LSTMCell): PyTorch has dynamic
    # int8 kernels for both
    include_lstm: bool = True


def _int8_targets(module: nn.Module, config: Int8DynamicConfig, component: str):
    kinds = (nn.Linear, nn.LSTM, nn.LSTMCell) if config.include_lstm else (nn.Linear,)
    # exact types: quantize_dynamic swaps only these, and would silently leave a subclass
    # (HalfLinear from fp16, an already quantized LSTM holder) as it is
    selected = swappable(module, select(module, lambda m: type(m) in kinds, config.targets, config.ignore, component,
                                        config.name))
    if not selected:
        raise _none_selected(component, config, "Linear/LSTM")
    if any(fqn == "" for fqn, _ in selected):
        raise CompressionConfigError(f"{component}: int8_dynamic cannot swap the component itself; pass its parent")
    return selected


@register_method(Int8DynamicConfig, components=WEIGHT_COMPONENTS, check=_int8_targets)
def _int8_dynamic(module: nn.Module, config: Int8DynamicConfig, component: str) -> CompressionReport:
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

    selected = _int8_targets(module, config, component)
    linear_qconfig = per_channel_dynamic_qconfig if config.per_channel else default_dynamic_qconfig
    spec = {fqn: (linear_qconfig if isinstance(m, nn.Linear) else default_dynamic_qconfig) for fqn, m in selected}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(module, spec, dtype=torch.qint8, inplace=True)
    for fqn, m in selected:
        if isinstance(m, nn.LSTM):
            set_submodule(module, fqn, QuantizedLSTMAsLSTM(module.get_submodule(fqn)))
    return CompressionReport(
        method={}, kernel="real",
        notes=[f"int8 dynamic ({'per-channel' if config.per_channel else 'per-tensor'}) on {describe(selected)}",
               *reroute(module, [fqn for fqn, _ in selected])],
    )


class QuantizedLSTMAsLSTM(nn.LSTM):
    """PyTorch's dynamic int8 LSTM, seen as an nn.LSTM.

    ESPnet's SequentialRNNLM.batch_score branches on isinstance(self.rnn, nn.LSTM) to batch the
    (h, c) states; the quantized LSTM is not an nn.LSTM subclass, so batch beam search would
    fail. This holder passes that check and forwards to the quantized module (no float weights).
    """

    def __init__(self, quantized: nn.Module):
        nn.Module.__init__(self)  # skip nn.LSTM's float weight allocation
        self._flat_weights_names, self._flat_weights, self._all_weights = [], [], []
        for attr in ("mode", "input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
                     "bidirectional", "proj_size"):
            setattr(self, attr, getattr(quantized, attr, 0))
        self.quantized = quantized

    def forward(self, input, hx=None):
        return self.quantized(input, hx)

    def _apply(self, fn, recurse=True):
        return nn.Module._apply(self, fn, recurse)  # nn.LSTM's version rebuilds float flat weights

    def flatten_parameters(self) -> None:
        pass

    def extra_repr(self) -> str:
        return ""


# ---------------------------------------------------------------- fp16 / bf16 casts (real)
class _CastIO:
    """Mixin: compute in the weight dtype, hand float32 back so neighbours (softmax, LayerNorm,
    the next component, beam search) keep the dtype they expect."""

    def _cast_in(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.weight.dtype) if x.is_floating_point() else x


class HalfLinear(_CastIO, nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self._cast_in(x), self.weight, self.bias).to(x.dtype)


def _onednn_may_hang(conv: nn.Module, x: torch.Tensor) -> bool:
    """True for a float16 grouped (depthwise) convolution on CPU.

    On CPUs with AVX512-FP16 (Intel Sapphire Rapids and later) PyTorch 2.12 sends it to oneDNN's
    brdgmm depthwise kernel, whose just-in-time code generation never finishes for some input
    lengths when more than one thread runs: a Conformer's Conv1d(144, 144, 15, groups=144) in
    float16 on 56, 64, 112 or 128 frames, 2 threads, stuck for minutes in
    `jit_brdgmm_kernel_base_t::generate` (found here: `encoder=fp16` stopped at the 31st test
    utterance); 55, 60, 72 or 100 frames, one thread, bfloat16 or float32 all pass.
    Without oneDNN, ATen's own half-precision convolution runs, which is what CPUs without
    AVX512-FP16 (AMD EPYC, older Xeons) run anyway: the same kernel on every host.
    """
    return conv.groups > 1 and x.dtype == torch.float16 and x.device.type == "cpu"


@contextlib.contextmanager
def _without_onednn():
    # only the switch itself: torch.backends.mkldnn.flags() also resets TF32 and precision flags,
    # and warns about Intel GPUs on every machine
    old = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = old


class _HalfConv(_CastIO):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self._cast_in(x)
        with _without_onednn() if _onednn_may_hang(self, h) else contextlib.nullcontext():
            return self._conv_forward(h, self.weight, self.bias).to(x.dtype)


class HalfConv1d(_HalfConv, nn.Conv1d):
    pass


class HalfConv2d(_HalfConv, nn.Conv2d):
    pass


class HalfEmbedding(nn.Embedding):
    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return super().forward(ids).float()


def _effective(m: nn.Module, name: str):
    """The tensor `m` computes with, not the parameter it stores. Under weight normalisation (the
    positional convolution of wav2vec2 and HuBERT) `weight` is derived: a parametrization computes it
    on access; the older `torch.nn.utils.weight_norm` hook computes it before each forward, so the
    attribute is stale after a checkpoint was loaded into weight_g/weight_v, and is computed here."""
    for hook in weight_norm_hooks(m):
        if hook.name == name:
            return hook.compute_weight(m)
    return getattr(m, name, None)


def _half_copy(m: nn.Module, dtype: torch.dtype) -> nn.Module:
    if isinstance(m, nn.Linear):
        new = HalfLinear(m.in_features, m.out_features, bias=m.bias is not None, dtype=dtype)
    elif isinstance(m, (nn.Conv1d, nn.Conv2d)):
        cls = HalfConv1d if isinstance(m, nn.Conv1d) else HalfConv2d
        new = cls(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding,
                  dilation=m.dilation, groups=m.groups, bias=m.bias is not None,
                  padding_mode=m.padding_mode, dtype=dtype)
    else:  # nn.Embedding
        new = HalfEmbedding(m.num_embeddings, m.embedding_dim, padding_idx=m.padding_idx, dtype=dtype)
    with torch.no_grad():
        for pname in ("weight", "bias"):
            value = _effective(m, pname)
            if value is not None:
                getattr(new, pname).copy_(value.to(dtype))
    new.train(m.training)
    return new


@dataclass
class Fp16Config(MethodConfig):
    name: str = "fp16"
    # Linear, Conv1d/2d and Embedding weights and matmuls in half precision; softmax, LayerNorm and
    # every module's output stay float32 (the cast is undone at each leaf's output)
    include_conv: bool = True

    dtype = torch.float16


@dataclass
class Bf16Config(Fp16Config):
    name: str = "bf16"

    dtype = torch.bfloat16


def _cast_targets(module: nn.Module, config: Fp16Config, component: str):
    kinds = (nn.Linear, nn.Embedding) + ((nn.Conv1d, nn.Conv2d) if config.include_conv else ())
    selected = swappable(module, select(module, kinds, config.targets, config.ignore, component, config.name))
    selected = [(fqn, m) for fqn, m in selected if not isinstance(m, (HalfLinear, HalfConv1d, HalfConv2d, HalfEmbedding))]
    if not selected:
        raise _none_selected(component, config, "Linear/Conv/Embedding")
    return selected


def _cast(module: nn.Module, config: Fp16Config, component: str) -> CompressionReport:
    selected = _cast_targets(module, config, component)
    for fqn, m in selected:
        set_submodule(module, fqn, _half_copy(m, config.dtype))
    skipped = sum(1 for m in module.modules() if isinstance(m, nn.LSTM))
    notes = [f"{config.name} weights and matmuls on {describe(selected)}; outputs cast back to float32",
             *reroute(module, [fqn for fqn, _ in selected])]
    if skipped:
        notes.append(f"{skipped} LSTM modules left in float32 (no dtype-safe wrapper for recurrent state)")
    return CompressionReport(method={}, kernel="real", notes=notes)


register_method(Fp16Config, components=WEIGHT_COMPONENTS, check=_cast_targets)(_cast)
register_method(Bf16Config, components=WEIGHT_COMPONENTS, check=_cast_targets)(_cast)


# ---------------------------------------------------------------- weight-only int8 / int4 (simulated)
class WeightOnlyQuantLinear(nn.Module):
    """A Linear whose stored state is group-wise integer codes + scales (+ zero points).

    The codes are what a user would store (int8 as int8, int4 packed two per byte). Compute
    dequantizes once into a float32 weight kept outside the state_dict, so the *accuracy* effect
    is exact and the latency equals the dense float32 layer: no speedup is claimed (kernel
    "simulated"); PyTorch 2.12 has no public CPU kernel for group-wise weight-only matmul.
    """

    def __init__(self, linear: nn.Linear, bits: int, group_size: int, symmetric: bool):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.bits, self.symmetric = bits, symmetric
        self.group_size = group_size if 0 < group_size < self.in_features else self.in_features
        w = linear.weight.detach().float()
        n_groups = math.ceil(self.in_features / self.group_size)
        pad = n_groups * self.group_size - self.in_features
        g = F.pad(w, (0, pad)).view(self.out_features, n_groups, self.group_size)
        if symmetric:
            qmax = 2 ** (bits - 1) - 1
            scale = (g.abs().amax(-1) / qmax).clamp_min(1e-12)
            zero = torch.zeros_like(scale)
            q = torch.round(g / scale[..., None]).clamp(-qmax - 1, qmax)
        else:
            qmax = 2**bits - 1
            lo, hi = g.amin(-1).clamp(max=0), g.amax(-1).clamp(min=0)
            scale = ((hi - lo) / qmax).clamp_min(1e-12)
            zero = torch.round(-lo / scale)
            q = (torch.round(g / scale[..., None]) + zero[..., None]).clamp(0, qmax)
        q = q.to(torch.int16)
        # float32 scales: fp16 would underflow for groups of tiny (e.g. pruned) weights
        self.register_buffer("scale", scale)
        if not symmetric:
            self.register_buffer("zero_point", zero.to(torch.uint8))
        self.register_buffer("qweight", self._pack(q))
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)
        self.register_buffer("_dequant", self.dequantize(), persistent=False)

    def _pack(self, q: torch.Tensor) -> torch.Tensor:
        if self.bits == 8:
            return q.to(torch.int8 if self.symmetric else torch.uint8)
        u = (q + 8 if self.symmetric else q).to(torch.uint8).flatten()  # 0..15
        u = F.pad(u, (0, u.numel() % 2))
        return u[0::2] | (u[1::2] << 4)

    def codes(self) -> torch.Tensor:
        """Integer codes (out, n_groups, group_size), signed if symmetric."""
        n_groups = self.scale.shape[1]
        shape = (self.out_features, n_groups, self.group_size)
        if self.bits == 8:
            return self.qweight.to(torch.int16).view(shape)
        u = torch.stack([self.qweight & 0xF, self.qweight >> 4], dim=-1).flatten().to(torch.int16)
        u = u[: math.prod(shape)].view(shape)
        return u - 8 if self.symmetric else u

    def dequantize(self) -> torch.Tensor:
        q = self.codes().float()
        if not self.symmetric:
            q = q - self.zero_point.float()[..., None]
        w = q * self.scale.float()[..., None]
        return w.view(self.out_features, -1)[:, : self.in_features].contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self._dequant.to(x.dtype), None if self.bias is None else self.bias.to(x.dtype))

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}, "
                f"group_size={self.group_size}, symmetric={self.symmetric}")


class Int8PackedLinear(nn.Module):
    """Per-channel symmetric int8 weights run through torch._weight_int8pack_mm (a private aten
    op) with bf16 activations: a real low-precision kernel, about bf16 Linear speed on AVX512 CPUs.
    Input and output stay in the caller's dtype (float32)."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        w = linear.weight.detach().float()
        scale = (w.abs().amax(1) / 127).clamp_min(1e-12)
        self.register_buffer("qweight", torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale.to(torch.bfloat16))
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).to(torch.bfloat16).contiguous()
        y = torch._weight_int8pack_mm(flat, self.qweight, self.scale).to(x.dtype)
        if self.bias is not None:
            y = y + self.bias.to(x.dtype)
        return y.view(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, kernel=_weight_int8pack_mm"


@dataclass
class Int8WeightOnlyConfig(MethodConfig):
    name: str = "int8_weight"
    # input features sharing one scale; smaller groups track outliers better but store more scales.
    # -1 = one group per output row (per-channel)
    group_size: int = 128
    # symmetric codes need no zero point; asymmetric uses the full code range for skewed rows
    symmetric: bool = True
    # run through PyTorch's private int8 weight-only CPU kernel (bf16 activations): kernel "real".
    # Off by default: a private op, per-channel symmetric only, and activations become bf16
    int8pack_kernel: bool = False

    bits = 8

    def validate(self) -> None:
        super().validate()
        if not (self.group_size == -1 or self.group_size >= 2):
            raise invalid(self, "group_size", self.group_size, "an integer >= 2, or -1 for per output channel")
        if self.int8pack_kernel and (self.group_size != -1 or not self.symmetric):
            raise invalid(self, "int8pack_kernel", self.int8pack_kernel,
                          f"false, or true with group_size=-1 and symmetric=true (got group_size={self.group_size}, "
                          f"symmetric={self.symmetric})")


@dataclass
class Int4WeightOnlyConfig(MethodConfig):
    name: str = "int4_weight"
    # int4 needs small groups: 16 levels per group. -1 = one group per output row
    group_size: int = 32
    # asymmetric by default: with 16 levels an unused half of the range costs accuracy
    symmetric: bool = False

    bits = 4
    int8pack_kernel = False  # no usable int4 kernel: see docs/compression_methods.md

    def validate(self) -> None:
        super().validate()
        if not (self.group_size == -1 or self.group_size >= 2):
            raise invalid(self, "group_size", self.group_size, "an integer >= 2, or -1 for per output channel")


def _linear_targets(module: nn.Module, config: MethodConfig, component: str):
    selected = swappable(module, select(module, (nn.Linear,), config.targets, config.ignore, component,
                                        config.name))
    if not selected:
        raise _none_selected(component, config, "Linear")
    return selected


def _weight_only(module: nn.Module, config: Int8WeightOnlyConfig, component: str) -> CompressionReport:
    selected = _linear_targets(module, config, component)
    for fqn, m in selected:
        if config.int8pack_kernel:
            new = Int8PackedLinear(m)
        else:
            new = WeightOnlyQuantLinear(m, config.bits, config.group_size, config.symmetric)
        set_submodule(module, fqn, new)
    rerouted = reroute(module, [fqn for fqn, _ in selected])
    if config.int8pack_kernel:
        return CompressionReport(
            method={}, kernel="real",
            notes=[f"int8 weight-only per-channel on {describe(selected)} through torch._weight_int8pack_mm "
                   "(bf16 activations, outputs cast back to float32)", *rerouted],
        )
    return CompressionReport(
        method={}, kernel="simulated",
        notes=[f"int{config.bits} weight-only on {describe(selected)}: stored as codes+scales, "
               "computed with dequantized float32 weights (no speedup)", *rerouted],
    )


register_method(Int8WeightOnlyConfig, components=WEIGHT_COMPONENTS, check=_linear_targets)(_weight_only)
register_method(Int4WeightOnlyConfig, components=WEIGHT_COMPONENTS, check=_linear_targets)(_weight_only)
