"""Stage 3: real speech from ../../../shared/data into Kaldi-style data directories.

    python local/prepare_real.py --shared ../../../shared/data --out data

LJ Speech part (385 utts, fixed split by sorted id: 260 train / 25 dev / last 100 held out),
train part also once more with noise/reverberation, and with --lj_more N in N further copies
(`data/real_lj_more`), each speed-perturbed as well. Free Spoken Digits concatenated into
connected-digit strings of 2-7 digits; speaker `theo` is held out entirely for evaluation;
for the other speakers, recording indices 0-4 give dev strings and 5-49 training strings.
With Debian's pocketsphinx-testdata installed, `data/real_new_speakers`: its 10 real utterances
(5 LibriVox sentences, 5 playing-card names), two speakers no training set has; evaluation only.
"""
import argparse
import csv
import random
from pathlib import Path

import numpy as np

from audio import augment, load16k, speed_perturb, write
from prepare_text import lj_split
from textnorm import normalize

DIGITS = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"]
HELD_OUT_SPEAKER = "theo"


def write_dir(d: Path, rows):
    """rows: (utt, path, text, spk, voice, group)"""
    d.mkdir(parents=True, exist_ok=True)
    rows = sorted(rows)
    for name, col in (("wav.scp", 1), ("text", 2), ("utt2spk", 3), ("utt2voice", 4),
                      ("utt2group", 5)):
        (d / name).write_text("".join(f"{r[0]} {r[col]}\n" for r in rows))
    print(d, len(rows))


def lj_more_rows(ids, n, lj_dir: Path, out: Path, an4: Path, meta, seed):
    """N more copies of the LJ training part, to weight the only real sentence-level speech up
    against ~19 h of synthetic voices (it is ~5% of the audio; the held-out LJ WER is the one that
    fell behind when the synthetic share grew). A plain duplicate would only repeat the same
    samples; each copy is speed-perturbed (0.9-1.1, Kaldi's range for real speech: another vocal
    tract length) and gets its own noise/reverberation draw. Its own RNG per copy, so that the
    older sets, drawn from the main RNG, stay bit-for-bit what they were."""
    rows = []
    for k in range(1, n + 1):
        rng = random.Random(seed * 1000 + k)
        for i in ids:
            x = speed_perturb(load16k(lj_dir / "wavs" / f"{i}.flac"), rng, 1.0, 0.9, 1.1)
            x, _ = augment(x, rng, an4, 0.7, 0.5)
            p = (out / "wav" / f"{k}-{i}.wav").resolve()
            write(p, x)
            rows.append((f"ljspeech-more{k}-{i}", str(p), meta[i], "ljspeech", "real_ljspeech",
                         "real"))
    return rows


def pocketsphinx_rows(test_data: Path):
    """The real utterances of Debian's pocketsphinx-testdata (BSD; `dpkg -L pocketsphinx-testdata`):
    two speakers heard nowhere in training, the only real speech here besides LJ Speech's reader
    that is read sentences. Transcription lines are `<s> words </s> (file id)`."""
    rows = []
    for sub, listing, spk in (("librivox", "transcription", "librivox_austen"),
                              ("cards", "cards.transcription", "cards")):
        for line in (test_data / sub / listing).read_text().splitlines():
            words, _, fid = line.rpartition("(")
            fid = Path(fid.strip(" )")).name  # cards lists "001", librivox the file's stem
            text = normalize(words.replace("<s>", " ").replace("</s>", " "))
            rows.append((f"{spk}-{fid}", str((test_data / sub / f"{fid}.wav").resolve()), text,
                         spk, "real_" + spk, "real"))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n_digit_train", type=int, default=700)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--pocketsphinx", type=Path, default=Path("/usr/share/pocketsphinx/test/data"),
                    help="pocketsphinx-testdata's folder: data/real_new_speakers, or a note if absent")
    ap.add_argument("--lj_more", type=int, default=0,
                    help="further speed-perturbed, noised copies of the LJ training part")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    an4 = a.shared / "mini_an4"
    lj_dir = a.shared / "ljspeech_part1"
    meta = {r[0]: normalize(r[2]) for r in csv.reader(open(lj_dir / "metadata.csv"),
                                                      delimiter="|", quoting=csv.QUOTE_NONE)}
    tr, dev, ev = lj_split(a.shared)

    def lj_rows(ids):
        return [(f"ljspeech-{i}", str((lj_dir / "wavs" / f"{i}.flac").resolve()), meta[i],
                 "ljspeech", "real_ljspeech", "real") for i in ids]

    write_dir(a.out / "real_lj_train", lj_rows(tr))
    write_dir(a.out / "real_lj_dev", lj_rows(dev))
    write_dir(a.out / "real_heldout_lj", lj_rows(ev))
    aug_rows = []
    for i in tr:
        x, tag = augment(load16k(lj_dir / "wavs" / f"{i}.flac"), rng, an4, 0.7, 0.5)
        p = (a.out / "real_lj_aug/wav" / f"{i}.wav").resolve()
        write(p, x)
        aug_rows.append((f"ljspeech-aug-{i}", str(p), meta[i], "ljspeech", "real_ljspeech",
                         "real"))
    write_dir(a.out / "real_lj_aug", aug_rows)

    # Free Spoken Digits: {digit}_{speaker}_{index}.flac, 8 kHz
    rec = {}
    for f in sorted((a.shared / "fsdd/recordings").glob("*.flac")):
        d, spk, idx = f.stem.split("_")
        rec.setdefault(spk, []).append((int(d), int(idx), f))

    def digit_set(name, speakers, idx_ok, n, p_aug):
        rows = []
        for k in range(n):
            spk = rng.choice(speakers)
            pool = [r for r in rec[spk] if idx_ok(r[1])]
            picks = [rng.choice(pool) for _ in range(rng.randint(2, 7))]
            parts = []
            for _, _, f in picks:
                x = load16k(f)
                parts += [x, np.zeros(int(16000 * rng.uniform(0.03, 0.25)), "float32")]
            x = np.concatenate([np.zeros(2400, "float32")] + parts)
            tag = "clean"
            if p_aug:
                x, tag = augment(x, rng, an4, p_aug, p_aug / 2, (10, 30))
            p = (a.out / name / "wav" / f"{spk}-{name}-{k:04d}.wav").resolve()
            write(p, x)
            text = " ".join(DIGITS[d] for d, _, _ in picks)
            rows.append((f"fsdd_{spk}-{name}-{k:04d}", str(p), text, f"fsdd_{spk}",
                         "real_fsdd_" + spk, "real"))
        write_dir(a.out / name, rows)

    train_spk = sorted(s for s in rec if s != HELD_OUT_SPEAKER)
    digit_set("real_digits_train", train_spk, lambda i: i >= 5, a.n_digit_train, 0.4)
    digit_set("real_digits_dev", train_spk, lambda i: i < 5, 30, 0.0)
    digit_set("real_heldout_digits", [HELD_OUT_SPEAKER], lambda i: True, 100, 0.0)
    if (a.pocketsphinx / "librivox").is_dir():  # no random draws: the sets above do not change
        write_dir(a.out / "real_new_speakers", pocketsphinx_rows(a.pocketsphinx))
    else:
        print(f"no {a.pocketsphinx / 'librivox'}: data/real_new_speakers not written "
              "(apt-get install pocketsphinx-testdata)")
    if a.lj_more > 0:  # last, and on its own RNGs: the sets above do not change with it
        more = a.out / "real_lj_more"
        write_dir(more, lj_more_rows(tr, a.lj_more, lj_dir, more, an4, meta, a.seed))


if __name__ == "__main__":
    main()
