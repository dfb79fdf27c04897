#!/usr/bin/env bash
# Usage: recipes/factorial_study/run.sh [--stage 1] [--stop_stage 5] [--methods int8_dynamic] [--extra "data=... eval.num_threads=1"]
#
# Reproduces results/factorial_study/: which component's compression costs the WER, and which
# one buys the speed, for the default model. Staged (icefall/ESPnet style); any stage re-runs alone:
#   1  baseline        one uncompressed run (smoke test: fails fast if the setup is broken)
#   2  one_at_a_time   baseline + each component compressed alone (conf/study/one_at_a_time.yaml)
#   3  factorial       every on/off combination of encoder, decoder, CTC, LM (conf/study/factorial.yaml)
#   4  report          attribution report of stages 2 and 3 into results/factorial_study/ (citing
#                      stage 5's latency attribution when its bench.json exists)
#   5  interleaved     stage 3's runs rebuilt and timed again side by side in one process, taking
#                      turns per utterance, with the attribution of the time per round
#                      (asr-compress-retime) into results/factorial_study/interleaved/bench.json:
#                      stage 3 runs one combination after another, so machine drift during the
#                      sweep lands on the components the later runs cut; cite latency from stage 5
#                      (it rewrites stage 4's report and figures to cite it; needs stage 3's runs)
# Work dirs go to recipes/factorial_study/exp/ (git-ignored); only results/ is committed.
set -euo pipefail

stage=1
stop_stage=5
methods=int8_dynamic     # comma-separated; each is crossed with `none` for every component
extra=""                 # more Hydra overrides for every run (data, threads, ...)
resamples=1000           # bootstrap resamples for the confidence intervals
# stage 5's sample: 3 rounds of 8 utterances (until 2026-12-06) gave the int8 encoder +3.5 ms in one
# run and -4.0 ms in the next, each with a range on one side of 0 or near it; 6 x 16 (about 8 min
# on a 2-core CPU) is the most that keeps the stage short
utterances=16            # stage 5: utterances per combination per round (16 combinations)
rounds=6                 # stage 5: rounds; in each, every utterance is decoded by every combination in a shuffled order

. "$(dirname "$0")/../default_model/local/parse_options.sh"  # --name value sets each variable above

cd "$(dirname "$0")/../.."        # repository root: conf/ and results/ are relative to it
recipe=recipes/factorial_study
exp=${recipe}/exp
results=results/factorial_study
mkdir -p "${exp}" "${results}"

# ${extra}, ${overrides} and ${grid} stay unquoted on purpose: they are lists of overrides.
if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  echo "stage 1: baseline"
  asr-compress -m ${extra} hydra.sweep.dir="${exp}/baseline" </dev/null
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
  echo "stage 2: one component at a time (${methods})"
  # conf/study/one_at_a_time.yaml sweeps the `cut` group (cut=<component>_<method>)
  cuts=none
  for c in encoder decoder ctc lm; do
    for m in ${methods//,/ }; do cuts="${cuts},${c}_${m}"; done
  done
  asr-compress study=one_at_a_time cut="${cuts}" ${extra} hydra.sweep.dir="${exp}/one_at_a_time" </dev/null
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
  echo "stage 3: full factorial (${methods})"
  # the grid of conf/study/factorial.yaml, spelled out so that --methods applies and the stage
  # does not depend on how the study group is wired into the main config
  grid=""
  for c in encoder decoder ctc lm; do
    grid="${grid} ${c}=none,${methods}"
  done
  asr-compress -m ${grid} ${extra} hydra.sweep.dir="${exp}/factorial" </dev/null
fi

# the factorial's report; with stage 5's bench.json, its summary, tables and WER-vs-latency figure
# cite the latency timed side by side (without, it warns that the sweep's is sequential)
report_factorial() {
  local bench="${results}/interleaved/bench.json" interleaved=()
  if [ -f "${bench}" ]; then interleaved=(--interleaved "${bench}"); fi
  asr-compress-report "${exp}/factorial" --out "${results}" --resamples "${resamples}" "${interleaved[@]}"
  echo "report: ${results}/REPORT.md"
}

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
  echo "stage 4: report"
  if [ -d "${exp}/one_at_a_time" ]; then
    asr-compress-report "${exp}/one_at_a_time" --out "${results}/one_at_a_time" --resamples "${resamples}"
  fi
  report_factorial
fi

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
  echo "stage 5: stage 3's combinations timed side by side"
  # the cells are rebuilt from stage 3's run configs (model, data, decoding, methods): no --extra here
  asr-compress-retime "${exp}/factorial" --rounds "${rounds}" --utterances "${utterances}" \
    --out "${results}/interleaved" --no-report
  report_factorial  # stage 4's report, now citing these
fi
