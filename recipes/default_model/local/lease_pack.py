"""Pack one GPU lease: everything `local/lease_train.sh` needs there, in one carried folder.

    # here, from the recipe folder, after stages 4-6 and 8 (the round to train on, its LM text):
    python local/lease_pack.py --out lease
    # then the device tool, from the repository root (one call, ~9 minutes):
    #   carry: ["recipes/default_model/lease"]
    #   command: cd recipes/default_model && bash local/lease_train.sh --minutes 7

Why a folder of its own: the lent machine (device tool README, 2026-11) takes one copy of the
working tree per call, at most 64 MiB with the repository's tracked files (39 MB, most of it the
shipped model and its n-gram), has no network, and gives 15 minutes of device time per session, start included.
So one call must carry the ESPnet wheels its image lacks, the audio as Ogg Opus, the lists and
shape files of that audio, the token list and the LM text; this writes exactly that, sized to
what is left of the 64 MiB, and nothing the repository already carries (the shipped weights,
the recipe and its configs travel as tracked files).

The audio is a seeded random subset of dump/raw/train (every source in its share), filled up to
the budget in Opus; the dev set goes whole. The feature statistics are the shipped model's
(models/default/asr/feats_stats.npz): the lease continues the shipped weights, so their input
normalisation stays, and the candidate is packaged with the same file.
"""
import argparse
import gzip
import os
import random
import shutil
import subprocess
import sys
from multiprocessing import Pool
from pathlib import Path

from opus_pack import LIST_FILES, encode

MIB = 1 << 20
# pip's platform tags for the lent machine's Python 3.12 (device tool README's wheel command)
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64", "any"]
SETS = {"train": "train", "dev": "valid"}  # dump/raw folder -> exp/asr_stats folder


