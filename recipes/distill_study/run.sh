#!/usr/bin/env bash
# Usage: recipes/distill_study/run.sh [--stage 1] [--stop_stage 4] [--limit null] [--calib_limit 200]
#                                     [--rounds 6] [--utterances 16] [--extra "..."]
# Regenerates results/distill/: what distillation buys back after a structural cut, per component, on
# the default model. Each of encoder, decoder and LM loses every other layer, once alone
# (`layer_drop`) and once followed by 600 distillation updates towards its own uncompressed outputs
# (`layer_drop_distill`, docs/compression_methods.md "Distillation"), one component at a time against
# the baseline, on the shipped test set. Stages, each re-runnable alone:
#   1  calibration  the default model's dev set (200 utterances in training voices of dev sentences:
#                   never test sentences), synthesised by the command of recipes/default_model's stage
#                   2 that writes its `data/synth_dev`, into recipes/distill_study/data/synth_dev with
#                   wav.scp paths relative to that dir so that it reads from any directory (needs that
#                   recipe's Debian speech packages, its README's "Prerequisites"; 20 s)
#   2  sweep        one Hydra multirun over the `cut` group (recipes/distill_study/exp; ~17 min on 2 cores:
#                   the calibration set is decoded once, by the first distilled cell)
#   3  retime       the cells timed again side by side (asr-compress-retime, distilled cells rebuilt
#                   with the same calibration): results/distill/interleaved/bench.json
#   4  report       results/distill/REPORT.md
set -euo pipefail
stage=1
stop_stage=4
limit=null       # utterances of the test set (null = all 170)
calib_limit=200  # calibration utterances (the whole dev set)
rounds=6         # stage 3: interleaved rounds
utterances=16    # stage 3: utterances per cell per round
extra=""
. "$(dirname "$0")/../default_model/local/parse_options.sh"  # --name value sets each variable above
cd "$(dirname "$0")/../.."
run_stage() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
calib=recipes/distill_study/data/synth_dev
exp=recipes/distill_study/exp
bench=results/distill/interleaved

if run_stage 1; then
  # recipes/default_model/run.sh stage 1 (text), then its stage 2 line for `data/synth_dev` (same
  # voices, seed and sentences) with --relative, without synthesising the training corpus
  rm -rf "${calib}"
  (cd recipes/default_model && bash run.sh --stage 1 --stop_stage 1 &&
   python local/synth_corpus.py --voices train --nj 2 --seed 2 --out "../../${calib}" --prefix dev --relative \
     --text data/local/text/valid.txt:200)
fi
if run_stage 2; then
  cuts=none
  for c in encoder decoder lm; do cuts="${cuts},${c}_layer_drop,${c}_layer_drop_distill"; done
  rm -rf "${exp}"
  asr-compress study=one_at_a_time cut="${cuts}" calibration.dir="${calib}" calibration.name=synth_dev \
    calibration.limit="${calib_limit}" data.limit="${limit}" ${extra} eval.progress=false \
    hydra.callbacks.report.plots=false hydra.sweep.dir="${exp}" </dev/null  # stage 4 writes the report
fi
if run_stage 3; then
  asr-compress-retime "${exp}" --rounds "${rounds}" --utterances "${utterances}" --out "${bench}" --no-report
fi
if run_stage 4; then
  interleaved=()
  if [ -f "${bench}/bench.json" ]; then interleaved=(--interleaved "${bench}/bench.json"); fi
  asr-compress-report "${exp}" --out results/distill "${interleaved[@]}"
fi
