"""Audio helpers: 16 kHz resampling, noise and reverberation (AN4 sample noises and RIRs),
speed perturbation."""
from functools import lru_cache
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve, resample_poly

FS = 16000


def load16k(path) -> np.ndarray:
    x, fs = sf.read(str(path), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if fs != FS:
        g = gcd(fs, FS)
        x = resample_poly(x, FS // g, fs // g).astype("float32")
    return x


@lru_cache(maxsize=None)
def _clips(folder: str):
    return [load16k(p) for p in sorted(Path(folder).glob("*.wav"))]


def augment(x, rng, an4_dir, p_noise=0.4, p_reverb=0.3, snr=(5.0, 25.0)):
    """Reverberate with one of the AN4 RIRs and/or add AN4 noise at a random SNR.
    Returns the signal and a short tag describing what was done."""
    tag = []
    if rng.random() < p_reverb:
        rirs = _clips(str(Path(an4_dir) / "rirs"))
        h = rirs[rng.randrange(len(rirs))]
        h = h / (np.abs(h).max() + 1e-9)
        y = fftconvolve(x, h)[: len(x)]
        x = (y * (np.abs(x).max() / (np.abs(y).max() + 1e-9))).astype("float32")
        tag.append("rev")
    if rng.random() < p_noise:
        noises = _clips(str(Path(an4_dir) / "noise"))
        n = noises[rng.randrange(len(noises))]
        reps = int(np.ceil(len(x) / len(n))) + 1
        n = np.tile(n, reps)
        off = rng.randrange(len(n) - len(x))
        n = n[off: off + len(x)]
        s = rng.uniform(*snr)
        px, pn = np.mean(x ** 2) + 1e-10, np.mean(n ** 2) + 1e-10
        x = x + n * np.sqrt(px / (pn * 10 ** (s / 10)))
        tag.append(f"snr{s:.0f}")
    return x.astype("float32"), "+".join(tag) or "clean"


def speed_perturb(x, rng, p, lo=0.85, hi=1.15):
    """Kaldi-style speed perturbation: resample by a random factor, which moves tempo, pitch
    and formants together (a shorter or longer vocal tract: another speaker)."""
    if rng.random() >= p:
        return x
    f = rng.uniform(lo, hi)
    return resample_poly(x, 100, int(round(100 * f))).astype("float32")


def write(path, x, peak=None):
    """Write 16-bit 16 kHz audio (format from the suffix: .wav or .flac), peak-normalised."""
    m = np.abs(x).max() + 1e-9
    if peak is not None or m > 0.99:
        x = x * ((peak or 0.95) / m)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, FS, subtype="PCM_16")
    return len(x) / FS
