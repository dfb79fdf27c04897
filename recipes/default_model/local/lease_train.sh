#!/usr/bin/env bash
# Runs THERE, on the lent GPU machine, from recipes/default_model, on the folder that
# local/lease_pack.py wrote here (carried as recipes/default_model/lease):
#
#   cd recipes/default_model && bash local/lease_train.sh --minutes 7 --asr none
#
# One call does it all, since each start of a machine costs minutes of a 15-minute budget:
# installs the carried wheels, decodes the Opus audio, continues the shipped ASR (run.sh stage 9;
# --asr none skips it, as the README's lease does) and LM (stage 7) side by side on the one GPU for --minutes of wall time, averages their best
# epochs (stage 10's script) and writes to $OUT what comes back (the tool returns at most 8 files
# of 16 MiB each): asr.pth (float16, as the shipped weights), lm.pth, logs.tar.gz, RESULT.txt.
# Here again, the README's "A lease" commands make a candidate of them and gate it (stage 16).
set -euo pipefail

minutes=7                 # wall time of the two trainings; the epoch under way at the end is lost
lease=lease               # the folder lease_pack.py wrote
install=true              # false: the environment already has ESPnet (a rehearsal on CPU here)
ngpu=1
nthreads=4
asr=continue              # continue: the shipped ASR on the carried sample; none: the LM alone
                          # (a CPU proxy of the ASR half made the dev half 11 words worse: README)
asr_config=conf/train_asr_gpu2.yaml   # the second GPU run's: 100 s batches, peak rate 1e-3
asr_args=""               # extra asr_train arguments, e.g. "--optim_conf lr=5e-4"
lm=continue               # continue: from the shipped LM; scratch: a new one; none: ASR only
lm_config=conf/train_lm_gpu.yaml
lm_args=""
nbest=5                   # ASR epochs averaged (the LM: 3, as the shipped one)
python=${PYTHON:-python3}
out=${OUT:-exp/lease_out} # the device tool's folder that comes back

. ./local/parse_options.sh

case "$lm" in continue|scratch|none) ;; *)
  echo "lease_train.sh --lm $lm: expected continue, scratch or none" >&2; exit 2 ;; esac
case "$asr" in continue|none) ;; *)
  echo "lease_train.sh --asr $asr: expected continue or none" >&2; exit 2 ;; esac
if [ "$asr$lm" = nonenone ]; then echo "lease_train.sh: --asr none and --lm none train nothing" >&2; exit 2; fi
if [ ! -f "$lease/MANIFEST.txt" ]; then
  echo "lease_train.sh: $lease/MANIFEST.txt is missing: carry the folder local/lease_pack.py wrote" >&2
  exit 2
fi
mkdir -p "$out" exp
start=$(date +%s)
say() { echo "$(date -u +%T) +$(( $(date +%s) - start ))s $*"; }

if [ "$install" = true ]; then
  # --target and PYTHONPATH: nothing of the image's own environment is replaced
  $python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/lease_site "$lease"/wheels/*.whl
  export PYTHONPATH=/tmp/lease_site${PYTHONPATH:+:$PYTHONPATH}
fi
if [ "$ngpu" -gt 0 ]; then  # a lease that trains on its CPU by mistake spends it all for nothing
  gpu=$($python -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')")
  if [ -z "$gpu" ]; then echo "lease_train.sh --ngpu $ngpu: torch sees no GPU here; stopping" >&2; exit 3; fi
else
  gpu="none (--ngpu 0: a rehearsal)"
fi
say "GPU: $gpu"
cp -r "$lease"/tree/. .
gunzip -f dump/lm/*.txt.gz
if [ "$asr" != none ]; then $python local/opus_pack.py unpack "$lease"/opus/pack* --meta "$lease"/opus/meta; fi
say "data ready: $(cat "$lease"/MANIFEST.txt)"

# timeout signals its whole process group (run.sh and the trainer): SIGINT ends the trainer as
# Ctrl-C would, with the saved epochs and checkpoint.pth of the last finished one in place
secs=$((minutes * 60))
rm -rf exp/asr_lease exp/lm_lease
if [ "$asr" != none ]; then
  PYTHON=$python timeout -s INT $secs bash run.sh --stage 9 --stop_stage 9 --ngpu $ngpu \
    --nthreads $nthreads --asr_config $asr_config --asr_exp exp/asr_lease \
    --asr_init ../../models/default/asr/valid.acc.ave.pth --asr_args "$asr_args" \
    > exp/asr_lease.log 2>&1 &
fi
if [ "$lm" != none ]; then
  lm_init=""; if [ "$lm" = continue ]; then lm_init=../../models/default/lm/valid.loss.ave.pth; fi
  PYTHON=$python timeout -s INT $secs bash run.sh --stage 7 --stop_stage 7 --ngpu $ngpu \
    --lm_nthreads 2 --lm_config $lm_config --lm_exp exp/lm_lease --lm_init "$lm_init" \
    --lm_args "$lm_args" > exp/lm_lease.log 2>&1 &
fi
wait || true              # the trainings end by timeout, as planned; a crash shows in the check below
say "training stopped"

result=$out/RESULT.txt
: > "$result"
average() {  # average EXP CRITERION N OUTNAME DTYPE: stage 10's script, then the weights to $OUT
  if [ ! -f "$1/checkpoint.pth" ]; then
    echo "$1: no epoch finished (see $1.log in logs.tar.gz)" | tee -a "$result"; return
  fi
  $python local/snapshot_model.py --exp "$1" --criterion "$2" --nbest "$3"
  $python - "$1" "$2" "$4" "$5" >> "$result" <<'PY'
import sys, torch
sys.path.insert(0, "local")
from espnet2.train.reporter import Reporter
from package import save_weights  # the cast stage 11 ships with (float16: the ASR's 24 MB halved)
exp, criterion, name, dtype = sys.argv[1:]
save_weights(f"{exp}/snapshot/{criterion}.ave.pth", name, dtype)
rep = Reporter()
rep.load_state_dict(torch.load(f"{exp}/checkpoint.pth", map_location="cpu", weights_only=False)["reporter"])
phase, key = criterion.split(".")
print(f"{exp}: {rep.get_epoch()} epochs; {criterion} per epoch:",
      " ".join(f"{rep.get_value(phase, key, e):.4f}" for e in range(1, rep.get_epoch() + 1)))
print(open(f"{exp}/snapshot/info.txt").read().strip())
PY
}
if [ "$asr" != none ]; then average exp/asr_lease valid.acc $nbest "$out/asr.pth" float16; fi
if [ "$lm" != none ]; then average exp/lm_lease valid.loss 3 "$out/lm.pth" float32; fi
echo "GPU: $gpu; $($python -c 'import torch; print("torch", torch.__version__)')" >> "$result"
echo "lease_train.sh --minutes $minutes --asr $asr --lm $lm --asr_config $asr_config --asr_args '$asr_args'" \
  "--lm_config $lm_config --lm_args '$lm_args'; $(cat "$lease"/MANIFEST.txt)" >> "$result"
tar czf "$out/logs.tar.gz" exp/*.log exp/*_lease/train.log exp/*_lease/config.yaml 2>/dev/null || true
say "done"
cat "$result"
