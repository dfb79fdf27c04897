import copy

import numpy as np
import pytest
import torch

from asr_compress.config import DecodeConfig
from asr_compress.errors import AsrCompressError
from asr_compress.evaluate.data import read_audio

DEC = DecodeConfig(beam_size=3, ctc_weight=0.3, lm_weight=0.5)


class FeatureOffset(torch.nn.Module):
    """Wrap the frontend and shift each mel bin differently (survives mean/var normalisation)."""

    def __init__(self, frontend):
        super().__init__()
        self.inner = frontend

    def forward(self, x, lengths):
        feats, flens = self.inner(x, lengths)
        return feats * torch.linspace(0.2, 3.0, feats.size(-1)), flens


def _outputs(p, wavs):
    return [p.recognize(w, DEC)[2] for w in wavs]


def _perturb_(module):
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        for param in module.parameters():
            param.add_(torch.randn(param.shape, generator=g) * 0.5)


@pytest.mark.parametrize("component", ["frontend", "encoder", "ctc", "decoder", "lm"])
def test_modifying_each_component_changes_the_output(tiny, tiny_pipeline, component):
    p = tiny_pipeline
    wavs = [read_audio(tiny["data"] / f"utt{i}.flac", 16000) for i in range(3)]
    before = _outputs(p, wavs)
    assert before == _outputs(p, wavs)  # deterministic
    if component == "frontend":  # the default frontend has no weights: replace it
        p.set_component("frontend", FeatureOffset(p.frontend))
    else:  # a *replacement*: the search built before must not keep the old module
        new = copy.deepcopy(p.component(component))
        _perturb_(new)
        p.set_component(component, new)
    assert _outputs(p, wavs) != before


def test_in_place_change_is_seen_after_changed(tiny, tiny_pipeline):
    p = tiny_pipeline
    w = read_audio(tiny["data"] / "utt1.flac", 16000)
    search_before = p.search(DEC)
    _perturb_(p.decoder)
    p.changed()
    assert p.search(DEC) is not search_before
    assert p.search(DEC).full_scorers["decoder"] is p.decoder


def test_search_follows_decode_parameters(tiny_pipeline):
    p = tiny_pipeline
    s = p.search(DEC)
    assert s.weights["ctc"] == 0.3 and s.weights["decoder"] == pytest.approx(0.7) and s.weights["lm"] == 0.5
    s2 = p.search(DecodeConfig(beam_size=3, ctc_weight=0.5, lm_weight=0.0))
    assert s2 is not s and "lm" not in s2.full_scorers and s2.weights["ctc"] == 0.5


def test_unknown_or_absent_component(tiny):
    from asr_compress.config import ModelConfig
    from asr_compress.pipeline import load_pipeline

    p = load_pipeline(ModelConfig(name="t", exp_dir=str(tiny["asr"])))
    with pytest.raises(AsrCompressError, match="unknown component 'joiner'; valid: frontend, encoder, ctc, decoder, lm"):
        p.component("joiner")
    with pytest.raises(AsrCompressError, match="'lm' is not present"):
        p.component("lm")


def _param_ptrs(module):
    return {t.data_ptr() for t in module.state_dict().values() if t.numel()}


def _dynamic_int8_layers(module):
    return sum(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in module.modules())


def test_copy_shares_what_it_does_not_cut(tiny, tiny_pipeline):
    from asr_compress.compress import method_config

    p = tiny_pipeline
    wavs = [read_audio(tiny["data"] / f"utt{i}.flac", 16000) for i in range(2)]
    before = _outputs(p, wavs)
    c = p.copy(cut=["lm", "decoder"])
    for name in ("frontend", "encoder", "ctc"):  # kept: the very same modules, no second copy of weights
        assert c.component(name) is p.component(name)
    for name in ("decoder", "lm"):  # cut: own weights
        assert c.component(name) is not p.component(name)
        assert not _param_ptrs(c.component(name)) & _param_ptrs(p.component(name))
    c.compress_("lm", method_config("int8_dynamic"))
    c.compress_("decoder", method_config("int8_dynamic"))
    for name in ("decoder", "lm"):  # the copy's components now hold int8 layers, the original's none
        assert _dynamic_int8_layers(c.component(name)) > 0
        assert _dynamic_int8_layers(p.component(name)) == 0
    assert _outputs(p, wavs) == before  # the original is untouched
    assert c.search(DEC).full_scorers["decoder"] is c.decoder
    assert c.search(DEC).full_scorers["lm"] is c.lm


def test_copy_without_cut_copies_every_component(tiny_pipeline):
    p = tiny_pipeline
    c = p.copy()
    for name, module in p.components().items():
        assert c.component(name) is not module
        assert not _param_ptrs(c.component(name)) & _param_ptrs(module)


def test_copy_refuses_an_unknown_component(tiny_pipeline):
    with pytest.raises(AsrCompressError, match="unknown component 'encoders'; valid: frontend"):
        tiny_pipeline.copy(cut=["encoders"])


def test_a_copy_takes_a_component_with_the_older_weight_norm(tiny_pipeline):
    # fairseq-style SSL frontends weight-normalise their positional convolution with the older hook,
    # whose computed weight deepcopy refuses until it is detached
    p = tiny_pipeline
    wrapped = FeatureOffset(p.frontend)
    wrapped.pos_conv = torch.nn.utils.weight_norm(torch.nn.Conv1d(4, 4, 3))
    p.set_component("frontend", wrapped)
    q = p.copy(cut=["frontend"])
    assert q.frontend is not p.frontend and q.encoder is p.encoder
    x = torch.randn(1, 4, 10)
    with torch.no_grad():
        assert torch.equal(q.frontend.pos_conv(x), p.frontend.pos_conv(x))
