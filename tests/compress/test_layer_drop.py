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
