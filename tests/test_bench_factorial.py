"""benchmarks/bench_methods.py: its rows, and --factorial (every on/off cell timed side by side, Shapley per round)."""
import importlib.util
import json

import pytest

from asr_compress.config import PROJECT_ROOT
from support import tiny_overrides


def _bench():
    spec = importlib.util.spec_from_file_location("bench_methods", PROJECT_ROOT / "benchmarks" / "bench_methods.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _cell_times(enc_ms, lm_ms, drift):
    """Per-round part times for 2 utterances of the 4 cells of (encoder, lm)."""
    out = {}
    for name, cut in (("baseline", (False, False)), ("e", (True, False)), ("l", (False, True)), ("el", (True, True))):
        rounds = []
        for d in drift:
            parts = {k: 0.0 for k in ("frontend", "encoder", "decoder", "ctc", "lm", "search_other")}
            parts["encoder"] = 2 * (100 + d + (enc_ms if cut[0] else 0))
            parts["lm"] = 2 * (50 + (lm_ms if cut[1] else 0) + (3 if all(cut) else 0))  # an interaction
            parts["total"] = parts["encoder"] + parts["lm"]
            rounds.append(parts)
        out[name] = rounds
    return [(n, cut, "m", None, []) for n, cut in (("baseline", (0, 0)), ("e", (1, 0)), ("l", (0, 1)), ("el", (1, 1)))], out


def test_shapley_per_round_is_blind_to_drift_between_rounds():
    bench = _bench()
    cells, times = _cell_times(enc_ms=-10, lm_ms=4, drift=[0, 300, 40])  # the machine slows down in round 2
    sv = bench.shapley_over_rounds(cells, times, ["encoder", "lm"], n_utts=2)
    assert sv["encoder"]["encoder"] == {"median": -10.0, "min": -10.0, "max": -10.0}
    assert sv["encoder"]["lm"]["median"] == pytest.approx(1.5)  # half the interaction each
    assert sv["lm"]["total"]["median"] == pytest.approx(5.5)
    assert sv["encoder"]["total"]["median"] + sv["lm"]["total"]["median"] == pytest.approx(-10 + 4 + 3)


def test_factorial_benchmark_times_every_cell_of_a_real_model(tiny, tmp_path):
    bench = _bench()
    bench.main(["--factorial", "encoder,lm", "--methods", "int8_dynamic", "--utterances", "2", "--rounds", "1",
                "--out", str(tmp_path), *tiny_overrides(tiny)])
    result = json.loads((tmp_path / "bench.json").read_text())
    rows = {r["variant"]: r for r in result["rows"]}
    assert list(rows) == ["baseline", "encoder=int8_dynamic", "lm=int8_dynamic",
                          "encoder=int8_dynamic+lm=int8_dynamic"]
    assert rows["baseline"]["kernel"] == "none" and rows["encoder=int8_dynamic+lm=int8_dynamic"]["kernel"] == "real"
    assert rows["encoder=int8_dynamic+lm=int8_dynamic"]["size_bytes"] > rows["encoder=int8_dynamic"]["size_bytes"]
    sv = result["factorial"]["shapley_ms"]
    # efficiency: with one round, the Shapley values add up to the all-cut cell minus the baseline
    ms = {n: r["ms_per_utt"]["total"] for n, r in rows.items()}
    assert sv["encoder"]["total"]["median"] + sv["lm"]["total"]["median"] == pytest.approx(
        ms["encoder=int8_dynamic+lm=int8_dynamic"] - ms["baseline"])
    assert "Shapley attribution, measured interleaved (int8_dynamic)" in (tmp_path / "BENCH.md").read_text()


@pytest.mark.parametrize("args, needle", [
    (["--factorial", "encoder,lm"], "needs exactly one method in --methods"),
    (["--factorial", "encoder,lm", "--methods", "int8_dynamic,fp16"], "needs exactly one method in --methods"),
    (["--factorial", "encoder,adapter", "--methods", "int8_dynamic"], "adapter not in this model; it has"),
])
def test_factorial_benchmark_bad_options_are_named(tiny, tmp_path, args, needle):
    with pytest.raises(SystemExit, match=needle):
        _bench().main([*args, "--out", str(tmp_path), *tiny_overrides(tiny)])


def test_methods_benchmark_rows_name_their_component_kernel_and_size(tiny, tmp_path):
    # the benchmark's ordinary mode shares the row code with --factorial
    _bench().main(["--components", "lm", "--methods", "int8_dynamic", "--no-espnet", "--utterances", "1",
                   "--rounds", "1", "--out", str(tmp_path), *tiny_overrides(tiny)])
    rows = {r["variant"]: r for r in json.loads((tmp_path / "bench.json").read_text())["rows"]}
    assert list(rows) == ["baseline", "lm=int8_dynamic"]
    assert rows["baseline"]["kernel"] == "none" and rows["baseline"]["size_bytes"] is None
    assert rows["lm=int8_dynamic"]["component"] == "lm" and rows["lm=int8_dynamic"]["kernel"] == "real"
    assert rows["lm=int8_dynamic"]["size_bytes"] > 0


def test_espnet_variants_search_with_the_models_ngram(tiny, tmp_path):
    # ESPnet's rows are a reference for the same search: without the n-gram they would be faster
    # for a reason that has nothing to do with quantization
    pytest.importorskip("kenlm")
    from tiny_model import build_tiny_ngram

    from asr_compress.config import DecodeConfig, ModelConfig
    from asr_compress.pipeline import load_pipeline
    from asr_compress.pipeline.load import find_model_files

    tokens = load_pipeline(ModelConfig(name="t", exp_dir=str(tiny["asr"]))).token_list
    ngram = build_tiny_ngram(tmp_path / "2gram.arpa", tokens)
    files = find_model_files(ModelConfig(name="t", exp_dir=str(tiny["asr"]), lm_exp_dir=str(tiny["lm"]),
                                            ngram_file=str(ngram)))
    for name, s2t in _bench().espnet_variants(files, DecodeConfig(lm_weight=0.5, ngram_weight=0.3)):
        assert s2t.beam_search.weights["ngram"] == 0.3 and "ngram" in s2t.beam_search.full_scorers, name
