import numpy as np
import pytest

from asr_compress.analysis.attribution import attribute
from asr_compress.analysis.bootstrap import paired_bootstrap, resample_counts
from asr_compress.analysis.collect import collect


@pytest.fixture
def sweep(make_sweep):
    return collect(make_sweep(interaction=True))


def test_resample_counts_are_draws_with_replacement():
    w = resample_counts(7, 50, np.random.default_rng(0))
    assert w.shape == (50, 7) and (w.sum(axis=1) == 7).all()
    idx = np.random.default_rng(0).integers(0, 7, size=(50, 7))
    assert (w[3] == np.bincount(idx[3], minlength=7)).all()


def test_by_speaker_draws_speakers_with_all_their_utterances(sweep):
    # 20 utterances of 4 speakers (utterance u is speaker u % 4): a resample draws 4 speakers
    samples = paired_bootstrap(sweep, n_resamples=20, seed=3, by="speaker")
    assert samples.by == "speaker" and samples.n_speakers == 4 and samples.n_utterances == 20
    counts = np.bincount(np.random.default_rng(3).integers(0, 4, size=(20, 4))[5], minlength=4)
    w = counts[np.arange(20) % 4]
    for r in (sweep.baseline, "7"):
        u = sweep.utterances[r].set_index("id").loc[sorted(sweep.utterances[r]["id"])]
        err = (u["substitutions"] + u["deletions"] + u["insertions"]).to_numpy()
        expected = 100 * (w * err).sum() / (w * u["n_ref_words"].to_numpy()).sum()
        assert samples.stats["wer_pct"][5, samples.run_index[r]] == pytest.approx(expected, rel=1e-12)


def test_by_speaker_over_one_speaker_is_flagged_not_cited_as_certainty(sweep):
    for utts in sweep.utterances.values():
        utts["speaker"] = "spk0"
    samples = paired_bootstrap(sweep, n_resamples=20, seed=3, by="speaker")
    ci = samples.run_ci()
    wer = ci[ci["metric"] == "wer_pct"]
    assert (wer["ci_low"] == wer["ci_high"]).all()  # what the warning is about
    assert any("bootstrap by speaker over 1 speaker" in p for p in samples.problems)


def test_by_speaker_needs_every_utterances_speaker_and_by_is_checked(sweep):
    with pytest.raises(ValueError, match=r"bootstrap by 'voice'; valid: utterance, speaker"):
        paired_bootstrap(sweep, n_resamples=5, by="voice")
    run = sweep.runs.index[0]
    sweep.utterances[run].loc[sweep.utterances[run]["id"] == "utt03", "speaker"] = None
    with pytest.raises(ValueError, match=r"bootstrap by speaker: 1 of 20 utterances have no speaker \(first: utt03\); "
                                         r"valid: a test set with utt2spk, or by utterance"):
        paired_bootstrap(sweep, n_resamples=5, by="speaker")


def test_vectorised_wer_matches_explicit_resample(sweep):
    samples = paired_bootstrap(sweep, n_resamples=20, seed=3)
    idx = np.random.default_rng(3).integers(0, 20, size=(20, 20))
    for r in (sweep.baseline, "7"):
        u = sweep.utterances[r].set_index("id").loc[sorted(sweep.utterances[r]["id"])]
        err = (u["substitutions"] + u["deletions"] + u["insertions"]).to_numpy()[idx[5]]
        expected = 100 * err.sum() / u["n_ref_words"].to_numpy()[idx[5]].sum()
        assert samples.stats["wer_pct"][5, samples.run_index[r]] == pytest.approx(expected, rel=1e-12)