def travelling_bytes(repo_root: Path, skip: Path) -> int:
    """What the device tool sends besides the carried folder: tracked and untracked-not-ignored
    files (its README's rule), minus anything under `skip` (the lease folder itself)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=repo_root, check=True, capture_output=True).stdout
    skip = skip.resolve()
    total = 0
    for name in out.decode().split("\0"):
        p = (repo_root / name)
        if name and p.is_file() and skip not in p.resolve().parents:
            total += p.stat().st_size
    return total


def folder_bytes(d: Path) -> int:
    return sum(p.stat().st_size for p in d.rglob("*") if p.is_file())


def fetch_wheels(spec: Path, dest: Path, pip: str) -> None:
    """Binary wheels for the lent machine's Python 3.12; the few projects that publish only
    source archives (pure Python) are built into wheels here."""
    dest.mkdir(parents=True, exist_ok=True)
    reqs = [l.split("#")[0].strip() for l in spec.read_text().splitlines()]
    reqs = [r for r in reqs if r]
    tags = [a for p in PLATFORMS for a in ("--platform", p)]
    for req in reqs:
        name = req.split("==")[0].lower().replace("-", "_")
        if any(w.name.lower().startswith(name + "-") for w in dest.glob("*.whl")):
            continue
        got = subprocess.run([*pip.split(), "download", "-q", "--no-deps", "--only-binary=:all:",
                              "--python-version", "3.12", "--implementation", "cp", *tags,
                              "-d", str(dest), req], capture_output=True, text=True)
        if got.returncode != 0:
            before = set(dest.glob("*.whl"))
            built = subprocess.run([*pip.split(), "wheel", "-q", "--no-deps", "-w", str(dest), req],
                                   capture_output=True, text=True)
            if built.returncode != 0:
                raise SystemExit(f"{spec}: {req}: no wheel for Python 3.12 and building one failed:\n"
                                 f"{built.stderr.strip()[-800:]}")
            # a build here is for this machine's Python: only a pure-Python wheel runs there
            native = [w.name for w in set(dest.glob("*.whl")) - before if not w.name.endswith("-none-any.whl")]
            if native:
                for w in native:
                    (dest / w).unlink()
                raise SystemExit(f"{spec}: {req}: PyPI has no Python 3.12 x86-64 wheel and the "
                                 f"source builds a native one here ({native[0]}); pin a version that has one")
    print(f"{len(reqs)} wheels in {dest} ({folder_bytes(dest) / MIB:.1f} MiB)")


def filter_lines(src: Path, dst: Path, keep: set) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src) as f, open(dst, "w") as g:
        g.writelines(l for l in f if l.split(maxsplit=1)[0] in keep)


def gzip_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as f, gzip.open(dst, "wb", compresslevel=9) as g:
        shutil.copyfileobj(f, g)


def write_tree(tree: Path, stats: Path, bpedir: Path) -> None:
    """The work-area files the training stages read, at the paths run.sh reads them from."""
    (tree / "exp/asr_stats/train").mkdir(parents=True, exist_ok=True)
    shutil.copy(stats, tree / "exp/asr_stats/train/feats_stats.npz")
    shutil.copytree(bpedir, tree / bpedir, dirs_exist_ok=True)
    for name in ("train.txt", "valid.txt"):  # the LM text as stage 6 wrote it (gzip: 5 MB -> 1.5)
        gzip_copy(Path("dump/lm") / name, tree / "dump/lm" / f"{name}.gz")
    for part in ("train", "valid"):
        shutil.copy(Path("exp/lm_stats") / part / "text_shape", _mk(tree / "exp/lm_stats" / part) / "text_shape")


def _mk(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    return d


def line_bytes(part: str, stats_part: str) -> dict:
    """Bytes each utterance adds to the lists and shape files that travel with its audio."""
    cost = {}
    files = [Path(f"dump/raw/{part}/{f}") for f in LIST_FILES] + \
        [Path("exp/asr_stats") / stats_part / s for s in ("speech_shape", "text_shape")]
    for path in files:
        if path.exists():
            for line in path.read_bytes().splitlines(keepends=True):
                utt = line.split(maxsplit=1)[0].decode()
                cost[utt] = cost.get(utt, 0) + len(line)
    return cost


def pack_audio(out: Path, budget: int, level: float, seed: int, nj: int) -> tuple:
    """Opus-encode the dev set whole, then a shuffled order of dump/raw/train until `budget` bytes
    (audio, lists and shape files together) are written; lists and shape files follow the chosen
    utterances."""
    chosen, used = {}, 0
    with Pool(nj) as pool:
        for part in ("dev", "train"):  # dev first: it must fit whole
            lines = Path(f"dump/raw/{part}/wav.scp").read_text().splitlines()
            random.Random(seed).shuffle(lines)
            listed = line_bytes(part, SETS[part])
            d = _mk(out / "opus/pack1" / part)
            keep = chosen[part] = set()
            items = [(part, *l.split(maxsplit=1), level) for l in lines]
            for _, utt, data in pool.imap(encode, items, chunksize=8):
                cost = len(data) + listed.get(utt, 0) + len(f"{utt} audio/{part}/{utt}.wav\n")
                if used + cost > budget:
                    if part == "dev":
                        raise SystemExit("lease_pack.py --budget_mb: no room for the dev set")
                    break  # leaving the with-block stops the workers still encoding
                (d / f"{utt}.opus").write_bytes(data)
                keep.add(utt)
                used += cost
    for part, stats_part in SETS.items():
        meta = out / "opus/meta/dump/raw" / part
        for f in LIST_FILES:
            if Path(f"dump/raw/{part}/{f}").exists():
                filter_lines(Path(f"dump/raw/{part}/{f}"), meta / f, chosen[part])
        (meta / "wav.scp").write_text("".join(f"{u} audio/{part}/{u}.wav\n" for u in sorted(chosen[part])))
        for shape in ("speech_shape", "text_shape"):
            filter_lines(Path("exp/asr_stats") / stats_part / shape,
                         out / "tree/exp/asr_stats" / stats_part / shape, chosen[part])
    with open(out / "tree/exp/asr_stats/train/speech_shape") as f:
        hours = sum(int(l.split()[1].split(",")[0]) for l in f) / 16000 / 3600
    opus = folder_bytes(out / "opus/pack1")
    return len(chosen["train"]), len(chosen["dev"]), hours, opus


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("lease"), help="the folder to carry (git-ignored)")
    ap.add_argument("--budget_mb", type=float, default=62.0,
                    help="MiB for everything that travels (the device tool takes 64): the "
                         "repository's files, the wheels and lists, then audio up to the rest")
    ap.add_argument("--level", type=float, default=0.95,
                    help="libsndfile Opus level: 0.95 is ~21 kbps, 9 MB per hour of speech, log-mel "
                         "within 0.43 (mean abs, speech frames); 0.98 is 6 MB/h at 0.62")
    ap.add_argument("--seed", type=int, default=0, help="the shuffle that picks training utterances")
    ap.add_argument("--wheels", type=Path, default=Path("local/lease_wheels.txt"))
    ap.add_argument("--pip", default=f"{sys.executable} -m pip",
                    help="a pip that can download (the recipe's uv environment has none)")
    ap.add_argument("--stats", type=Path, default=Path("../../models/default/asr/feats_stats.npz"))
    ap.add_argument("--bpedir", type=Path, default=Path("data/token_list/bpe_unigram300"))
    ap.add_argument("--nj", type=int, default=os.cpu_count())
    a = ap.parse_args()
    for need in (Path("dump/raw/train/wav.scp"), Path("exp/asr_stats/train/speech_shape"),
                 Path("dump/lm/train.txt"), Path("exp/lm_stats/train/text_shape"), a.stats, a.bpedir):
        if not need.exists():
            raise SystemExit(f"lease_pack.py: {need} is missing; run it from recipes/default_model "
                             "after run.sh stages 4-6 and 8")
    if a.out.exists():
        for sub in ("opus", "tree"):  # the wheels stay: downloading them again changes nothing
            shutil.rmtree(a.out / sub, ignore_errors=True)
    fetch_wheels(a.wheels, a.out / "wheels", a.pip)
    write_tree(a.out / "tree", a.stats, a.bpedir)
    fixed = travelling_bytes(Path("../.."), a.out) + folder_bytes(a.out)
    room = int(a.budget_mb * MIB - fixed) - 4096  # MANIFEST.txt, written last
    if room <= 0:
        raise SystemExit(f"lease_pack.py --budget_mb {a.budget_mb}: the repository and wheels take "
                         f"{fixed / MIB:.1f} MiB, no room for audio")
    n_train, n_dev, hours, used = pack_audio(a.out, room, a.level, a.seed, a.nj)
    total = travelling_bytes(Path("../.."), a.out) + folder_bytes(a.out)
    summary = (f"train {n_train} utterances ({hours:.2f} h), dev {n_dev}, Opus {used / MIB:.1f} MiB; "
               f"travelling {total / MIB:.1f} MiB of {a.budget_mb:g} (level {a.level}, seed {a.seed})")
    (a.out / "MANIFEST.txt").write_text(summary + "\n")
    print(summary)
    if total > a.budget_mb * MIB:
        raise SystemExit(f"lease_pack.py: {total / MIB:.1f} MiB would travel, over --budget_mb {a.budget_mb}")


if __name__ == "__main__":
    main()
