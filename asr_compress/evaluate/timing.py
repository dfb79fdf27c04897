"""Where decoding time goes: wrappers around the real calls, not estimates.

`time_breakdown(pipeline, search)` patches, for the duration of a `with` block,
the frontend/normalize/encoder forwards (forward hooks) and the scorer methods
the beam search calls (attention decoder, CTC prefix scorer, LM and n-gram, the
last two both counted as "lm"). Each call adds
its wall time to its component. What remains of the search's own time is the
search bookkeeping ("search_other": top-k, hypothesis bookkeeping, length bonus).
Components never nest inside each other, so the parts add up to the total.
"""
from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from typing import Callable, Dict

import torch

# The time part of each scorer the search holds; the n-gram is language-model scoring too (the
# search adds both to the same hypotheses). Scorers not named (length bonus) are search bookkeeping.
SCORER_PARTS = {"decoder": "decoder", "ctc": "ctc", "lm": "lm", "ngram": "lm"}

# The methods ESPnet's BeamSearch/BatchBeamSearch call on scorers.
SCORER_METHODS = (
    "score", "batch_score", "score_partial", "batch_score_partial",
    "init_state", "batch_init_state", "select_state", "extend_prob", "extend_state",
)


class Clock:
    """perf_counter, synchronised with the accelerator when there is one."""

    def __init__(self, device: str = "cpu"):
        self.cuda = device.startswith("cuda") and torch.cuda.is_available()

    def __call__(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()


class Breakdown:
    """Seconds (and optionally FLOPs) per part, accumulated by the wrapped calls.

    FLOPs come from PyTorch's FlopCounterMode, which cannot see dynamically
    quantized int8 Linear kernels; those are counted as 2*in*out per input row
    by a forward hook, so an int8 layer does not look free.
    """

    def __init__(self, clock: Clock, count_flops: bool = False):
        self.clock = clock
        self.count_flops = count_flops
        self.seconds: Dict[str, float] = defaultdict(float)
        self.flops: Dict[str, float] = defaultdict(float)
        self.current = None

    def wrap(self, part: str, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            outer, self.current = self.current, part
            t0 = self.clock()
            try:
                if self.count_flops:
                    with flop_counter() as fc:
                        out = fn(*args, **kwargs)
                    self.flops[part] += fc.get_total_flops()
                    return out
                return fn(*args, **kwargs)
            finally:
                self.seconds[part] += self.clock() - t0
                self.current = outer

        timed.__wrapped__ = fn
        return timed


def flop_counter():
    """torch's FlopCounterMode, able to count the CPU kernel of scaled-dot-product attention.

    torch has FLOP formulas for the CUDA attention kernels but not for the CPU one
    (`aten._scaled_dot_product_flash_attention_for_cpu`), which it counts as 0: on CPU the attention
    scores of every block that calls F.scaled_dot_product_attention (Hugging Face and S3PRL SSL
    frontends, torch's MultiheadAttention) were left out, and a method that made such a block call
    its projections one by one (explicit matmuls, counted) looked as if it added work. The CUDA
    kernels' formula is registered for it, once; ESPnet's own attention uses explicit matmuls."""
    from torch.utils import flop_counter as fcm

    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if op is not None and op not in fcm.flop_registry:  # the CUDA flash kernel's entry: same first three inputs
        fcm.flop_registry[op] = fcm.flop_registry[torch.ops.aten._scaled_dot_product_flash_attention]
    return fcm.FlopCounterMode(display=False)


@contextlib.contextmanager
def _patched(obj, name: str, value):
    had_own = name in vars(obj)
    old = vars(obj).get(name)
    object.__setattr__(obj, name, value)
    try:
        yield
    finally:
        if had_own:
            object.__setattr__(obj, name, old)
        else:
            object.__delattr__(obj, name)


def _quantized_linear_hook(bd: Breakdown):
    def hook(module, inputs, output):
        if bd.current is not None:
            rows = inputs[0].numel() // module.in_features
            bd.flops[bd.current] += 2.0 * rows * module.in_features * module.out_features

    return hook


@contextlib.contextmanager
def time_breakdown(pipeline, search, clock: Clock, count_flops: bool = False):
    """Yield a Breakdown that accumulates seconds (and FLOPs) per part while the block runs."""
    bd = Breakdown(clock, count_flops)
    model = pipeline.asr_model
    with contextlib.ExitStack() as stack:
        if count_flops:
            from torch.ao.nn.quantized.dynamic import Linear as DynamicQLinear

            for comp in pipeline.components().values():
                for m in comp.modules():
                    if isinstance(m, DynamicQLinear):
                        stack.callback(m.register_forward_hook(_quantized_linear_hook(bd)).remove)
        for part, module in (("frontend", model.frontend), ("frontend", getattr(model, "normalize", None)),
                             ("encoder", getattr(model, "preencoder", None)), ("encoder", model.encoder),
                             ("encoder", getattr(model, "postencoder", None))):
            if module is not None:
                stack.enter_context(_patched(module, "forward", bd.wrap(part, module.forward)))
        scorers = {**search.full_scorers, **search.part_scorers}
        for key, scorer in scorers.items():
            part = SCORER_PARTS.get(key)
            if part is None:  # length bonus and friends are search bookkeeping
                continue
            for name in SCORER_METHODS:
                fn = getattr(scorer, name, None)
                if callable(fn):
                    stack.enter_context(_patched(scorer, name, bd.wrap(part, fn)))
        # modules a search calls directly (a transducer's joint network, pipeline/transducer.py)
        for part, module in getattr(search, "timed_forwards", ()):
            stack.enter_context(_patched(module, "forward", bd.wrap(part, module.forward)))
        yield bd
