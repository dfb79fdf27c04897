"""Where decoding time goes: wrappers around the real calls, not estimates.

`time_breakdown(pipeline, search)` patches, for the duration of a `with` block,
the frontend/normalize/encoder forwards (forward hooks) and the scorer methods
the beam search calls (attention decoder, CTC prefix scorer, LM). Each call adds
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
    def __init__(self, clock: Clock):
        self.clock = clock
        self.seconds: Dict[str, float] = defaultdict(float)

    def reset(self) -> None:
        self.seconds = defaultdict(float)

    def wrap(self, part: str, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            t0 = self.clock()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[part] += self.clock() - t0

        timed.__wrapped__ = fn
        return timed


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


@contextlib.contextmanager
def time_breakdown(pipeline, search, clock: Clock):
    """Yield a Breakdown that accumulates seconds per part while the block runs."""
    bd = Breakdown(clock)
    model = pipeline.asr_model
    with contextlib.ExitStack() as stack:
        for part, module in (("frontend", model.frontend), ("frontend", getattr(model, "normalize", None)),
                             ("encoder", getattr(model, "preencoder", None)), ("encoder", model.encoder),
                             ("encoder", getattr(model, "postencoder", None))):
            if module is not None:
                stack.enter_context(_patched(module, "forward", bd.wrap(part, module.forward)))
        scorers = {**search.full_scorers, **search.part_scorers}
        for key, scorer in scorers.items():
            part = key if key in ("decoder", "ctc", "lm") else None
            if part is None:  # length bonus and friends are search bookkeeping
                continue
            for name in SCORER_METHODS:
                fn = getattr(scorer, name, None)
                if callable(fn):
                    stack.enter_context(_patched(scorer, name, bd.wrap(part, fn)))
        yield bd
