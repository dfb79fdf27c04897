"""Compression methods on ESPnet's S3PRL frontend (S3prlFrontend around S3PRL's HuBERT expert).

No pretrained checkpoint can be downloaded where this project is built, so a tiny HuBERT with random
weights is saved in the format of S3PRL's `hubert_local` upstream (tests/tiny_model.py) and loaded
through S3PRL as a downloaded one is: fairseq-style attention (which hands its projections' weights
to a fused kernel), a weight-normed positional convolution, and hidden states collected by hooks.
"""
import copy

import pytest
import torch

from compress_parts import sqnr

pytest.importorskip("s3prl", reason="the ssl extra (s3prl) is not installed")

LAYERS = 3


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from tiny_model import build_tiny_s3prl_hubert

    return build_tiny_s3prl_hubert(tmp_path_factory.mktemp("s3prl") / "hubert.pt", layers=LAYERS)


def _frontend(checkpoint, layer=-1, multilayer=True):
    from asr_compress.pipeline.s3prl_compat import patch_torchaudio

    patch_torchaudio()
    from espnet2.asr.frontend.s3prl import S3prlFrontend

    torch.manual_seed(0)
    m = S3prlFrontend(frontend_conf={"upstream": "hubert_local", "path_or_url": str(checkpoint)},
                      multilayer_feature=multilayer, layer=layer).eval()
    if layer == -1:  # learned weights rather than the all-zero start, so that renumbering them shows
        m.featurizer.weights.data = torch.arange(LAYERS + 1.0) / 2
    return m


X, LENGTHS = torch.randn(2, 6400, generator=torch.Generator().manual_seed(1)), torch.tensor([6400, 4800])


def _out(frontend):
    with torch.no_grad():
        return frontend(X, LENGTHS)[0]


# lower bounds in dB against the float32 frontend (observed: int8_dynamic 36, fp16 61, int8_weight 45,
# int4_weight 19); a rank-4 factorisation of random weights only runs
@pytest.mark.parametrize("method,params,min_db", [
    ("int8_dynamic", {}, 28), ("fp16", {}, 50), ("int8_weight", {"group_size": -1}, 38),
    ("int4_weight", {"group_size": 16}, 14), ("lowrank", {"rank": 4}, None),
])
def test_weight_methods_reach_the_projections_of_fairseq_attention(checkpoint, method, params, min_db):
    from asr_compress.compress import applicable, compress_, make_config

    m = _frontend(checkpoint)
    ref = _out(m)
    config = make_config(method, **params)
    applicable("frontend", config, m)
    report = compress_(m, config, "frontend")
    attention = m.upstream.upstream.model.encoder.layers[0].self_attn
    assert type(attention.q_proj) is not torch.nn.Linear  # replaced, and called rather than read by weight
    assert attention.skip_embed_dim_check and report.notes[-1].startswith(f"{LAYERS} fairseq attention blocks now call")
    out = _out(m)
    assert torch.isfinite(out).all() and out.shape == ref.shape
    if min_db is not None:
        assert sqnr(ref, out) > min_db


def test_a_copy_collects_its_own_hidden_states(checkpoint):
    # S3PRL's hooks hold the upstream's own list: a plain deep copy fills the original's
    from asr_compress.pipeline.pipeline import _detach_weight_norm
    from asr_compress.pipeline.s3prl_compat import rehook

    m = _frontend(checkpoint)
    ref = _out(m)
    _detach_weight_norm(m)
    plain = copy.deepcopy(m)
    with pytest.raises(KeyError, match="hidden_states"):
        _out(plain)
    fixed = copy.deepcopy(m)
    rehook(fixed)
    assert torch.equal(_out(fixed), ref) and torch.equal(_out(m), ref)


def test_layer_drop_keeps_the_weights_of_the_hidden_states_that_remain(checkpoint):
    from asr_compress.compress import compress_, make_config

    m = _frontend(checkpoint)
    with torch.no_grad():  # hidden states 0..2 (inputs of layers 0..2) do not depend on the top layer
        states = m.upstream(X, LENGTHS)[0]
    w = torch.softmax(torch.arange(LAYERS + 0.0) / 2, 0)
    expected = sum(w[i] * states[i] for i in range(LAYERS))
    report = compress_(m, make_config("layer_drop", keep_every=0, drop=[-1]), "frontend")
    assert len(m.upstream.upstream.model.encoder.layers) == LAYERS - 1 and m.upstream.num_layers == LAYERS
    assert torch.equal(m.featurizer.weights.data, torch.arange(LAYERS + 0.0) / 2)
    assert torch.allclose(_out(m), expected, atol=1e-5)
    assert report.notes == [f"kept {LAYERS - 1} of {LAYERS} layers of layers: [0, 1]",
                            "the featurizer's weighted sum keeps the weights of hidden states [0, 1, 2]"]


def test_layer_drop_under_a_frontend_reading_one_hidden_state(checkpoint):
    from asr_compress.compress import applicable, compress_, make_config
    from asr_compress.errors import CompressionConfigError

    m = _frontend(checkpoint, layer=1, multilayer=False)  # state 1: the output of layer 0
    ref = _out(m)
    with pytest.raises(CompressionConfigError, match=r"^frontend: layer_drop removes hidden state 1, the one S3prlFrontend "
                                                     r"reads \(layer=1\) and the ASR was trained on"):
        applicable("frontend", make_config("layer_drop", keep_every=0, drop=[0]), m)
    report = compress_(m, make_config("layer_drop", keep_every=0, drop=[2]), "frontend")
    assert torch.equal(_out(m), ref) and m.layer == 1
    assert report.notes[1:] == ["the frontend reads layer 0's output, now hidden state 1",
                                "kept layers [1] are computed but their outputs are never read: dropping them costs no accuracy"]


def test_a_frontend_reading_the_features_below_every_layer_is_told_no_layer_is_read(checkpoint):
    from asr_compress.compress import compress_, make_config

    m = _frontend(checkpoint, layer=0, multilayer=False)
    ref = _out(m)
    report = compress_(m, make_config("layer_drop"), "frontend")  # keeps layers 0 and 2
    assert torch.equal(_out(m), ref) and m.layer == 0
    assert report.notes[1:] == ["the frontend reads the features below every layer, now hidden state 0",
                                "kept layers [0, 2] are computed but their outputs are never read: dropping them costs no accuracy"]
