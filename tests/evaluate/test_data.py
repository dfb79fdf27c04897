import shutil

import numpy as np
import pytest
import soundfile

from asr_compress.config import DataConfig
from asr_compress.errors import DataError
from asr_compress.evaluate.data import load_test_set, read_audio


def test_reads_kaldi_dir_with_groups(tiny):
    utts = load_test_set(DataConfig(name="t", dir=str(tiny["data"])))
    assert [u.id for u in utts] == ["utt0", "utt1", "utt2"]
    assert utts[0].ref == "HELLO WORLD" and utts[1].group == "unseen" and utts[0].audio.is_file()
    assert len(load_test_set(DataConfig(name="t", dir=str(tiny["data"]), limit=2))) == 2


def test_bad_data_dirs_name_the_file(tiny, tmp_path):
    d = tmp_path / "d"
    shutil.copytree(tiny["data"], d)
    (d / "wav.scp").write_text("utt0 utt0.flac\nutt2 missing.flac\n")
    with pytest.raises(DataError, match=r"missing\.flac: audio file not found \(utterance utt2"):
        load_test_set(DataConfig(name="t", dir=str(d)))
    (d / "wav.scp").write_text("utt0 utt0.flac\nutt7 utt1.flac\n")
    with pytest.raises(DataError, match=r"text: no transcript for 1 utterances .*utt7"):
        load_test_set(DataConfig(name="t", dir=str(d)))
    (d / "text").unlink()
    with pytest.raises(DataError, match=r"text: file not found"):
        load_test_set(DataConfig(name="t", dir=str(d)))
    with pytest.raises(DataError, match="data.dir is not a directory"):
        load_test_set(DataConfig(name="t", dir=str(tmp_path / "nope")))


def test_audio_is_resampled_and_unreadable_audio_is_named(tmp_path):
    x = np.sin(np.arange(8000) / 8000 * 2 * np.pi * 440).astype(np.float32)
    soundfile.write(tmp_path / "a.wav", x, 8000)
    assert read_audio(tmp_path / "a.wav", 16000).shape == (16000,)
    (tmp_path / "b.wav").write_text("garbage")
    with pytest.raises(DataError, match=r"b\.wav: unreadable audio"):
        read_audio(tmp_path / "b.wav", 16000)
