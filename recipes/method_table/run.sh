#!/usr/bin/env bash
# Usage: recipes/method_table/run.sh [--methods all|m1,m2] [--limit N] [--extra "..."]
# Regenerates results/methods/: every compression method (default settings) on every component it
# applies to, one at a time, on the default model: WER, CER, size, params, latency per run, and the
# report (REPORT.md, runs.csv, plots). One Hydra multirun over the `cut` group, in one process.
set -euo pipefail
methods=all
limit=null      # utterances of the test set (null = all)
extra=""
while [ $# -gt 0 ]; do
  case "$1" in
    --methods) methods="$2"; shift 2 ;;
    --limit) limit="$2"; shift 2 ;;
    --extra) extra="$2"; shift 2 ;;
    *) echo "unknown option: $1 (see the usage line at the top of $0)" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/../.."
exp=recipes/method_table/exp
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
  hydra.sweep.dir="${exp}" </dev/null
asr-compress-report "${exp}" --out results/methods
