"""`make_sweep`: synthetic multirun dirs with hand-checkable effects (see asr_compress.analysis.synthetic)."""
import pytest

from asr_compress.analysis.synthetic import build_sweep


@pytest.fixture
def make_sweep(tmp_path):
    """make_sweep(name="sweep", **build_sweep kwargs) -> Path of a synthetic multirun dir."""
    def _make(name: str = "sweep", **kwargs):
        return build_sweep(tmp_path / name, **kwargs)
    return _make
