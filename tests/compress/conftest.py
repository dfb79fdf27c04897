import pytest

from compress_parts import build


@pytest.fixture
def make():
    """Factory for fresh seeded ESPnet components: make("decoder")."""
    return build
