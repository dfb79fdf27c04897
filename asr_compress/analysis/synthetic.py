"""Synthetic sweep directories with known, hand-checkable effects: for the tests, and to try the
report without decoding anything.

    python -m asr_compress.analysis.synthetic /tmp/demo_sweep --interaction
    asr-compress-report /tmp/demo_sweep

The layout follows the run-directory contract (Hydra multirun dir with numbered run dirs,
`.hydra/config.yaml`, `.hydra/overrides.yaml`, `metrics.json`, `utterances.jsonl`).

Error model (20 utterances of 10 words each = 200 words, so 1 error = 0.5 WER points):
- baseline: one substitution on every odd utterance (10 errors, WER 5.0 %);
- encoder cut: +1 substitution on utterances 0, 4, 8, 12, 16      (+5 errors, +2.5 points);
- decoder cut: +1 deletion on utterances 0, 5, 10, 15              (+4 errors, +2.0 points);
- lm cut:      +1 insertion on utterances 0, 3, 6, 9, 12, 15, 18    (+7 errors, +3.5 points);
- `interaction=True`: encoder AND decoder cut: +1 substitution on every even utterance
  (+10 errors, +5.0 points), so Shapley(encoder) = 2.5 + 5/2 = 5.0, Shapley(decoder) = 4.5.
A second compressed level (levels[c][2]) doubles that component's errors.
Time per utterance (ms): frontend 1, encoder 4, decoder 37, ctc 24, lm 25, search_other 10 (the
issue-5 profile); cutting a component halves its part. Size: cutting a component divides it by 4.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import yaml

N_UTT = 20
N_WORDS = 10
TIMES = {"frontend": 1.0, "encoder": 4.0, "decoder": 37.0, "ctc": 24.0, "lm": 25.0, "search_other": 10.0}
SIZES = {"frontend": 0, "encoder": 4_000_000, "ctc": 200_000, "decoder": 2_000_000, "lm": 3_000_000}
PARAMS = {"frontend": 0, "encoder": 1_000_000, "ctc": 50_000, "decoder": 500_000, "lm": 750_000}
COMPONENTS = ("frontend", "encoder", "ctc", "decoder", "lm")


def utterance_rows(levels: Dict[str, int], interaction: bool) -> List[dict]:
    """Per-utterance rows for a cell; levels: component -> level index (0 = none)."""
    rows = []
    for u in range(N_UTT):
        sub = 1 if u % 2 else 0
        dele = ins = 0
        e, d, l = levels.get("encoder", 0), levels.get("decoder", 0), levels.get("lm", 0)
        if u % 4 == 0:
            sub += e
        if u % 5 == 0:
            dele += d
        if u % 3 == 0:
            ins += l
        if interaction and e and d and u % 2 == 0:
            sub += 1
        times = {k: v * (0.5 if levels.get(k, 0) else 1.0) for k, v in TIMES.items()}
        times["total"] = sum(times.values())
        ref = " ".join(f"w{u}_{i}" for i in range(N_WORDS))
        hyp_words = [f"x{i}" if i < sub else f"w{u}_{i}" for i in range(N_WORDS - dele)] + ["ins"] * ins
        rows.append({
            "id": f"utt{u:02d}", "audio": f"/data/utt{u:02d}.wav", "ref": ref, "hyp": " ".join(hyp_words),
            "hits": N_WORDS - sub - dele, "substitutions": sub, "deletions": dele, "insertions": ins,
            "n_ref_words": N_WORDS, "char_errors": 2 * (sub + dele + ins), "n_ref_chars": 50,
            "audio_s": 2.0, "latency_ms": times["total"], "group": "seen" if u % 2 else "unseen",
            "speaker": f"spk{u % 4}",
            "time_breakdown_ms": times,
        })
    return rows


def write_run(run_dir: Path, methods: Dict[str, str], rows: Optional[List[dict]], overrides: Sequence[str]) -> None:
    """One run dir; rows=None writes a failed run (config only, no metrics)."""
    (run_dir / ".hydra").mkdir(parents=True)
    cfg = config_for(methods)
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(list(overrides)))
    if rows is not None:
        write_results(run_dir, methods, rows)


def config_for(methods: Dict[str, str]) -> dict:
    cfg = {
        "model": {"name": "tiny_conformer"}, "data": {"name": "synthetic"},
        "decode": {"beam_size": 5, "ctc_weight": 0.3, "lm_weight": 0.5, "penalty": 0.0},
        "eval": {"num_threads": 1},
    }
    for c in COMPONENTS:
        cfg[c] = {"name": methods.get(c, "none"), "targets": [], "ignore": []}
    return cfg


def write_results(run_dir: Path, methods: Dict[str, str], rows: List[dict]) -> None:
    """metrics.json + utterances.jsonl as a finished run writes them."""
    S = sum(r["substitutions"] for r in rows)
    D = sum(r["deletions"] for r in rows)
    I = sum(r["insertions"] for r in rows)
    H = sum(r["hits"] for r in rows)
    W = sum(r["n_ref_words"] for r in rows)
    lat = sorted(r["latency_ms"] for r in rows)
    comps = {}
    for c in COMPONENTS:
        cut = methods.get(c, "none") != "none"
        size = SIZES[c] // 4 if cut else SIZES[c]
        comps[c] = {"method": {"name": methods.get(c, "none")}, "params": PARAMS[c], "nonzero_params": PARAMS[c],
                    "sparsity": 0.0, "size_bytes": size, "kernel": "real" if cut else "none"}
    parts = {k: sum(r["time_breakdown_ms"][k] for r in rows) / len(rows) for k in rows[0]["time_breakdown_ms"]}
    metrics = {
        "wer": (S + D + I) / W, "cer": sum(r["char_errors"] for r in rows) / sum(r["n_ref_chars"] for r in rows),
        "n_utterances": len(rows), "n_words": W, "hits": H, "substitutions": S, "deletions": D, "insertions": I,
        "sentence_errors": sum(1 for r in rows if r["substitutions"] + r["deletions"] + r["insertions"]),
        "rtf": sum(lat) / 1000 / sum(r["audio_s"] for r in rows), "utt_per_s": 1000 * len(rows) / sum(lat),
        "latency_ms": {"mean": sum(lat) / len(lat), "p50": lat[len(lat) // 2], "p90": lat[int(0.9 * len(lat))]},
        "time_breakdown_ms": parts, "peak_rss_mb": 900.0,
        "components": comps, "total_size_bytes": sum(v["size_bytes"] for v in comps.values()),
        "model": {"asr_model": "/models/tiny.pth", "sha256": "ab" * 32},
        "environment": {"python": "3.11.9", "torch": "2.12.1", "espnet": "202511", "platform": "Linux-x86_64",
                        "cpu": "Synthetic CPU @ 2GHz", "num_threads": 1, "device": "cpu",
                        "git_hash": "64ad1de", "date": "2026-11-22T21:00:00"},
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    with open(run_dir / "utterances.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def build_sweep(root: Path, levels: Optional[Dict[str, List[str]]] = None, interaction: bool = False,
                missing: Iterable[Tuple[str, ...]] = (), failed: Iterable[Tuple[str, ...]] = ()) -> Path:
    """Full factorial multirun dir; a cell is named by the tuple of its method names in factor order."""
    levels = levels or {"encoder": ["none", "int8_dynamic"], "decoder": ["none", "int8_dynamic"],
                        "lm": ["none", "int8_dynamic"]}
    missing, failed = {tuple(m) for m in missing}, {tuple(f) for f in failed}
    root.mkdir(parents=True, exist_ok=True)
    factors = list(levels)
    (root / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"mode": "MULTIRUN", "sweeper": {
        "params": {c: ",".join(v) for c, v in levels.items()}}}}))
    for num, cell in enumerate(itertools.product(*levels.values())):
        if cell in missing:
            continue
        methods = dict(zip(factors, cell))
        idx = {c: levels[c].index(m) for c, m in methods.items()}
        rows = None if cell in failed else utterance_rows(idx, interaction)
        write_run(root / str(num), methods, rows, [f"{c}={m}" for c, m in methods.items()])
    return root


def main(argv: Optional[List[str]] = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m asr_compress.analysis.synthetic",
                                description="Write a synthetic 2x2x2 (encoder, decoder, LM) sweep.")
    p.add_argument("out", help="directory to create")
    p.add_argument("--interaction", action="store_true", help="encoder and decoder interact (+5 WER points)")
    args = p.parse_args(argv)
    print(build_sweep(Path(args.out), interaction=args.interaction))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
