"""The weight methods on a real SSL frontend: ESPnet's HuggingFaceFrontend around a wav2vec2.

No pretrained SSL model can be downloaded where this project is built, so a tiny wav2vec2 with
random weights is saved locally and loaded the way a hub model is (`AutoModel.from_pretrained`):
the architecture is the real one (convolutional feature extractor, a weight-normed positional
convolution, Transformer layers with Hugging Face attention), which is what the methods must handle.
"""
import copy

import pytest
import torch

from compress_parts import sqnr

transformers = pytest.importorskip("transformers", reason="the ssl extra (transformers) is not installed")


def save_tiny_wav2vec2(path) -> str:
    cfg = transformers.Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                      conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8),
                                      num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2, vocab_size=10)
    torch.manual_seed(0)
    transformers.Wav2Vec2Model(cfg).save_pretrained(path)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def wav2vec2(tmp_path_factory):
    from espnet2.asr.frontend.huggingface import HuggingFaceFrontend

    return HuggingFaceFrontend(save_tiny_wav2vec2(tmp_path_factory.mktemp("wav2vec2"))).eval()


def _out(frontend):
    x = torch.randn(2, 3200, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return frontend(x, torch.tensor([3200, 2400]))[0]


# lower bounds in dB against the float32 frontend (observed: int8_dynamic 37, fp16 63, bf16 45,
# int8_weight 49, int4_weight 24); pruning and a rank-4 factorisation of random weights only run
@pytest.mark.parametrize("method,params,min_db", [
    ("int8_dynamic", {}, 30), ("fp16", {}, 50), ("bf16", {}, 35), ("int8_weight", {"group_size": -1}, 40),
    ("int4_weight", {"group_size": 16}, 18), ("lowrank", {"rank": 4}, None), ("prune_unstructured", {}, None),
    ("prune_nm", {}, None),
])
def test_weight_methods_on_a_wav2vec2_frontend(wav2vec2, method, params, min_db):
    from asr_compress.compress import applicable, compress_, make_config

    m = copy.deepcopy(wav2vec2)
    config = make_config(method, **params)
    applicable("frontend", config, m)
    compress_(m, config, "frontend")
    out = _out(m)
    assert torch.isfinite(out).all() and out.shape == _out(wav2vec2).shape
    if min_db is not None:
        assert sqnr(_out(wav2vec2), out) > min_db


def test_layer_drop_on_a_wav2vec2_frontend_is_the_shallower_model(wav2vec2, tmp_path):
    # independent reference: a one-layer wav2vec2 given the same weights, minus the dropped layer's
    from espnet2.asr.frontend.huggingface import HuggingFaceFrontend

    from asr_compress.compress import compress_, make_config

    m = copy.deepcopy(wav2vec2)
    report = compress_(m, make_config("layer_drop", keep_every=0, drop=[-1]), "frontend")
    assert report.kernel == "real" and report.notes == ["kept 1 of 2 layers of layers: [0]"]
    assert len(m.encoder.encoder.layers) == 1 and m.encoder.config.num_hidden_layers == 1
    shallow = HuggingFaceFrontend(save_tiny_wav2vec2(tmp_path / "w")).eval()
    shallow.encoder.config.num_hidden_layers = 1
    shallow.encoder.encoder.layers = shallow.encoder.encoder.layers[:1]
    state = {k: v for k, v in wav2vec2.state_dict().items() if ".layers.1." not in k}
    shallow.load_state_dict(state)
    assert torch.equal(_out(m), _out(shallow)) and not torch.equal(_out(m), _out(wav2vec2))


def test_layer_drop_keeps_wavlms_first_layer_which_holds_the_position_bias(tmp_path):
    from espnet2.asr.frontend.huggingface import HuggingFaceFrontend

    from asr_compress.compress import applicable, compress_, make_config
    from asr_compress.errors import CompressionConfigError

    cfg = transformers.WavLMConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
                                   conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8), num_buckets=16,
                                   max_bucket_distance=32, num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2)
    torch.manual_seed(0)
    transformers.WavLMModel(cfg).save_pretrained(tmp_path / "wavlm")
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(tmp_path / "wavlm")
    wavlm = HuggingFaceFrontend(str(tmp_path / "wavlm")).eval()
    with pytest.raises(CompressionConfigError, match=r"^frontend: layer_drop drops layer 0, which holds the relative "
                                                     r"position bias every later layer uses \(WavLM\); valid: keep layer 0$"):
        applicable("frontend", make_config("layer_drop", keep_every=0, drop=[0]), wavlm)
    compress_(wavlm, make_config("layer_drop"), "frontend")  # keeps 0 and 2
    assert len(wavlm.encoder.encoder.layers) == 2 and torch.isfinite(_out(wavlm)).all()
