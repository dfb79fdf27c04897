"""Importing a Hugging Face `datasets` split as a Kaldi data directory (offline: save_to_disk)."""
import io

import numpy as np
import pytest
import soundfile as sf

from asr_compress.config import DataConfig
from asr_compress.errors import DataError
from asr_compress.evaluate.data import load_test_set, read_audio
from asr_compress.evaluate.hf_import import import_split, main

datasets = pytest.importorskip("datasets")


def _flac(n, rate=16000, seed=0):
    x = (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, x, rate, format="FLAC")
    return x, buf.getvalue()


@pytest.fixture
def saved(tmp_path):
    """A DatasetDict as a hub dataset looks after save_to_disk: an Audio column, ids, speakers."""
    (x0, b0), (x1, b1) = _flac(1600, seed=0), _flac(2400, rate=8000, seed=1)
    ds = datasets.Dataset.from_dict({
        "audio": [{"bytes": b0, "path": "a.flac"}, {"bytes": b1, "path": "b.flac"}],
        "text": ["HELLO  WORLD", "good\tbye"], "id": ["1272-128104-0000", "1272 128104 0001"],
        "speaker_id": [1272, 1272]})
    ds = ds.cast_column("audio", datasets.Audio(decode=False))
    path = tmp_path / "hf"
    datasets.DatasetDict({"test.clean": ds}).save_to_disk(str(path))
    return str(path), (x0, x1)


def test_import_writes_a_data_dir_the_loader_reads(saved, tmp_path):
    path, (x0, x1) = saved
    out = tmp_path / "data"
    n = import_split(path, "test.clean", out, id_column="id", speaker_column="speaker_id")
    assert n == 2
    utts = load_test_set(DataConfig(name="ls", dir=str(out)))
    assert [u.id for u in utts] == ["1272-128104-0000", "1272_128104_0001"]  # whitespace-free ids
    assert [u.ref for u in utts] == ["HELLO WORLD", "good bye"]
    assert [u.speaker for u in utts] == ["1272", "1272"]
    assert np.allclose(read_audio(utts[0].audio, 16000), x0, atol=1e-4)  # FLAC copied as stored
    assert len(read_audio(utts[1].audio, 16000)) == 2 * len(x1)  # 8 kHz, resampled on reading


def test_import_default_ids_and_limit(saved, tmp_path):
    path, _ = saved
    assert import_split(path, "test.clean", tmp_path / "d", limit=1) == 1
    assert (tmp_path / "d" / "wav.scp").read_text() == "test.clean-000000 audio/test.clean-000000.flac\n"
    assert not (tmp_path / "d" / "utt2spk").exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"split": "test.other"}, "no split 'test.other' (splits: test.clean)"),
    ({"text_column": "sentence"}, "no text column 'sentence' (columns: audio, text, id, speaker_id)"),
    ({"id_column": "speaker_id"}, "id '1272' repeats"),
])
def test_import_bad_inputs_name_the_choices(saved, tmp_path, kwargs, message):
    path, _ = saved
    args = {"split": "test.clean", **kwargs}
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        import_split(path, args.pop("split"), tmp_path / "d", **args)


def test_cli_exits_with_one_line(saved, tmp_path, capsys):
    path, _ = saved
    with pytest.raises(SystemExit, match="error: .*no audio column 'wav'"):
        main([path, "--split", "test.clean", "--out", str(tmp_path / "d"), "--audio-column", "wav"])
    main([path, "--split", "test.clean", "--out", str(tmp_path / "d")])
    assert "2 utterances" in capsys.readouterr().out


def test_import_rejects_unreadable_audio(tmp_path):
    ds = datasets.Dataset.from_dict({"audio": [{"bytes": b"not audio", "path": "x.flac"}], "text": ["a"]})
    ds.save_to_disk(str(tmp_path / "hf"))
    with pytest.raises(DataError, match=r"row 0 \(test-000000\): unreadable audio"):
        import_split(str(tmp_path / "hf"), "test", tmp_path / "d")


def test_import_names_a_dataset_that_is_neither_folder_nor_hub_name(tmp_path):
    with pytest.raises(DataError, match="not a save_to_disk folder, and loading it from the hub failed"):
        import_split(str(tmp_path / "no-such-dataset"), "test", tmp_path / "d")
