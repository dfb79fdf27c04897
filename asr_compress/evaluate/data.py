"""Test sets as Kaldi/ESPnet data directories.

A directory holds `wav.scp` (`<id> <audio path>`; relative paths resolve against the
directory) and `text` (`<id> <transcript>`), optionally `utt2spk` and `utt2group`
(a label per utterance, e.g. `seen`/`unseen` voice, reported per group). Pipes
(`... |`) are not supported, as in ESPnet's SoundScpReader.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from asr_compress.config import DataConfig, resolve_path
from asr_compress.errors import DataError


@dataclass
class Utterance:
    id: str
    audio: Path
    ref: str
    speaker: Optional[str] = None
    group: Optional[str] = None


def _read_table(path: Path, required: bool) -> Dict[str, str]:
    if not path.is_file():
        if required:
            raise DataError(f"{path}: file not found (a Kaldi data directory needs wav.scp and text)")
        return {}
    table: Dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split(maxsplit=1)
            if len(parts) == 1 and path.name != "text":
                raise DataError(f"{path}:{lineno}: expected '<utterance id> <value>', got '{line}'")
            table[parts[0]] = parts[1] if len(parts) > 1 else ""
    return table


def load_test_set(cfg: DataConfig, key: str = "data", require_text: bool = True) -> List[Utterance]:
    """Read and check a data directory; every audio file must exist. `key` names the config node in
    errors; without `require_text` (calibration audio) a missing `text` file means empty transcripts."""
    root = resolve_path(cfg.dir)
    if not root.is_dir():
        raise DataError(f"{root}: {key}.dir is not a directory")
    wavs = _read_table(root / "wav.scp", True)
    texts = _read_table(root / "text", require_text)
    if not require_text:
        texts = {u: texts.get(u, "") for u in wavs}
    spk = _read_table(root / "utt2spk", False)
    group = _read_table(root / "utt2group", False)
    missing = [u for u in wavs if u not in texts]
    if missing:
        raise DataError(f"{root / 'text'}: no transcript for {len(missing)} utterances of wav.scp (first: {missing[0]})")
    utts = []
    for uid in sorted(wavs):
        spec = wavs[uid].strip()
        if spec.endswith("|"):
            raise DataError(f"{root / 'wav.scp'}: utterance {uid} uses a pipe; give an audio file path")
        audio = Path(spec)
        audio = audio if audio.is_absolute() else (root / audio)
        if not audio.is_file():
            raise DataError(f"{audio}: audio file not found (utterance {uid} in {root / 'wav.scp'})")
        utts.append(Utterance(uid, audio.resolve(), texts[uid], spk.get(uid), group.get(uid)))
    if cfg.limit is not None:
        if cfg.limit <= 0:
            raise DataError(f"{key}.limit={cfg.limit}: must be a positive number of utterances or null")
        utts = utts[: cfg.limit]
    if not utts:
        raise DataError(f"{root / 'wav.scp'}: no utterances")
    return utts


def read_audio(path: Path, sample_rate: int) -> np.ndarray:
    """Mono float waveform at the model's sample rate (resampled if needed)."""
    import soundfile

    try:
        wav, fs = soundfile.read(str(path), dtype="float64", always_2d=False)
    except Exception as e:
        raise DataError(f"{path}: unreadable audio ({type(e).__name__}: {str(e).splitlines()[0]})") from e
    if wav.ndim == 2:
        wav = wav.mean(axis=1)
    if wav.size == 0:
        raise DataError(f"{path}: empty audio")
    if fs != sample_rate:
        import torch
        import torchaudio.functional as AF

        wav = AF.resample(torch.from_numpy(wav), fs, sample_rate).numpy()
    return wav
