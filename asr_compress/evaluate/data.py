"""Test sets as Kaldi/ESPnet data directories.

A directory holds `wav.scp` (`<id> <audio path>`; relative paths resolve against the
directory) and `text` (`<id> <transcript>`), optionally `utt2spk` and `utt2group`
(a label per utterance, e.g. `seen`/`unseen` voice, reported per group).

A `wav.scp` entry may also be a Kaldi pipe, `<command> |`, whose standard output is the audio:
ESPnet's LibriSpeech data preparation writes `flac -c -d -s <file>.flac |`, so `data/test_clean`
of a LibriSpeech recipe is read as it is, not only the `dump/raw` copy its stage 3 makes. The
command runs with the shell, as Kaldi runs it (the data directory is the user's own), once per
utterance before anything is decoded, so its time is not counted as decoding time.
"""
from __future__ import annotations

import io
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np

from asr_compress.config import DataConfig, resolve_path
from asr_compress.errors import DataError


@dataclass(frozen=True)
class Pipe:
    """A Kaldi wav.scp pipe: a shell command that writes the audio to standard output."""

    command: str
    # where it was read, for errors: "utterance <id> in <wav.scp>"
    where: str = field(default="", compare=False)

    def __str__(self) -> str:
        return f"{self.command} |"


@dataclass
class Utterance:
    id: str
    audio: Union[Path, Pipe]
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
        where = f"utterance {uid} in {root / 'wav.scp'}"
        if spec.endswith("|"):
            audio = _pipe(spec[:-1].strip(), where)
        else:
            audio = Path(spec)
            audio = audio if audio.is_absolute() else (root / audio)
            if not audio.is_file():
                raise DataError(f"{audio}: audio file not found ({where})")
            audio = audio.resolve()
        utts.append(Utterance(uid, audio, texts[uid], spk.get(uid), group.get(uid)))
    if cfg.limit is not None:
        if cfg.limit <= 0:
            raise DataError(f"{key}.limit={cfg.limit}: must be a positive number of utterances or null")
        utts = utts[: cfg.limit]
    if not utts:
        raise DataError(f"{root / 'wav.scp'}: no utterances")
    return utts


def _pipe(command: str, where: str) -> Pipe:
    """A pipe whose program can be found, so that a missing `flac` fails before the model loads."""
    try:
        program = shlex.split(command)[0] if command else ""
    except ValueError as e:
        raise DataError(f"{where}: cannot parse the pipe `{command} |` ({e})") from e
    if not program:
        raise DataError(f"{where}: empty pipe command; valid: an audio file path or `<command> |`")
    if "=" not in program and shutil.which(program) is None:  # (an `A=b cmd` prefix is left to the shell)
        raise DataError(f"{where}: the pipe `{command} |` runs `{program}`, which is not installed or not on "
                        f"PATH (e.g. `apt install flac` for ESPnet's LibriSpeech data directories)")
    return Pipe(command, where)


def _run_pipe(pipe: Pipe) -> bytes:
    res = subprocess.run(pipe.command, shell=True, capture_output=True, check=False)
    if res.returncode != 0 or not res.stdout:
        err = res.stderr.decode(errors="replace").strip().splitlines()
        why = f"exit status {res.returncode}" if res.returncode else "no output"
        raise DataError(f"{pipe.where}: the pipe `{pipe}` failed ({why}{': ' + err[-1] if err else ''})")
    return res.stdout


def read_audio(path: Union[Path, Pipe], sample_rate: int) -> np.ndarray:
    """Mono float waveform at the model's sample rate (resampled if needed), from a file or a pipe."""
    import soundfile

    name = f"{path.where}: the output of `{path}`" if isinstance(path, Pipe) else str(path)
    source = io.BytesIO(_run_pipe(path)) if isinstance(path, Pipe) else str(path)
    try:
        wav, fs = soundfile.read(source, dtype="float64", always_2d=False)
    except Exception as e:
        raise DataError(f"{name}: unreadable audio ({type(e).__name__}: {str(e).splitlines()[0]})") from e
    if wav.ndim == 2:
        wav = wav.mean(axis=1)
    if wav.size == 0:
        raise DataError(f"{name}: empty audio")
    if fs != sample_rate:
        import torch
        import torchaudio.functional as AF

        wav = AF.resample(torch.from_numpy(wav), fs, sample_rate).numpy()
    return wav
