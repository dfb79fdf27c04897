#!/usr/bin/env bash
# Usage: recipes/baseline/run.sh [--extra "eval.num_threads=2 ..."]
# Regenerates results/baseline/: the default model, nothing compressed, on the shipped synthetic test
# set and on the held-out real speech (LJ Speech, spoken digits; built from ../shared/data by
# recipes/default_model stage 3; and two new speakers from Debian's pocketsphinx-testdata, which
# stage 3 adds when that package is installed — sets not built are skipped with a note). Each test set is
# decoded twice: with the language models (the default: the neural LM and the token n-gram) and
# without either (decode.lm_weight=0 decode.ngram_weight=0), so the table shows what they contribute.
set -euo pipefail
extra=""
. "$(dirname "$0")/../default_model/local/parse_options.sh"  # --extra "..." sets extra
cd "$(dirname "$0")/../.."
exp=recipes/baseline/exp
rm -rf "${exp}" && mkdir -p "${exp}"
runs=()
for data in synth_test real_heldout_lj real_heldout_digits real_new_speakers; do
  dir=$(sed -n 's/^dir: //p' conf/data/${data}.yaml)
  if [ ! -f "${dir}/wav.scp" ]; then
    echo "skip ${data}: ${dir} not built (run recipes/default_model/run.sh --stage 3 --stop_stage 3;" \
      "real_new_speakers also needs apt-get install pocketsphinx-testdata)" >&2
    continue
  fi
  asr-compress data=${data} ${extra} eval.progress=false hydra.run.dir="${exp}/${data}" </dev/null
  asr-compress data=${data} decode.lm_weight=0 decode.ngram_weight=0 ${extra} eval.progress=false \
    hydra.run.dir="${exp}/${data}_no_lm" </dev/null
  runs+=("${exp}/${data}" "${exp}/${data}_no_lm")
done
python -m asr_compress.report.baseline "${runs[@]}" --out results/baseline
