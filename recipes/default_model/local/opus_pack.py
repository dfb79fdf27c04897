"""Move the training audio to a GPU machine that only takes small uploads (how the shipped model
was trained: the lent machine accepted 64 MiB per call and no network).

    # here: Ogg Opus at ~21 kbps (libsndfile level 0.95), split into folders of at most N MB each
    python local/opus_pack.py pack --out opus --max_mb 24 60 60
    # there, from the recipe folder, after copying the folders over: 16-bit WAV again, and
    # dump/raw/{train,dev}/wav.scp pointing at it (the rest of dump/raw is copied unchanged)
    python local/opus_pack.py unpack opus/pack1 opus/pack2 opus/pack3 --meta opus/meta

Opus is lossy: the model trained on decoded Opus audio (log-mel within a few percent of the
original where the speech is) and is tested on the original FLAC/WAV. Audio goes to
audio/{train,dev}/UTT.wav, so that utterance ids repeated across sets cannot collide.
"""
import argparse
import io
import os
from multiprocessing import Pool
from pathlib import Path

import soundfile as sf

SETS = ("train", "dev")
LIST_FILES = ("text", "utt2spk", "utt2voice", "utt2group")


def encode(item):
    part, utt, path, level = item
    x, sr = sf.read(path, dtype="float32")
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="OGG", subtype="OPUS", compression_level=level)
    return part, utt, buf.getvalue()


def pack(a):
    items = []
    for part in SETS:
        src = Path("dump/raw") / part
        meta = a.out / "meta" / "dump/raw" / part
        meta.mkdir(parents=True, exist_ok=True)
        for f in LIST_FILES:
            (meta / f).write_text((src / f).read_text())
        lines = (src / "wav.scp").read_text().splitlines()
        (meta / "wav.scp").write_text("".join(f"{l.split()[0]} audio/{part}/{l.split()[0]}.wav\n" for l in lines))
        items += [(part, *l.split(maxsplit=1), a.level) for l in lines]
    # checked here, not in the workers: an exception there would leave the pool waiting
    rates = ((p, sf.info(p).samplerate) for _, _, p, _ in items)  # one header read per file
    wrong = [(p, rate) for p, rate in rates if rate != 16000]
    if wrong:
        raise SystemExit(f"{wrong[0][0]}: {wrong[0][1]} Hz, expected 16000 (the recipe's rate); "
                         f"{len(wrong)} file(s) in dump/raw/*/wav.scp")
    caps = [mb * 1e6 for mb in a.max_mb]
    k, used = 0, 0.0
    with Pool(a.nj) as pool:
        for part, utt, data in pool.imap(encode, items, chunksize=16):
            if used + len(data) > caps[min(k, len(caps) - 1)]:
                k, used = k + 1, 0.0
            d = a.out / f"pack{k + 1}" / part
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{utt}.opus").write_bytes(data)
            used += len(data)
    print(f"{len(items)} utterances in {k + 1} folders under {a.out}")


def decode(item):
    src, dst = item
    x, sr = sf.read(src, dtype="int16")
    sf.write(dst, x, sr, subtype="PCM_16")
    return len(x) / sr


def unpack(a):
    items = []
    for folder in a.packs:
        for part in SETS:
            out = Path("audio") / part
            out.mkdir(parents=True, exist_ok=True)
            items += [(p, out / f"{p.stem}.wav") for p in sorted((folder / part).glob("*.opus"))]
    with Pool(a.nj) as pool:
        secs = sum(pool.map(decode, items, chunksize=32))
    print(f"{len(items)} utterances, {secs / 3600:.2f} h decoded into audio/")
    if a.meta:
        for part in SETS:
            dst = Path("dump/raw") / part
            dst.mkdir(parents=True, exist_ok=True)
            for f in (*LIST_FILES, "wav.scp"):
                (dst / f).write_text((a.meta / "dump/raw" / part / f).read_text())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--level", type=float, default=0.95, help="libsndfile compression level (0.95: ~21 kbps)")
    p.add_argument("--max_mb", type=float, nargs="+", default=[60.0], help="size of each folder; the last repeats")
    p.add_argument("--nj", type=int, default=2)
    u = sub.add_parser("unpack")
    u.add_argument("packs", type=Path, nargs="+")
    u.add_argument("--meta", type=Path, help="the pack's meta folder: writes dump/raw/{train,dev}")
    u.add_argument("--nj", type=int, default=os.cpu_count())
    a = ap.parse_args()
    pack(a) if a.cmd == "pack" else unpack(a)


if __name__ == "__main__":
    main()
