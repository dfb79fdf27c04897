"""Random espeak-ng speakers: variant files with their own pitch, formant scale and voice quality.

espeak-ng ships ~80 English-usable variants; the model had heard all of them and still made
twice as many errors on the unseen test voices (and on female voices in general: flite slt 19%,
espeak en-us+f2 20%, gbcwmd+f5 38% against 10-13% for most male ones). A variant file is a
speaker description (pitch range, per-formant frequency/height/width, roughness, breath,
flutter, synthesiser), so drawing those at random gives as many new speakers as wanted.

Variant k is a pure function of k (its own random stream), so `rv007` is the same speaker in
every set and on every machine; training uses one range of k and the novel-voice dev set
another, so that set measures speakers the model never heard.

espeak-ng reads variants only from its data folder, so the files go into a copy of the system's
`espeak-ng-data` (13 MB) under ROOT, passed to espeak-ng as `--path=ROOT`.
"""
import random
import re
import shutil
import subprocess
from pathlib import Path


def variant_name(k: int) -> str:
    return f"rv{k:03d}"


def variant_text(k: int) -> str:
    r = random.Random(104729 * (k + 1))
    female = r.random() < 0.5
    # one scale for all formants ~ vocal-tract length (espeak's female variants use 105-120%,
    # male 95-100%), then a little per-formant jitter so that speakers differ in vowel quality too
    scale = r.uniform(1.02, 1.20) if female else r.uniform(0.86, 1.04)
    base = r.uniform(145, 225) if female else r.uniform(70, 135)
    lines = ["language variant", f"name {variant_name(k)}",
             f"gender {'female' if female else 'male'}", "",
             f"pitch {base:.0f} {base * r.uniform(1.25, 1.9):.0f}"]
    for f in range(9):
        freq = 100 * scale * (r.uniform(0.95, 1.05) if 1 <= f <= 5 else 1.0)
        lines.append(f"formant {f} {freq:.0f} {r.uniform(70, 130):.0f} {r.uniform(80, 160):.0f}")
    lines.append(f"consonants {r.randint(80, 125)} {r.randint(80, 125)}")
    if r.random() < 0.35:
        lines.append(f"roughness {r.randint(1, 5)}")
    if r.random() < 0.25:
        lines.append("breath " + " ".join(str(r.randint(0, 4)) for _ in range(8)))
    if r.random() < 0.3:
        lines.append(f"flutter {r.randint(2, 25)}")
    if r.random() < 0.3:
        lines.append(f"voicing {r.randint(40, 110)}")
    if r.random() < 0.25:
        # espeak-ng's Klatt synthesiser modes (the klatt..klatt6 variants): another source model
        lines.append(f"klatt {r.choice([1, 2, 3, 4, 6])}")
    return "\n".join(lines) + "\n"


def system_data_dir() -> Path:
    """The espeak-ng-data folder the installed espeak-ng uses (it prints it with --version)."""
    out = subprocess.run(["espeak-ng", "--version"], check=True, capture_output=True, text=True).stdout
    m = re.search(r"Data at:\s*(\S+)", out)
    if not m:
        raise RuntimeError(f"espeak-ng --version did not name its data folder: {out!r}")
    return Path(m.group(1))


# espeak-ng lists at most this many voice and language files (its N_VOICES_LIST - 1) and silently
# drops the rest, after which a dropped voice is "not found" or, for a variant, quietly the plain
# accent
N_VOICES_LIST = 349


def write_voice_files(data: Path, files) -> None:
    """Write {path: text} into the espeak-ng-data copy `data`; refused before anything is written
    when espeak-ng would then hold N_VOICES_LIST files or more, so the copy stays as it was."""
    n = sum(1 for d in ("voices", "lang") for f in (data / d).rglob("*") if f.is_file())
    n += sum(1 for path in files if not path.exists())
    if n >= N_VOICES_LIST:
        raise ValueError(f"{data}: {n} voice and language files, espeak-ng lists only {N_VOICES_LIST}; "
                         "use a smaller --ra/--rv range or another --rv_root")
    for path, text in files.items():
        path.write_text(text)


def make_variants(root: Path, ks) -> Path:
    """Write variants `ks` into ROOT/espeak-ng-data (copied from the system once); returns ROOT.

    espeak-ng lists at most N_VOICES_LIST voice files and silently stops listing after that, so
    that even `-v en` is then "not found": the copy keeps only the English languages and, as
    variants, only the random ones (write_voice_files refuses more).
    """
    data = Path(root) / "espeak-ng-data"
    vdir = data / "voices" / "!v"
    if not data.is_dir():
        shutil.copytree(system_data_dir(), data)
        for lang in (data / "lang").rglob("*"):
            if lang.is_file() and not (lang.parent.name == "gmw" and lang.name.startswith("en")):
                lang.unlink()
        for v in vdir.iterdir():
            v.unlink()
        shutil.rmtree(data / "voices" / "mb", ignore_errors=True)   # MBROLA voice stubs
    write_voice_files(data, {vdir / variant_name(k): variant_text(k) for k in ks})
    return Path(root)
