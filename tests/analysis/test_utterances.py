import pytest

from asr_compress.analysis.collect import collect
from asr_compress.analysis.utterances import broken_utterances, error_shift, group_wer


def test_broken_utterances_per_component(make_sweep):
    sweep = collect(make_sweep(interaction=True))
    broke = broken_utterances(sweep)
    assert broke.groupby("component").size().to_dict() == {"encoder": 5, "decoder": 4, "lm": 7}
    enc = broken_utterances(sweep, "encoder")
    assert list(enc["id"]) == ["utt00", "utt04", "utt08", "utt12", "utt16"]
    assert (enc["delta_substitutions"] == 1).all() and (enc["delta_deletions"] == 0).all()
    assert enc["hyp_cut"].iloc[0].startswith("x0 ")


def test_error_shift_counts_sub_del_ins(make_sweep):
    shift = error_shift(collect(make_sweep())).set_index("component")
    assert shift.loc["encoder", ["delta_substitutions", "delta_deletions", "delta_insertions"]].tolist() == [5, 0, 0]
    assert shift.loc["decoder", "delta_deletions"] == 4 and shift.loc["lm", "delta_insertions"] == 7
    assert shift.loc["lm", "delta_wer_pct"] == pytest.approx(3.5)
    assert shift.loc["lm", "broke"] == 7 and shift.loc["lm", "fixed"] == 0 and shift.loc["lm", "unchanged"] == 13


def test_group_wer(make_sweep):
    g = group_wer(collect(make_sweep()))
    assert g.loc["baseline", "seen"] == pytest.approx(10.0)
    assert g.loc["baseline", "unseen"] == pytest.approx(0.0)
    assert g.loc["encoder=int8_dynamic", "unseen"] == pytest.approx(5.0)
