"""Time several pipelines side by side: one process, the same utterances, interleaved per utterance.

    jobs = {"baseline": decoder_of(base, audio, decode, clock), "lm=int8": decoder_of(cut, ...)}
    times, hyps = time_interleaved(jobs, len(audio), rounds=6)
    times["lm=int8"][r]["lm"]        # ms spent in the LM over all utterances of round r

A sweep decodes its cells one after another, minutes apart, so a machine that warms up, throttles
or gets a noisy neighbour during the sweep moves the later cells' times, and that drift lands on
whichever component those cells cut. Here, in every round, each utterance is decoded by every variant
back to back, in a new random order per utterance: a variant and the baseline meet the same machine
state within seconds, so a comparison made within one round (a ratio, a Shapley value) sees little
drift, and the spread over rounds shows what is left. Decoding all utterances with one variant,
then the next, left minutes between a variant and the baseline in a round of 26 variants: on the
2-core machine of 2026-12-06 the int8 LM's range over 6 rounds was -54 to +60 ms that way and -2.9
to +6.2 ms taking turns per utterance (`results/README.md`).
Used by `benchmarks/bench_methods.py` and `asr-compress-retime` (`asr_compress/report/retime.py`).
"""
from __future__ import annotations

import random
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np


PartTimes = Dict[str, float]  # TIME_PARTS + "total" -> milliseconds
Job = Callable[[int], Tuple[str, PartTimes]]  # utterance index -> (hypothesis, its part times)


def decoder_of(pipeline, audio: Sequence[np.ndarray], decode, clock) -> Job:
    """A job that decodes utterance i of `audio` with `pipeline` and times each part."""
    from asr_compress.evaluate.decode import _decode_one

    return lambda i: _decode_one(pipeline, audio[i], decode, clock)


def time_interleaved(jobs: Mapping[str, Job], n_utts: int, rounds: int, seed: int = 0,
                     progress: Optional[Callable[[str], None]] = None) -> Tuple[Dict[str, List[PartTimes]],
                                                                                  Dict[str, List[str]]]:
    """Run every job once on utterance 0 untimed (warm-up: lazy initialisation, caches), then `rounds`
    rounds, each decoding every utterance with every job in its own shuffled order (seeded:
    reproducible). Returns {job: [part times summed over the utterances, per round]} and {job:
    hypotheses of its first round}."""
    if rounds < 1:
        raise ValueError(f"rounds={rounds}: must be >= 1")
    for fn in jobs.values():
        fn(0)
    times: Dict[str, List[PartTimes]] = {n: [] for n in jobs}
    hyps: Dict[str, List[str]] = {n: [] for n in jobs}
    rng = random.Random(seed)
    for r in range(rounds):
        sums: Dict[str, PartTimes] = {n: {} for n in jobs}
        for i in range(n_utts):
            order = list(jobs)
            rng.shuffle(order)
            for name in order:
                text, parts = jobs[name](i)
                for k, v in parts.items():
                    sums[name][k] = sums[name].get(k, 0.0) + v
                if r == 0:
                    hyps[name].append(text)
        for name in jobs:
            times[name].append(sums[name])
        if progress is not None:
            progress(f"round {r + 1}/{rounds} done")
    return times, hyps


def spread(values: Sequence[float]) -> Dict[str, float]:
    """Median and range over rounds: how a side-by-side number is reported."""
    return {"median": float(np.median(values)), "min": float(min(values)), "max": float(max(values))}
