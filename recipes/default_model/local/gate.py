"""Stage 16: the gate table, shipped model against a candidate, from their asr-compress sweeps.

    python local/gate.py --out exp/gate/GATE.md exp/gate/dev/shipped exp/gate/dev/candidate ...

Arguments come in pairs per data set (shipped sweep, candidate sweep). Each sweep is one model on
one data set, with one decoding setting or stage 14's grid; the table gives each one's best
setting (ties to the smaller weights, as stage 14 chooses) and its errors, and the difference in
words, the unit the recipe's gate rules are written in ("a clear gain on the dev half").
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import List

from asr_compress.report.tuning import best_run, load_runs


def best(sweep: Path) -> dict:
    runs = load_runs(sweep)
    keys = ["lm_weight", "penalty"]
    _, m = best_run(runs, keys)
    errors = m["substitutions"] + m["deletions"] + m["insertions"]
    setting = ", ".join(f"{k} {m['decode'][k]:g}" for k in keys)
    return {"wer": m["wer"], "errors": errors, "words": m["n_words"], "setting": setting,
            "n_settings": len(runs), "utts": m["n_utterances"]}


def gate_table(pairs: List[tuple]) -> str:
    lines = ["| data | utts / words | shipped: best setting, errors, WER | candidate: best setting, errors, WER | candidate - shipped (words) |",
             "|---|---:|---|---|---:|"]
    for name, shipped, cand in pairs:
        s, c = best(shipped), best(cand)
        if (s["utts"], s["words"]) != (c["utts"], c["words"]):
            raise ValueError(f"{shipped} and {cand} decoded different data ({s['utts']} vs {c['utts']} utterances)")
        lines.append(f"| {name} | {s['utts']} / {s['words']} | {s['setting']} ({s['n_settings']} tried): {s['errors']}, "
                     f"{100 * s['wer']:.2f}% | {c['setting']} ({c['n_settings']} tried): {c['errors']}, "
                     f"{100 * c['wer']:.2f}% | {c['errors'] - s['errors']:+d} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweeps", nargs="+", type=Path, help="SHIPPED_SWEEP CANDIDATE_SWEEP, one pair per data set")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    if len(a.sweeps) % 2:
        ap.error(f"sweeps come in pairs (shipped, candidate); got {len(a.sweeps)}")
    pairs = [(a.sweeps[i].parent.name, a.sweeps[i], a.sweeps[i + 1]) for i in range(0, len(a.sweeps), 2)]
    table = gate_table(pairs)
    a.out.write_text("# Gate: shipped model against the candidate\n\n" + table)
    print(table, end="")


if __name__ == "__main__":
    main()
