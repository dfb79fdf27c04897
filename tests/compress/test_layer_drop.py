"""Layer dropping: exact layer counts for encoders, decoders and TransformerLM."""
import pytest

from asr_compress.compress import compress_, make_config
from asr_compress.errors import CompressionConfigError
from compress_parts import run


@pytest.mark.parametrize("component,stack,n", [
    ("encoder", "encoders", 2), ("transformer_encoder", "encoders", 3), ("decoder", "decoders", 2),
    ("lm", "encoder.encoders", 2),
])
def test_drop_last_layer(make, component, stack, n):
    m = make(component)
    first = m.get_submodule(stack)[0]
    report = compress_(m, make_config("layer_drop", keep_every=0, drop=[-1]), "encoder" if "encoder" in component else component)
    layers = m.get_submodule(stack)
    assert len(layers) == n - 1 and layers[0] is first
    assert type(layers).__name__ == "MultiSequential"
    assert report.kernel == "real"
    assert run(component, m).isfinite().all()


def test_keep_every_and_drop_combine(make):
    m = make("transformer_encoder")
    layers = list(m.encoders)
    compress_(m, make_config("layer_drop", keep_every=2, drop=[0]), "encoder")
    assert list(m.encoders) == [layers[2]]


def test_dropping_all_layers_is_an_error(make):
    m = make("decoder")
    with pytest.raises(CompressionConfigError, match=r"^decoder: layer_drop .*drop=\[0, 1\] drops all 2 layers; valid: leave at least one"):
        compress_(m, make_config("layer_drop", keep_every=0, drop=[0, 1]), "decoder")
    assert len(m.decoders) == 2


def test_out_of_range_index_is_an_error(make):
    with pytest.raises(CompressionConfigError, match=r"^encoder: layer_drop drop=\[5\] .*valid range: -2\.\.1"):
        compress_(make("encoder"), make_config("layer_drop", drop=[5]), "encoder")


# --- the Transformer stack of an SSL frontend (ESPnetSSLFrontend, a tiny SSL model saved as ssl_train does)

@pytest.fixture(scope="module")
def ssl_weights(tmp_path_factory):
    from tiny_model import build_tiny_ssl

    return build_tiny_ssl(tmp_path_factory.mktemp("ssl") / "ssl", layers=4)


def _ssl_frontend(weights, multilayer=True, layer=-1):
    import torch
    from espnet2.asr.frontend.espnet_ssl import ESPnetSSLFrontend

    torch.manual_seed(0)
    m = ESPnetSSLFrontend(frontend_conf={"path_or_url": str(weights)}, multilayer_feature=multilayer, layer=layer).eval()
    if multilayer:  # learned weights rather than ESPnet's all-zero start, so that renumbering them shows
        m.featurizer.weights.data = torch.arange(4.0) / 2
    return m


def _ssl_out(frontend):
    import torch

    x = torch.randn(2, 6400, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return frontend(x, torch.tensor([6400, 4800]))[0]


def test_an_ssl_frontends_weighted_sum_keeps_the_kept_layers_weights(ssl_weights):
    import torch

    m = _ssl_frontend(ssl_weights)
    x, lengths = torch.randn(2, 6400, generator=torch.Generator().manual_seed(1)), torch.tensor([6400, 4800])
    with torch.no_grad():  # the layers below a dropped top layer are unchanged: the sum is theirs
        layer_outputs = m.upstream.inference_encode(x, lengths, False, True)[1]
    w = torch.softmax(torch.arange(3.0) / 2, 0)
    expected = sum(w[i] * layer_outputs[i] for i in range(3))
    report = compress_(m, make_config("layer_drop", keep_every=0, drop=[-1]), "frontend")
    assert len(m.upstream.encoder.encoders) == 3 and m.featurizer.layer_selections == [0, 1, 2]
    assert torch.equal(m.featurizer.weights.data, torch.arange(3.0) / 2)
    assert torch.allclose(_ssl_out(m), expected, atol=1e-6)
    assert report.kernel == "real" and report.notes == [
        "kept 3 of 4 layers of encoders: [0, 1, 2]", "the featurizer's weighted sum keeps the weights of hidden states [0, 1, 2]"]


def test_an_ssl_frontend_reading_one_layer_reads_it_after_the_cut(ssl_weights):
    import torch

    m = _ssl_frontend(ssl_weights, multilayer=False, layer=1)
    before = _ssl_out(m)
    report = compress_(m, make_config("layer_drop", keep_every=0, drop=[3]), "frontend")
    assert m.layer == 1 and torch.equal(_ssl_out(m), before)  # layer 3 was computed and never read
    assert report.notes[1:] == ["the frontend reads layer 1's output, now hidden state 1",
                                "kept layers [2] are computed but their outputs are never read: dropping them costs no accuracy"]
    compress_(m, make_config("layer_drop", keep_every=0, drop=[0]), "frontend")  # renumbered: what was layer 1 is 0
    assert m.layer == 0 and len(m.upstream.encoder.encoders) == 2


def test_an_ssl_frontend_reading_the_top_reads_the_top_kept_layer(ssl_weights):
    m = _ssl_frontend(ssl_weights, multilayer=False, layer=-1)
    report = compress_(m, make_config("layer_drop"), "frontend")
    assert m.layer == -1 and len(m.upstream.encoder.encoders) == 2
    assert report.notes[1] == "the frontend reads the top of the stack, layer 2's output, now hidden state 1"
    assert _ssl_out(m).isfinite().all()


def test_dropping_the_layer_an_ssl_frontend_reads_is_refused_before_anything_changes(ssl_weights):
    from asr_compress.compress import applicable

    m = _ssl_frontend(ssl_weights, multilayer=False, layer=1)
    with pytest.raises(CompressionConfigError, match=r"^frontend: layer_drop removes hidden state 1, the one ESPnetSSLFrontend "
                                                     r"reads \(layer=1\) and the ASR was trained on; valid: keep the layer"):
        applicable("frontend", make_config("layer_drop"), m)  # keep_every=2 drops 1 and 3
    with pytest.raises(CompressionConfigError, match="removes hidden state 1"):
        compress_(m, make_config("layer_drop"), "frontend")
    assert len(m.upstream.encoder.encoders) == 4 and m.layer == 1


def test_a_frontend_without_an_ssl_stack_is_refused_with_the_ones_that_have_one(make):
    from asr_compress.compress import applicable

    with pytest.raises(CompressionConfigError, match=r"^frontend: layer_drop found no layer stack in FusedFrontends; "
                                                     r"valid: an SSL frontend: ESPnetSSLFrontend \(upstream\.encoder\.encoders\), "
                                                     r"S3prlFrontend \(upstream\.upstream\.model\.encoder\.layers\), "
                                                     r"HuggingFaceFrontend \(encoder\.encoder\.layers\)$"):
        compress_(make("fused_frontend"), make_config("layer_drop"), "frontend")
    # the default model's fbank frontend: refused as every method is on a frontend without weights
    with pytest.raises(CompressionConfigError, match=r"^frontend: layer_drop does not apply to this model's frontend: "
                                                     r"DefaultFrontend \(STFT \+ fixed mel filterbank\) has no weights"):
        applicable("frontend", make_config("layer_drop"), make("frontend"))
