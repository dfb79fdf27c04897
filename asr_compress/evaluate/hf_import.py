"""Write a Hugging Face `datasets` split as a Kaldi data directory, for `data.dir=`.

    .venv/bin/python -m asr_compress.evaluate.hf_import openslr/librispeech_asr --config clean --split test \\
        --id-column id --speaker-column speaker_id --out data/librispeech_test_clean
    .venv/bin/asr-compress data.name=librispeech_test_clean data.dir=data/librispeech_test_clean

Why a one-off import rather than a live loader: every study, sweep cell and benchmark then reads
the same files with the same reader (soundfile, resampled to the model's rate), a sweep does not
touch the hub once per cell, and the directory can be checked, limited and cited like any other.
Audio is copied as stored (LibriSpeech: FLAC) without decoding through `datasets`, whose audio
decoding needs torchcodec; transcripts are copied as they are (scoring normalises them).
DATASET is a hub name (needs the network) or a folder written by `save_to_disk`.
"""
from __future__ import annotations

import argparse
import io
import re
from pathlib import Path
from typing import Optional

from asr_compress.errors import DataError


def _load_split(dataset: str, split: str, config: Optional[str]):
    import datasets

    if Path(dataset).is_dir():
        loaded = datasets.load_from_disk(dataset)
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise DataError(f"{dataset}: no split '{split}' (splits: {', '.join(loaded)})")
            return loaded[split]
        return loaded
    try:
        return datasets.load_dataset(dataset, config, split=split)
    except Exception as e:  # unknown name/split/config (datasets names the valid ones), no network
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise DataError(f"{dataset}: not a save_to_disk folder, and loading it from the hub failed "
                        f"({type(e).__name__}: {first})") from e


def _audio_bytes(value, row: int) -> tuple[bytes, str]:
    """(encoded bytes, file suffix) of one audio cell: {bytes, path} as stored, or a path."""
    if isinstance(value, str):
        value = {"bytes": None, "path": value}
    if not isinstance(value, dict) or not (value.get("bytes") or value.get("path")):
        raise DataError(f"row {row}: audio cell is neither {{bytes, path}} nor a path: {type(value).__name__}")
    data = value.get("bytes") or Path(value["path"]).read_bytes()
    suffix = Path(value.get("path") or "").suffix.lower() or ".flac"
    return data, suffix


def import_split(dataset: str, split: str, out: Path, config: Optional[str] = None,
                 audio_column: str = "audio", text_column: str = "text",
                 id_column: Optional[str] = None, speaker_column: Optional[str] = None,
                 limit: Optional[int] = None) -> int:
    """Write OUT/{wav.scp,text[,utt2spk]} and OUT/audio/*; return the number of utterances."""
    import datasets
    import soundfile

    ds = _load_split(dataset, split, config)
    for what, col in (("audio", audio_column), ("text", text_column), ("id", id_column), ("speaker", speaker_column)):
        if col is not None and col not in ds.column_names:
            raise DataError(f"{dataset} [{split}]: no {what} column '{col}' (columns: {', '.join(ds.column_names)})")
    if isinstance(ds.features[audio_column], datasets.Audio):
        ds = ds.cast_column(audio_column, datasets.Audio(decode=False))
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    (out / "audio").mkdir(parents=True, exist_ok=True)
    scp, text, spk, seen = [], [], [], set()
    for i, row in enumerate(ds):
        uid = re.sub(r"\s+", "_", str(row[id_column])) if id_column else f"{split}-{i:06d}"
        if uid in seen:
            raise DataError(f"{dataset} [{split}] row {i}: id '{uid}' repeats; pick a unique --id-column")
        seen.add(uid)
        data, suffix = _audio_bytes(row[audio_column], i)
        try:  # reject unreadable audio here, not in the middle of a sweep
            soundfile.info(io.BytesIO(data))
        except Exception as e:
            raise DataError(f"{dataset} [{split}] row {i} ({uid}): unreadable audio ({e})") from e
        (out / "audio" / f"{uid}{suffix}").write_bytes(data)
        scp.append(f"{uid} audio/{uid}{suffix}\n")
        text.append(f"{uid} {' '.join(str(row[text_column]).split())}\n")
        if speaker_column:
            spk.append(f"{uid} {row[speaker_column]}\n")
    for name, lines in (("wav.scp", scp), ("text", text), ("utt2spk", spk)):
        if lines:
            (out / name).write_text("".join(lines), encoding="utf-8")
    return len(scp)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", help="hub name (e.g. openslr/librispeech_asr) or a save_to_disk folder")
    ap.add_argument("--split", required=True, help="e.g. test (LibriSpeech config clean) or test.clean (config all)")
    ap.add_argument("--config", default=None, help="dataset configuration name, if it has several")
    ap.add_argument("--out", type=Path, required=True, help="data directory to write")
    ap.add_argument("--audio-column", default="audio")
    ap.add_argument("--text-column", default="text")
    ap.add_argument("--id-column", default=None, help="utterance ids (default: SPLIT-000000, ...)")
    ap.add_argument("--speaker-column", default=None, help="writes utt2spk")
    ap.add_argument("--limit", type=int, default=None, help="first N rows only")
    a = ap.parse_args(argv)
    try:
        n = import_split(a.dataset, a.split, a.out, a.config, a.audio_column, a.text_column,
                         a.id_column, a.speaker_column, a.limit)
    except DataError as e:
        raise SystemExit(f"error: {e}") from None
    print(f"{a.out}: {n} utterances (wav.scp, text{', utt2spk' if a.speaker_column else ''}); "
          f"run with data.dir={a.out}")


if __name__ == "__main__":
    main()
