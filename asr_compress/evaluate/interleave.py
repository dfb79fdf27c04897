"""Time several pipelines side by side: one process, the same utterances, shuffled interleaved rounds.

    times, hyps = time_interleaved({"baseline": base, "lm=int8": cut}, audio, decode, clock, rounds=6)
    times["lm=int8"][r]["lm"]        # ms spent in the LM over all utterances of round r

A sweep decodes its cells one after another, minutes apart, so a machine that warms up, throttles
or gets a noisy neighbour during the sweep moves the later cells' times, and that drift lands on
whichever component those cells cut. Here every variant decodes the same utterances in every round,
in a new random order per round; a comparison made within one round (a ratio, a Shapley value) sees
the same machine state on both sides, and the spread over rounds shows how much the state moved.
Used by `benchmarks/bench_methods.py` and `asr-compress-retime` (`asr_compress/report/retime.py`).
"""
from __future__ import annotations

import random
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from asr_compress.analysis.collect import TIME_PARTS

PartTimes = Dict[str, float]  # TIME_PARTS + "total" -> milliseconds, summed over the utterances


def decode_timed(pipeline, audio: Sequence[np.ndarray], decode, clock) -> Tuple[List[str], PartTimes]:
    """Decode `audio` once with `pipeline`; the hypotheses and each time part summed over utterances."""
    from asr_compress.evaluate.decode import _decode_one

    hyps, parts = [], {k: 0.0 for k in (*TIME_PARTS, "total")}
    for a in audio:
        text, bd = _decode_one(pipeline, a, decode, clock)
        hyps.append(text)
        for k in parts:
            parts[k] += bd[k]
    return hyps, parts


def time_interleaved(jobs: Mapping[str, Callable[[], Tuple[List[str], PartTimes]]], rounds: int, seed: int = 0,
                     progress: Optional[Callable[[str], None]] = None) -> Tuple[Dict[str, List[PartTimes]],
                                                                                  Dict[str, List[str]]]:
    """Run every job once untimed (warm-up: lazy initialisation, caches), then `rounds` rounds, each in
    its own shuffled order (seeded: reproducible). Returns {job: [times per round]} and {job: hyps of
    its first timed round}."""
    if rounds < 1:
        raise ValueError(f"rounds={rounds}: must be >= 1")
    for fn in jobs.values():
        fn()
    times: Dict[str, List[PartTimes]] = {n: [] for n in jobs}
    hyps: Dict[str, List[str]] = {}
    rng = random.Random(seed)
    for r in range(rounds):
        order = list(jobs)
        rng.shuffle(order)
        for name in order:
            h, parts = jobs[name]()
            times[name].append(parts)
            hyps.setdefault(name, h)
        if progress is not None:
            progress(f"round {r + 1}/{rounds} done")
    return times, hyps


def spread(values: Sequence[float]) -> Dict[str, float]:
    """Median and range over rounds: how a side-by-side number is reported."""
    return {"median": float(np.median(values)), "min": float(min(values)), "max": float(max(values))}
