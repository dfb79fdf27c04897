"""The token n-gram (model.ngram_file): ESPnet's scores, joined to the search by its weight, clear errors."""
import pytest
import torch

from asr_compress.config import DataConfig, DecodeConfig, ModelConfig
from asr_compress.errors import ModelLoadError
from asr_compress.evaluate.data import load_test_set, read_audio
from asr_compress.evaluate.decode import _decode_one
from asr_compress.evaluate.timing import Clock
from asr_compress.pipeline import load_pipeline
from tiny_model import build_tiny_ngram

kenlm = pytest.importorskip("kenlm")


@pytest.fixture(scope="module")
def ngram_file(tiny, tmp_path_factory):
    tokens = load_pipeline(ModelConfig(name="t", exp_dir=str(tiny["asr"]))).token_list
    return build_tiny_ngram(tmp_path_factory.mktemp("ngram") / "2gram.arpa", tokens)


def _first_audio(tiny):
    return load_test_set(DataConfig(name="t", dir=str(tiny["data"])))[0].audio


def _model(tiny, ngram_file):
    return ModelConfig(name="t", exp_dir=str(tiny["asr"]), lm_exp_dir=str(tiny["lm"]), ngram_file=str(ngram_file))


def test_scores_are_espnets(tiny, ngram_file):
    from espnet.nets.scorers.ngram import NgramFullScorer

    p = load_pipeline(_model(tiny, ngram_file))
    ours, theirs = p.ngram, NgramFullScorer(str(ngram_file), p.token_list)
    x = torch.zeros(3, 4)
    s_ours, s_theirs = ours.init_state(x), theirs.init_state(x)
    y = torch.tensor([p.asr_model.sos])
    for step in range(4):  # a prefix, scored token after token as the search does
        a, s_ours = ours.score(y, s_ours, x)
        b, s_theirs = theirs.score(y, s_theirs, x)
        assert a.shape == (len(p.token_list),) and torch.equal(a, b) and s_ours == s_theirs
        y = torch.cat([y, torch.tensor([2 + step])])
    again, _ = ours.score(y[:-1], ours.init_state(x), x)  # a new utterance starts a new cache
    assert torch.isfinite(again).all()


def test_weight_joins_the_search_and_its_time_counts_as_lm(tiny, ngram_file):
    p = load_pipeline(_model(tiny, ngram_file))
    on, off = DecodeConfig(ngram_weight=0.9, lm_weight=0.5), DecodeConfig(ngram_weight=0.0, lm_weight=0.5)
    assert "ngram" in p.search(on).full_scorers and p.search(on).weights["ngram"] == 0.9
    assert "ngram" not in p.search(off).full_scorers
    speech = read_audio(_first_audio(tiny), p.sample_rate)
    _, with_ngram = _decode_one(p, speech, on, Clock())
    _, without = _decode_one(p, speech, DecodeConfig(ngram_weight=0.0, lm_weight=0.0), Clock())
    assert with_ngram["lm"] > 0 and without["lm"] == 0
    assert p.files.describe()["ngram_file"] == str(ngram_file) and len(p.files.describe()["ngram_file_sha256"]) == 64


def test_a_big_weight_changes_the_hypothesis(tiny, ngram_file):
    p = load_pipeline(_model(tiny, ngram_file))
    speech = read_audio(_first_audio(tiny), p.sample_rate)
    tokens = {w: p.recognize(speech, DecodeConfig(ngram_weight=w, lm_weight=0.0, beam_size=4))[1] for w in (0.0, 50.0)}
    assert tokens[0.0] != tokens[50.0]


def test_loading_keeps_kenlms_progress_bar_out_of_the_console(tiny, tmp_path, ngram_file, capfd):
    # KenLM writes "Reading <file>" and a row of 100 stars from C++ when it reads an ARPA file,
    # and the same before it fails on a bad one: nothing Python-level silencing can catch
    capfd.readouterr()
    load_pipeline(_model(tiny, ngram_file))
    bad = tmp_path / "bad.arpa"
    bad.write_text("not an ARPA file\n")
    with pytest.raises(ModelLoadError):
        load_pipeline(_model(tiny, bad))
    out, err = capfd.readouterr()
    assert "*" * 20 not in out + err and "Reading" not in out + err
    print("after")  # the console works again once the scorer is built
    assert capfd.readouterr().out == "after\n"


def test_missing_or_unreadable_ngram_names_the_parameter(tiny, tmp_path):
    with pytest.raises(ModelLoadError, match=r"nope\.bin: file not found \(model\.ngram_file\)"):
        load_pipeline(_model(tiny, tmp_path / "nope.bin"))
    bad = tmp_path / "bad.arpa"
    bad.write_text("not an ARPA file\n")
    with pytest.raises(ModelLoadError, match=r"bad\.arpa: KenLM cannot read it as an n-gram model \(model\.ngram_file\)"):
        load_pipeline(_model(tiny, bad))


def test_without_kenlm_the_error_says_how_to_get_it(tiny, ngram_file, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "kenlm", None)  # what a missing module looks like
    with pytest.raises(ModelLoadError, match=r"model\.ngram_file needs the kenlm module.*'\.\[ngram\]'"):
        load_pipeline(_model(tiny, ngram_file))


def test_an_ngram_over_other_units_is_refused(tiny, tmp_path):
    # KenLM would score every unit it does not know as <unk>, silently: the default model's n-gram
    # under a user's model (model.exp_dir overridden, model.ngram_file inherited) would be noise
    other = build_tiny_ngram(tmp_path / "other.arpa", [f"▁w{i}" for i in range(20)])
    with pytest.raises(ModelLoadError, match=r"other\.arpa: only 0 of the ASR's \d+ units are in this n-gram's "
                                             r"vocabulary \(model\.ngram_file\).*model\.ngram_file=null"):
        load_pipeline(_model(tiny, other))
