import json

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


def test_group_wer_keeps_runs_with_one_label_apart(make_sweep):
    import shutil

    root = make_sweep(levels={"encoder": ["none"]})
    shutil.copytree(root / "0", root / "1")  # e.g. the same cut at two beam sizes: both "baseline"
    rows = [l for l in (root / "1" / "utterances.jsonl").read_text().splitlines()]
    first = json.loads(rows[0])
    first["substitutions"] += 2
    (root / "1" / "utterances.jsonl").write_text("\n".join([json.dumps(first), *rows[1:]]) + "\n")
    g = group_wer(collect(root))
    assert list(g.index) == ["baseline (0)", "baseline (1)"]  # not averaged into one "baseline" row
    assert g.loc["baseline (1)", "unseen"] - g.loc["baseline (0)", "unseen"] == pytest.approx(2.0)


def test_group_sweeps_attribute_per_voice_group(make_sweep):
    from asr_compress.analysis.attribution import attribute
    from asr_compress.analysis.utterances import group_sweeps
    subs = group_sweeps(collect(make_sweep()))
    assert sorted(subs) == ["seen", "unseen"]
    # 100 words per group; encoder errors fall on even utterances only (0, 4, 8, 12, 16: 'unseen')
    t = attribute(subs["unseen"], metrics=["wer_pct"]).table
    shap = dict(zip(t[t["kind"] == "shapley"]["term"], t[t["kind"] == "shapley"]["value"]))
    assert shap == pytest.approx({"encoder": 5.0, "decoder": 2.0, "lm": 4.0})
    t = attribute(subs["seen"], metrics=["wer_pct"]).table
    assert t[(t["kind"] == "shapley") & (t["term"] == "encoder")]["value"].iloc[0] == pytest.approx(0.0)
