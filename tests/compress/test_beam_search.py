"""Compressed decoder, CTC and LM still run inside ESPnet's (batch) beam search, entry methods included."""
import pytest
import torch

from asr_compress.compress import METHOD_CONFIGS, METHOD_PRESETS, applicable, compress_, make_config
from asr_compress.errors import CompressionConfigError
from compress_parts import D, VOCAB, build, calibration

PARAMS = {"sequence": {"steps": [{"name": "prune_unstructured", "sparsity": 0.3}, {"name": "int8_dynamic"}]},
          "lowrank": {"rank": 4}, "distill": {"steps": [{"name": "lowrank", "rank": 4}], "updates": 3},
          "layer_drop_distill": {"updates": 3}}


def search(decoder, ctc, lm, batch: bool = True):
    from espnet.nets.batch_beam_search import BatchBeamSearch
    from espnet.nets.beam_search import BeamSearch
    from espnet.nets.scorers.ctc import CTCPrefixScorer
    from espnet.nets.scorers.length_bonus import LengthBonus

    eos = VOCAB - 1
    # the scorers hold references to the modules: build the search after compressing
    cls = BatchBeamSearch if batch else BeamSearch
    beam = cls(
        scorers={"decoder": decoder, "ctc": CTCPrefixScorer(ctc, eos), "lm": lm, "length_bonus": LengthBonus(VOCAB)},
        weights={"decoder": 0.7, "ctc": 0.3, "lm": 0.3, "length_bonus": 0.5},
        beam_size=3, vocab_size=VOCAB, sos=eos, eos=eos, pre_beam_score_key="full",
    ).eval()
    enc = torch.randn(12, D, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        hyps = beam(x=enc, maxlenratio=0.5, minlenratio=0.0)
    assert len(hyps) > 0
    for hyp in hyps:
        assert torch.isfinite(hyp.score)
        assert hyp.yseq[0] == eos and hyp.yseq.dtype == torch.int64
    return hyps


@pytest.mark.parametrize("method", list(METHOD_CONFIGS) + list(METHOD_PRESETS))
def test_batch_beam_search_runs_after_compression(method):
    parts = {c: build(c) for c in ("decoder", "ctc", "lm")}
    config = make_config(method, **PARAMS.get(method, {}))
    for component, module in parts.items():
        try:
            applicable(component, config)
        except CompressionConfigError:
            continue
        compress_(module, config, component, calibration=calibration())
    search(parts["decoder"], parts["ctc"], parts["lm"], batch=True)


@pytest.mark.parametrize("method", ["fp16", "bf16", "int8_dynamic", "int4_weight", "prune_structured", "layer_drop"])
def test_non_batch_beam_search_and_rnn_lm(method):
    parts = {"decoder": build("decoder"), "ctc": build("ctc"), "lm": build("rnn_lm")}
    config = make_config(method)
    for component, module in parts.items():
        if component == "lm" and method in ("prune_structured", "layer_drop"):
            continue  # no attention or layer stack in an LSTM LM
        try:
            applicable(component, config)
        except CompressionConfigError:
            continue
        compress_(module, config, component)
    search(parts["decoder"], parts["ctc"], parts["lm"], batch=False)
    search(parts["decoder"], parts["ctc"], parts["lm"], batch=True)


def test_int8pack_kernel_in_beam_search():
    parts = {c: build(c) for c in ("decoder", "ctc", "lm")}
    for component, module in parts.items():
        compress_(module, make_config("int8_weight", group_size=-1, int8pack_kernel=True), component)
    search(parts["decoder"], parts["ctc"], parts["lm"], batch=True)