def test_paired_cis_seeded_and_sensible(sweep):
    a = paired_bootstrap(sweep, n_resamples=1000, seed=0)
    b = paired_bootstrap(sweep, n_resamples=1000, seed=0)
    assert a.stats["wer_pct"].shape == (1000, 8)
    assert np.array_equal(a.stats["wer_pct"], b.stats["wer_pct"])
    assert not np.array_equal(a.stats["wer_pct"], paired_bootstrap(sweep, 1000, seed=1).stats["wer_pct"])
    runs = a.run_ci().query("metric == 'wer_pct'").set_index("run_id")
    assert runs.loc[sweep.baseline, "estimate"] == pytest.approx(5.0)
    assert ((runs["ci_low"] <= runs["estimate"]) & (runs["estimate"] <= runs["ci_high"])).all()
    deltas = a.delta_ci().query("metric == 'wer_pct'").set_index("run_id")
    assert deltas.loc[sweep.baseline, ["ci_low", "ci_high"]].tolist() == [0.0, 0.0]  # paired
    assert deltas.loc["7", "delta"] == pytest.approx(13.0) and deltas.loc["7", "ci_low"] > 0
    assert a.problems == []


def test_shapley_cis_from_resampled_corpus_wer(sweep):
    samples = paired_bootstrap(sweep, n_resamples=300, seed=0)
    att = attribute(sweep, samples=samples)
    shap = att.table.query("metric == 'wer_pct' and kind == 'shapley'").set_index("term")
    assert (shap["ci_low"] < shap["value"]).all() and (shap["value"] < shap["ci_high"]).all()
    assert (shap["n_resamples"] == 300).all()
    size = att.table.query("metric == 'size_mb' and kind == 'shapley'")
    assert size["ci_low"].isna().all() and size["value"].notna().all()  # no utterance basis for size


def test_shapley_efficiency_holds_in_every_resample(sweep):
    from asr_compress.analysis.attribution import apply_terms, grids, terms_and_coefficients
    samples = paired_bootstrap(sweep, n_resamples=100, seed=0)
    g = grids(sweep)[0]
    terms, coef = terms_and_coefficients(g.factors)
    cells = samples.stats["wer_pct"][:, [samples.run_index[r] for r in g.run_ids]]
    out = apply_terms(cells, coef)
    shap = out[:, [i for i, t in enumerate(terms) if t.kind == "shapley"]].sum(axis=1)
    assert np.allclose(shap, cells[:, -1] - cells[:, 0], rtol=1e-12, atol=1e-12)


def test_missing_utterances_dropped_and_reported(make_sweep):
    root = make_sweep()
    path = root / "3" / "utterances.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-2]))
    samples = paired_bootstrap(collect(root), n_resamples=10)
    assert samples.n_utterances == 18 and samples.n_dropped == 2
    assert samples.problems


def test_untimed_utterances_are_left_out_of_latency_means(make_sweep):
    import json
    root = make_sweep()
    path = root / "0" / "utterances.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    rows[0]["latency_ms"] = None  # e.g. a warm-up utterance left untimed
    rows[0]["latency_ms"] = None
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    samples = paired_bootstrap(collect(root), n_resamples=50)
    assert "latency_ms.mean" in samples.stats
    assert samples.full["latency_ms.mean"][samples.run_index["0"]] == pytest.approx(101.0)
    assert not np.isnan(samples.stats["latency_ms.mean"]).any()


def test_utterance_total_time_falls_back_to_latency(make_sweep):
    import json
    root = make_sweep()
    for run in root.iterdir():
        path = run / "utterances.jsonl"
        if path.is_file():  # as asr-compress writes them: parts per utterance, the total is latency_ms
            rows = [json.loads(x) for x in path.read_text().splitlines()]
            for r in rows:
                del r["time_breakdown_ms"]["total"]
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    samples = paired_bootstrap(collect(root), n_resamples=20)
    assert samples.full["time_breakdown_ms.total"][samples.run_index["0"]] == pytest.approx(101.0)


def test_utterances_not_in_every_run_are_left_out_and_the_warning_says_what_that_changes(make_sweep):
    root = make_sweep(levels={"encoder": ["none", "int8_dynamic"]})
    lines = (root / "1" / "utterances.jsonl").read_text().splitlines()
    (root / "1" / "utterances.jsonl").write_text("\n".join(lines[:-1]) + "\n")  # a shorter test set, say
    samples = paired_bootstrap(collect(root), n_resamples=10)
    assert (f"1 utterance ids are not in every run; they are left out of the bootstrap: changes and intervals "
            f"are over the {len(lines) - 1} utterances every run decoded, while a run's own WER (%) is over its own"
            in samples.problems)
