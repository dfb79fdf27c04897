"""Test sets as Kaldi/ESPnet data directories.

A directory holds `wav.scp` (`<id> <audio path>`; relative paths resolve against the
directory) and `text` (`<id> <transcript>`), optionally `utt2spk` and `utt2group`
(a label per utterance, e.g. `seen`/`unseen` voice, reported per group).

A `wav.scp` entry may also be a Kaldi pipe, `<command> |`, whose standard output is the audio:
ESPnet's LibriSpeech data preparation writes `flac -c -d -s <file>.flac |`, so `data/test_clean`
of a LibriSpeech recipe is read as it is, not only the `dump/raw` copy its stage 3 makes. The
command runs with the shell, as Kaldi runs it (the data directory is the user's own), once per
utterance before anything is decoded, so its time is not counted as decoding time.

With a Kaldi `segments` file (`<utterance> <recording> <start s> <end s>`, as TED-LIUM or AMI
data directories have), wav.scp names recordings and each utterance is its part of one; a file is
read from the segment's first frame to its last, a piped recording once for its run of segments.
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


@dataclass(frozen=True)
class Segment:
    """Part of a recording, from a Kaldi `segments` line (`<utt> <recording> <start> <end>`, seconds;
    end -1 = to the end of the recording)."""

    source: Union[Path, Pipe]
    start: float
    end: float
    where: str = field(default="", compare=False)

    def __str__(self) -> str:
        return f"{self.source} [{self.start:g}s-{'end' if self.end < 0 else f'{self.end:g}s'}]"


@dataclass
class Utterance:
    id: str
    audio: Union[Path, Pipe, Segment]
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
    segmented = (root / "segments").is_file()
    kind = "recording" if segmented else "utterance"
    sources = {rid: _source(spec.strip(), root, f"{kind} {rid} in {root / 'wav.scp'}") for rid, spec in wavs.items()}
    audio_of = _read_segments(root / "segments", sources) if segmented else sources
    texts = _read_table(root / "text", require_text)
    if not require_text:
        texts = {u: texts.get(u, "") for u in audio_of}
    spk = _read_table(root / "utt2spk", False)
    group = _read_table(root / "utt2group", False)
    missing = [u for u in audio_of if u not in texts]
    if missing:
        raise DataError(f"{root / 'text'}: no transcript for {len(missing)} utterances of "
                        f"{'segments' if segmented else 'wav.scp'} (first: {missing[0]})")
    utts = [Utterance(uid, audio_of[uid], texts[uid], spk.get(uid), group.get(uid)) for uid in sorted(audio_of)]
    if cfg.limit is not None:
        if cfg.limit <= 0:
            raise DataError(f"{key}.limit={cfg.limit}: must be a positive number of utterances or null")
        utts = utts[: cfg.limit]
    if not utts:
        raise DataError(f"{root / 'wav.scp'}: no utterances")
    return utts


def _source(spec: str, root: Path, where: str) -> Union[Path, Pipe]:
    """A wav.scp value: an audio file (relative to the data directory) or a pipe."""
    if spec.endswith("|"):
        return _pipe(spec[:-1].strip(), where)
    audio = Path(spec)
    audio = audio if audio.is_absolute() else (root / audio)
    if not audio.is_file():
        raise DataError(f"{audio}: audio file not found ({where})")
    return audio.resolve()


def _read_segments(path: Path, sources: Dict[str, Union[Path, Pipe]]) -> Dict[str, Segment]:
    """Kaldi `segments`: utterances as parts of the recordings wav.scp names (TED-LIUM, AMI, ...)."""
    out: Dict[str, Segment] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            where = f"{path}:{lineno}"
            if len(fields) != 4:
                raise DataError(f"{where}: expected '<utterance id> <recording id> <start s> <end s>', got '{line.strip()}'")
            uid, rid, start, end = fields
            if rid not in sources:
                raise DataError(f"{where}: recording {rid} of utterance {uid} is not in {path.parent / 'wav.scp'}")
            try:
                t0, t1 = float(start), float(end)
            except ValueError:
                raise DataError(f"{where}: start and end must be seconds, got '{start}' '{end}'") from None
            if t0 < 0 or (t1 != -1 and t1 <= t0):
                raise DataError(f"{where}: utterance {uid} from {start} s to {end} s; valid: 0 <= start < end, "
                                "or end -1 (to the end of the recording)")
            out[uid] = Segment(sources[rid], t0, t1, f"utterance {uid} ({where})")
    return out


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


# the last piped recording's output: the segments of one recording are read one after another
_piped_recording: Dict[Pipe, bytes] = {}


def _recording_bytes(pipe: Pipe) -> bytes:
    if pipe not in _piped_recording:
        _piped_recording.clear()
        _piped_recording[pipe] = _run_pipe(pipe)
    return _piped_recording[pipe]


def read_audio(path: Union[Path, Pipe, Segment], sample_rate: int) -> np.ndarray:
    """Mono float waveform at the model's sample rate (resampled if needed), from a file, a pipe or
    a segment of either."""
    import soundfile

    segment = path if isinstance(path, Segment) else None
    src = segment.source if segment else path
    if segment is not None:
        name = f"{segment.where}: {segment}"
    else:
        name = f"{path.where}: the output of `{path}`" if isinstance(path, Pipe) else str(path)
    if isinstance(src, Pipe):
        source = io.BytesIO(_recording_bytes(src) if segment else _run_pipe(src))
    else:
        source = str(src)
    try:
        if segment is None:
            wav, fs = soundfile.read(source, dtype="float64", always_2d=False)
        else:  # seconds to frames at the recording's own rate, before any resampling
            fs = soundfile.info(source).samplerate
            if isinstance(source, io.BytesIO):
                source.seek(0)
            start, stop = round(segment.start * fs), (None if segment.end < 0 else round(segment.end * fs))
            wav, fs = soundfile.read(source, start=start, stop=stop, dtype="float64", always_2d=False)
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
