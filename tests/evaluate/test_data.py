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


def _piped_copy(tiny, d, lines):
    shutil.copytree(tiny["data"], d)
    (d / "wav.scp").write_text("".join(f"{line}\n" for line in lines))
    return DataConfig(name="t", dir=str(d))


def test_a_kaldi_pipe_is_read_as_the_audio_it_writes(tiny, tmp_path):
    # ESPnet's LibriSpeech data/test_clean has `flac -c -d -s x.flac |`; `cat` writes the same bytes
    # as the file here (flac is not installed where the tests run)
    d = tmp_path / "d"
    utts = load_test_set(_piped_copy(tiny, d, [f"utt0 cat {d / 'utt0.flac'} |", "utt1 utt1.flac"]))
    assert str(utts[0].audio) == f"cat {d / 'utt0.flac'} |" and utts[1].audio == (d / "utt1.flac").resolve()
    assert np.array_equal(read_audio(utts[0].audio, 16000), read_audio(d / "utt0.flac", 16000))


def test_a_pipe_whose_program_is_missing_fails_before_anything_loads(tiny, tmp_path):
    d = tmp_path / "d"
    cfg = _piped_copy(tiny, d, ["utt0 utt0.flac", "utt1 no_such_flac_decoder -c -d -s x.flac |"])
    with pytest.raises(DataError, match=r"utterance utt1 in .*wav\.scp: the pipe `no_such_flac_decoder -c -d -s x\.flac \|` "
                                        r"runs `no_such_flac_decoder`, which is not installed or not on PATH"):
        load_test_set(cfg)


def test_a_failing_or_silent_pipe_names_the_utterance_and_why(tiny, tmp_path):
    d = tmp_path / "d"
    utts = load_test_set(_piped_copy(tiny, d, ["utt0 cat missing.flac |", "utt1 true |", "utt2 echo hello |"]))
    with pytest.raises(DataError, match=r"utterance utt0 in .*: the pipe `cat missing\.flac \|` failed \(exit status 1: "
                                        r"cat: missing\.flac: No such file or directory\)"):
        read_audio(utts[0].audio, 16000)
    with pytest.raises(DataError, match=r"utterance utt1 in .*: the pipe `true \|` failed \(no output\)"):
        read_audio(utts[1].audio, 16000)
    with pytest.raises(DataError, match=r"utterance utt2 in .*: the output of `echo hello \|`: unreadable audio"):
        read_audio(utts[2].audio, 16000)


def test_calibration_audio_piped_from_a_test_file_is_refused(tiny, tmp_path):
    # the same command is the same audio: distillation must not train on the test set
    from asr_compress.errors import AsrCompressError
    from asr_compress.run import calibration_set, to_config
    from support import compose, tiny_overrides

    test = tmp_path / "test"
    _piped_copy(tiny, test, [f"utt0 cat {test / 'utt0.flac'} |"])
    calib = tmp_path / "calib"
    calib.mkdir()
    (calib / "wav.scp").write_text(f"c0 cat {test / 'utt0.flac'} |\n")
    cfg = to_config(compose(tiny_overrides(tiny, f"data.dir={test}", f"calibration.dir={calib}")))
    with pytest.raises(AsrCompressError, match=r"1 of its audio files are in the test set \(first: cat .*utt0\.flac \|\)"):
        calibration_set(cfg)


def _recordings(tmp_path, piped=False):
    """Two 'recordings' (3 s and 2 s at 8 kHz, sample value = time in samples / 1e5) and segments of them."""
    d = tmp_path / "seg"
    d.mkdir()
    for name, seconds in (("rec_a", 3), ("rec_b", 2)):
        soundfile.write(d / f"{name}.wav", (np.arange(8000 * seconds) / 1e5).astype(np.float32), 8000, subtype="FLOAT")
    scp = [f"rec_a cat {d / 'rec_a.wav'} |" if piped else "rec_a rec_a.wav", "rec_b rec_b.wav"]
    (d / "wav.scp").write_text("\n".join(scp) + "\n")
    (d / "segments").write_text("a1 rec_a 0.5 1.0\na2 rec_a 2.0 -1\nb1 rec_b 0 0.25\n")
    (d / "text").write_text("a1 ONE\na2 TWO\nb1 THREE\n")
    return d


@pytest.mark.parametrize("piped", [False, True])
def test_segments_cut_utterances_out_of_recordings(tmp_path, piped):
    utts = load_test_set(DataConfig(name="t", dir=str(_recordings(tmp_path, piped))))
    assert [(u.id, u.ref) for u in utts] == [("a1", "ONE"), ("a2", "TWO"), ("b1", "THREE")]
    a1 = read_audio(utts[0].audio, 8000)
    assert a1.shape == (4000,) and a1[0] == pytest.approx(4000 / 1e5)  # from 0.5 s, at the recording's rate
    assert read_audio(utts[1].audio, 8000).shape == (8000,)  # 2.0 s to the end of a 3 s recording
    assert read_audio(utts[2].audio, 16000).shape == (4000,)  # 0.25 s, resampled after cutting
    assert str(utts[1].audio).endswith("[2s-end]")


@pytest.mark.parametrize("line,needle", [
    ("a1 rec_c 0 1", r"segments:1: recording rec_c of utterance a1 is not in .*wav\.scp"),
    ("a1 rec_a 1.5 1.0", r"segments:1: utterance a1 from 1\.5 s to 1\.0 s; valid: 0 <= start < end, or end -1"),
    ("a1 rec_a zero 1", r"segments:1: start and end must be seconds, got 'zero' '1'"),
    ("a1 rec_a 0", r"segments:1: expected '<utterance id> <recording id> <start s> <end s>'"),
])
def test_bad_segments_lines_are_named(tmp_path, line, needle):
    d = _recordings(tmp_path)
    (d / "segments").write_text(line + "\n")
    with pytest.raises(DataError, match=needle):
        load_test_set(DataConfig(name="t", dir=str(d)))


def test_a_segment_past_the_end_of_its_recording_is_named(tmp_path):
    d = _recordings(tmp_path)
    (d / "segments").write_text("a1 rec_b 5 6\n")
    (d / "text").write_text("a1 ONE\n")
    (u,) = load_test_set(DataConfig(name="t", dir=str(d)))
    with pytest.raises(DataError, match=r"utterance a1 \(.*segments:1\): .*rec_b\.wav \[5s-6s\]: empty audio"):
        read_audio(u.audio, 8000)
