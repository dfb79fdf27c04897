#!/usr/bin/env bash
# Usage: recipes/method_table/run.sh [--stage 1] [--methods all|m1,m2] [--limit N] [--extra "..."]
#                                     [--rounds 6] [--utterances 16]
# Regenerates results/methods/: every compression method (default settings) on every component it
# applies to, one at a time, on the default model: WER, CER, size, params, latency per run, and the
# report (REPORT.md, runs.csv, plots). Stages, each re-runnable alone:
#   1  sweep     one Hydra multirun over the `cut` group, in one process (recipes/method_table/exp)
#   2  retime    its cells with real kernels timed again side by side (asr-compress-retime):
#                results/methods/interleaved/bench.json, the latency to cite
#   3  report    results/methods/REPORT.md, citing stage 2's bench.json when it is there
set -euo pipefail
stage=1
methods=all
limit=null      # utterances of the test set (null = all)
extra=""
rounds=6        # stage 2: interleaved rounds, each in its own shuffled order
utterances=16   # stage 2: utterances per cell per round (26 cells with real kernels: ~14 min on 2 cores)
. "$(dirname "$0")/../default_model/local/parse_options.sh"  # --name value sets each variable above
cd "$(dirname "$0")/../.."
exp=recipes/method_table/exp
bench=results/methods/interleaved
if [ "${stage}" -le 1 ]; then
# every (component, method) pair that applies, as cut options
cuts=$(python -c '
import sys
from asr_compress import COMPONENTS
from asr_compress.compress import applicable_methods
names = None if sys.argv[1] == "all" else sys.argv[1].split(",")
print(",".join(["none"] + [f"{c}_{m}" for c in COMPONENTS for m in applicable_methods(c, names)]))
' "${methods}")
rm -rf "${exp}"
asr-compress study=one_at_a_time cut="${cuts}" data.limit=${limit} ${extra} eval.progress=false \
  hydra.callbacks.report.plots=false hydra.sweep.dir="${exp}" </dev/null  # stage 3 writes the report
fi
if [ "${stage}" -le 2 ]; then
  asr-compress-retime "${exp}" --rounds "${rounds}" --utterances "${utterances}" --out "${bench}" --no-report
fi
interleaved=()
if [ -f "${bench}/bench.json" ]; then interleaved=(--interleaved "${bench}/bench.json"); fi
asr-compress-report "${exp}" --out results/methods "${interleaved[@]}"
