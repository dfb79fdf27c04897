import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from tiny_model import build_tiny_asr, build_tiny_data, build_tiny_lm  # noqa: E402


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """Tiny ESPnet ASR + LM experiment dirs and a 3-utterance data dir."""
    root = tmp_path_factory.mktemp("tiny")
    return {
        "root": root,
        "asr": build_tiny_asr(root / "exp" / "asr"),
        "lm": build_tiny_lm(root / "exp" / "lm"),
        "data": build_tiny_data(root / "data"),
    }


@pytest.fixture()
def tiny_pipeline(tiny):
    from asr_compress.config import ModelConfig
    from asr_compress.pipeline import load_pipeline

    return load_pipeline(ModelConfig(name="tiny", exp_dir=str(tiny["asr"]), lm_exp_dir=str(tiny["lm"])))
