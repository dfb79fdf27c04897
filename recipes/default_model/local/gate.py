"""Stage 16: the gate table, shipped model against a candidate, from their asr-compress sweeps.

    python local/gate.py --out exp/gate/GATE.md exp/gate/dev/shipped exp/gate/dev/candidate ...

Arguments come in pairs per data set (shipped sweep, candidate sweep). Each sweep is one model on
one data set, with one decoding setting or stage 14's grid; the table gives each one's best
setting (ties to the smaller weights, as stage 14 chooses) and its errors, and the difference in
words, the unit the recipe's gate rules are written in ("a clear gain on the dev half").

With --lm-only-candidate (stage 16 gives it for an LM-only candidate on the grid), the candidate's
sweeps lack the decode.lm_weight=0 cells, which are the shipped side's by construction: they are
taken from the shipped sweep of the same data set.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import List, Tuple

from asr_compress.report.tuning import best_run, load_runs

LM_ONLY_NOTE = "lm_weight=0 cells: the shipped side's (LM-only candidate: same ASR, no LM)."
# the files that make the ASR side of a run; the paths differ between the sides (stage 16 names the
# candidate's absolutely), the contents must not
ASR_FILES = ("asr_config_sha256", "asr_weights_sha256")


def best(runs: List[Tuple[Path, dict]]) -> dict:
    keys = ["lm_weight", "penalty"]
    if runs[0][1]["model"].get("ngram_file"):  # a sweep is one model: an n-gram candidate's weight is a setting too
        keys.append("ngram_weight")
    _, m = best_run(runs, keys)
    errors = m["substitutions"] + m["deletions"] + m["insertions"]
    setting = ", ".join(f"{k} {m['decode'][k]:g}" for k in keys)
    return {"wer": m["wer"], "errors": errors, "words": m["n_words"], "setting": setting,
            "n_settings": len(runs), "utts": m["n_utterances"]}


def with_shipped_lm0(shipped: List[Tuple[Path, dict]], cand: List[Tuple[Path, dict]]) -> List[Tuple[Path, dict]]:
    """The candidate's runs and the shipped side's decode.lm_weight=0 ones, for an LM-only candidate.

    An explicit option (stage 16 knows it skipped the cells), not detection from the runs: a sweep
    that lacks the cells because they crashed or were deleted would otherwise be completed
    silently with another model's numbers. The ASR files' hashes must still agree, so that the
    option cannot lend the cells to a candidate with another ASR.
    """
    s_dir, c_dir = shipped[0][0].parent, cand[0][0].parent
    if any(m["decode"]["lm_weight"] == 0 for _, m in cand):
        raise ValueError(f"{c_dir} has decode.lm_weight=0 runs of its own; --lm-only-candidate is for a "
                         f"sweep without them (stage 16 skips them for an LM-only candidate)")
    lm0 = [r for r in shipped if r[1]["decode"]["lm_weight"] == 0]
    if not lm0:
        raise ValueError(f"{s_dir} has no decode.lm_weight=0 run to lend the candidate; "
                         f"--lm-only-candidate needs the shipped side decoded on stage 14's grid")
    s_model, c_model = shipped[0][1]["model"], cand[0][1]["model"]
    differ = [k for k in ASR_FILES if s_model.get(k) is None or s_model.get(k) != c_model.get(k)]
    if differ:
        raise ValueError(f"{c_dir}: its ASR files are not {s_dir}'s ({', '.join(differ)} not the same), so the shipped "
                         f"side's lm_weight=0 cells are not its own; decode the candidate's full grid instead")
    return cand + lm0


def gate_table(pairs: List[tuple], lm_only: bool = False) -> str:
    lines = ["| data | utts / words | shipped: best setting, errors, WER | candidate: best setting, errors, WER | candidate - shipped (words) |",
             "|---|---:|---|---|---:|"]
    for name, shipped, cand in pairs:
        s_runs, c_runs = load_runs(shipped), load_runs(cand)
        s, c = best(s_runs), best(c_runs)
        if (s["utts"], s["words"]) != (c["utts"], c["words"]):
            raise ValueError(f"{shipped} and {cand} decoded different data ({s['utts']} vs {c['utts']} utterances)")
        if lm_only:  # after the check, which the lent cells would pass whatever the candidate decoded
            c = best(with_shipped_lm0(s_runs, c_runs))
        lines.append(f"| {name} | {s['utts']} / {s['words']} | {s['setting']} ({s['n_settings']} tried): {s['errors']}, "
                     f"{100 * s['wer']:.2f}% | {c['setting']} ({c['n_settings']} tried): {c['errors']}, "
                     f"{100 * c['wer']:.2f}% | {c['errors'] - s['errors']:+d} |")
    if lm_only:
        lines += ["", LM_ONLY_NOTE]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweeps", nargs="+", type=Path, help="SHIPPED_SWEEP CANDIDATE_SWEEP, one pair per data set")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--lm-only-candidate", action="store_true",
                    help="the candidate changes only the LM and its sweeps skipped decode.lm_weight=0: "
                         "take those cells from the shipped sweep of the same data set")
    a = ap.parse_args(argv)
    if len(a.sweeps) % 2:
        ap.error(f"sweeps come in pairs (shipped, candidate); got {len(a.sweeps)}")
    pairs = [(a.sweeps[i].parent.name, a.sweeps[i], a.sweeps[i + 1]) for i in range(0, len(a.sweeps), 2)]
    table = gate_table(pairs, lm_only=a.lm_only_candidate)
    a.out.write_text("# Gate: shipped model against the candidate\n\n" + table)
    print(table, end="")


if __name__ == "__main__":
    main()
