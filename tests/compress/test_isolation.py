"""Applying a method to one component leaves every other component bit-identical."""
import hashlib

import pytest
import torch

from asr_compress.compress import METHOD_CONFIGS, METHOD_PRESETS, applicable, compress_, make_config
from asr_compress.errors import CompressionConfigError
from compress_parts import build, calibration

COMPONENTS = ("frontend", "encoder", "ctc", "decoder", "lm")
# parameters for methods whose defaults need a choice, or would be a no-op on a 32-wide model
PARAMS = {"sequence": {"steps": [{"name": "prune_nm"}, {"name": "int8_weight"}]}, "lowrank": {"rank": 4},
          "distill": {"steps": [{"name": "lowrank", "rank": 4}], "updates": 3}, "layer_drop_distill": {"updates": 3}}


def checksum(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, value in sorted(module.state_dict().items()):
        h.update(name.encode())
        if isinstance(value, torch.Tensor):
            t = value.detach().int_repr() if value.is_quantized else value.detach()
            h.update(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            h.update(repr(value).encode())
    return h.hexdigest()


@pytest.mark.parametrize("method", list(METHOD_CONFIGS) + list(METHOD_PRESETS))
def test_other_components_bit_identical(method):
    # the frontend with weights (as an SSL frontend has), so that weight methods apply to it too
    model = torch.nn.ModuleDict({c: build("fused_frontend" if c == "frontend" else c) for c in COMPONENTS})
    before = {c: checksum(m) for c, m in model.items()}
    config = make_config(method, **PARAMS.get(method, {}))
    applied = 0
    for target in COMPONENTS:
        try:
            applicable(target, config, model[target])
        except CompressionConfigError:
            continue
        compress_(model[target], config, target, calibration=calibration())
        applied += 1
        after = {c: checksum(m) for c, m in model.items()}
        for c in COMPONENTS:
            if c == target:
                assert (after[c] == before[c]) == (method == "none"), f"{method} on {target} changed nothing"
            else:
                assert after[c] == before[c], f"{method} on {target} changed {c}"
        before = after
    assert applied >= 3
