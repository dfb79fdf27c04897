#!/usr/bin/env bash
# Set up (or update) the project's virtual environment in .venv: idempotent, ~1 minute.
# uv resolves espnet 202511's dependency set; the newest pip (26.3) refuses it
# (its dependency ci_sdr declares a git URL), so we do not use pip for the project.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
fi
UV=$(command -v uv || echo "python3 -m uv")
if [ ! -x .venv/bin/python ]; then
  $UV venv --quiet --python "$(command -v python3)" .venv
fi
# the ngram extra builds KenLM's module (model.ngram_file; ~1 min with a C++ compiler); the cluster
# extra is Hydra's submitit launcher (sweeps as Slurm jobs; pure Python, seconds); the ssl extra is
# transformers and s3prl, for Hugging Face and S3PRL SSL frontends (wav2vec2, HuBERT, WavLM) and their tests
$UV pip install --quiet --python .venv/bin/python -e ".[ngram,cluster,ssl]"
