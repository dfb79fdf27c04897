"""Decode a test set with a Pipeline: hypotheses, errors, latency and its breakdown."""
from __future__ import annotations

import resource
import sys
from typing import Dict, List, Tuple

import numpy as np
import torch

from asr_compress.config import DecodeConfig, EvalConfig
from asr_compress.evaluate.data import Utterance, read_audio
from asr_compress.evaluate.scoring import TextNormalizer, utterance_errors
from asr_compress.evaluate.timing import Clock, time_breakdown

PARTS = ("frontend", "encoder", "decoder", "ctc", "lm", "search_other")


def reset_peak_rss() -> bool:
    """Restart this process's peak resident memory from its current value, so that a run of a
    multirun (Hydra runs every job in one process) reports its own peak, not the sweep's so far.
    Linux only (`/proc/self/clear_refs` "5", kernel 4.0+): False elsewhere, and the peak then
    counts from the process's start. Memory an earlier run freed is first handed back to the system
    (garbage collection, glibc's `malloc_trim`): glibc keeps freed heap mapped, and after a
    distilled cell the next runs of the distillation study all started at its 1.9 GB."""
    import gc

    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident memory of this process (MiB): since the last `reset_peak_rss()` where Linux's
    /proc has it (VmHWM), else since the process started (getrusage)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


@torch.no_grad()
def _decode_one(pipeline, speech, decode: DecodeConfig, clock: Clock, count_flops: bool = False):
    search = pipeline.search(decode)
    with time_breakdown(pipeline, search, clock, count_flops) as bd:
        t0 = clock()
        enc = pipeline.encode(speech)
        t1 = clock()
        hyps = search(x=enc, maxlenratio=decode.maxlenratio, minlenratio=decode.minlenratio)
        t2 = clock()
    text, _, _ = pipeline.best_text(hyps)
    t3 = clock()
    parts = {k: bd.seconds.get(k, 0.0) * 1000 for k in ("frontend", "encoder", "decoder", "ctc", "lm")}
    # encode() time not spent in frontend/encoder forwards (tensor set-up) counts as frontend.
    parts["frontend"] += max(0.0, (t1 - t0) * 1000 - parts["frontend"] - parts["encoder"])
    search_ms = (t2 - t1) * 1000
    parts["search_other"] = max(0.0, search_ms - parts["decoder"] - parts["ctc"] - parts["lm"]) + (t3 - t2) * 1000
    parts["total"] = (t3 - t0) * 1000
    if count_flops:
        return text, parts, dict(bd.flops), len(hyps[0].yseq) - 1 if hyps else 0
    return text, parts


def count_compute(pipeline, audio, decode: DecodeConfig, clock: Clock, fs: int) -> Dict[str, float]:
    """FLOPs per second of audio (frontend, encoder) and per output token (decoder, CTC, LM).

    Measured on a separate, untimed pass (the counter slows everything down).
    "Per output token" divides all scoring work (every hypothesis of the beam) by
    the tokens of the best hypothesis, i.e. it is the search's real cost per token.
    """
    flops: Dict[str, float] = {}
    tokens = 0
    for speech in audio:
        _, _, f, n = _decode_one(pipeline, speech, decode, clock, count_flops=True)
        tokens += n
        for k, v in f.items():
            flops[k] = flops.get(k, 0.0) + v
    seconds = sum(len(a) for a in audio) / fs
    out = {"utterances": len(audio), "audio_s": seconds, "output_tokens": tokens}
    for part in ("frontend", "encoder"):
        out[f"{part}_flops_per_audio_s"] = flops.get(part, 0.0) / seconds
    for part in ("decoder", "ctc", "lm"):
        if part in flops:
            out[f"{part}_flops_per_token"] = flops[part] / max(tokens, 1)
    return out


def decode_set(pipeline, utts: List[Utterance], decode: DecodeConfig, ev: EvalConfig,
               partial=None) -> Tuple[List[Dict], Dict]:
    """Decode every utterance `ev.repeats` times after `ev.warmup` untimed ones.

    Audio is read before anything is decoded, so an unreadable file fails fast.
    Returns per-utterance rows and a run-level timing summary. `partial` (partial_decode.PartialDecode):
    each decode is added to it as it finishes, and those it already holds are taken as they are.
    """
    from tqdm import tqdm

    fs = pipeline.sample_rate
    audio = [read_audio(u.audio, fs) for u in utts]
    norm = TextNormalizer.for_tokens(pipeline.token_list)
    clock = Clock(ev.device)
    for speech in audio[: max(0, ev.warmup)]:
        _decode_one(pipeline, speech, decode, clock)
    compute = count_compute(pipeline, audio[: ev.flops_utterances], decode, clock, fs) if ev.flops_utterances > 0 else {}
    per_repeat: List[List[Dict[str, float]]] = []
    texts: List[str] = []
    for r in range(max(1, ev.repeats)):
        timings = []
        desc = "decoding" if ev.repeats <= 1 else f"decoding (repeat {r + 1}/{ev.repeats})"
        for u, speech in tqdm(list(zip(utts, audio)), desc=desc, unit="utt", disable=not ev.progress, file=sys.stderr):
            if partial is not None and (r, u.id) in partial.done:  # decoded before the cell was killed
                text, parts = partial.done[(r, u.id)]
            else:
                text, parts = _decode_one(pipeline, speech, decode, clock)
                if partial is not None:
                    partial.add(r, u.id, text, parts)
            timings.append(parts)
            if r == 0:
                texts.append(text)
        per_repeat.append(timings)
    rows = []
    for i, (u, speech, hyp) in enumerate(zip(utts, audio, texts)):
        ref_n, hyp_n = norm(u.ref), norm(hyp)
        # per-utterance time: median over repeats, part by part
        parts = {k: float(np.median([rep[i][k] for rep in per_repeat])) for k in (*PARTS, "total")}
        rows.append({
            "id": u.id, "audio": str(u.audio), "ref": ref_n, "hyp": hyp_n, "ref_raw": u.ref, "hyp_raw": hyp,
            **utterance_errors(ref_n, hyp_n),
            "audio_s": len(speech) / fs, "latency_ms": parts["total"],
            "speaker": u.speaker, "group": u.group,
            "time_breakdown_ms": {k: parts[k] for k in PARTS},
        })
    lat = np.array([r["latency_ms"] for r in rows])
    audio_s = sum(r["audio_s"] for r in rows)
    repeat_totals = [sum(t["total"] for t in rep) / 1000 for rep in per_repeat]
    summary = {
        "rtf": lat.sum() / 1000 / audio_s,
        "utt_per_s": len(rows) / (lat.sum() / 1000),
        "audio_s": audio_s,
        "latency_ms": {"mean": float(lat.mean()), "p50": float(np.percentile(lat, 50)), "p90": float(np.percentile(lat, 90))},
        "time_breakdown_ms": {k: float(np.mean([r["time_breakdown_ms"][k] for r in rows])) for k in PARTS},
        "repeats": {"n": len(per_repeat), "total_s": repeat_totals,
                    "spread": (max(repeat_totals) - min(repeat_totals)) / float(np.mean(repeat_totals))},
        "warmup_utterances": min(max(0, ev.warmup), len(utts)),
        "compute": compute,
    }
    summary["time_breakdown_ms"]["total"] = float(lat.mean())
    return rows, summary
