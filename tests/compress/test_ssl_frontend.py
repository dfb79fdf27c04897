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
