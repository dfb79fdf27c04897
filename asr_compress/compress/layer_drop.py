"""Layer dropping: remove whole blocks from the encoder / decoder / LM layer stack, or from the
Transformer stack of an SSL frontend."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Tuple

import torch
from torch import nn

from asr_compress.compress import ssl_layers
from asr_compress.compress.registry import (
    NO_LAYER_STACK,
    CompressionReport,
    MethodConfig,
    invalid,
    register_method,
)
from asr_compress.errors import CompressionConfigError

# where the layer stack lives: ESPnet2 encoders (encoders), decoders (decoders), TransformerLM (encoder.encoders),
# the encoder of ESPnet's transducer task (espnet2/asr_transducer: MultiBlocks.blocks)
STACK_PATHS = ("encoders", "decoders", "encoder.encoders", "encoders.blocks")


@dataclass
class LayerDropConfig(MethodConfig):
    name: str = "layer_drop"
    # keep layers 0, k, 2k, ... and drop the others. Default 2 halves the depth, the usual first
    # probe of how much depth a component needs; set 0 to drop only the `drop` indices
    keep_every: int = 2
    # explicit layer indices to drop (0-based, negative counts from the end); combined with keep_every
    drop: List[int] = field(default_factory=list)

    def validate(self) -> None:
        super().validate()
        if not (isinstance(self.keep_every, int) and self.keep_every >= 0):
            raise invalid(self, "keep_every", self.keep_every, "an integer >= 0 (0 = off, 2 = keep every other layer)")
        if not all(isinstance(i, int) for i in self.drop):
            raise invalid(self, "drop", self.drop, "a list of integer layer indices")
        if self.keep_every <= 1 and not self.drop:
            raise invalid(self, "keep_every", self.keep_every, "keep_every >= 2 or a non-empty drop list (else nothing is dropped)")


def _find_stack(module: nn.Module, component: str) -> Tuple[nn.Module, str, nn.Module]:
    paths = tuple(ssl_layers.STACK_PATHS) if component == "frontend" else STACK_PATHS
    for path in paths:
        owner_path, _, attr = path.rpartition(".")
        try:
            owner = module.get_submodule(owner_path) if owner_path else module
        except AttributeError:
            continue
        stack = getattr(owner, attr, None)
        if isinstance(stack, (nn.Sequential, nn.ModuleList)) and len(stack) > 0:
            return owner, attr, stack
    kind = type(module).__name__
    valid = (ssl_layers.VALID if component == "frontend"
             else f"a module with one of {', '.join(STACK_PATHS)} (ESPnet encoder, decoder, TransformerLM, transducer-task encoder)")
    raise CompressionConfigError(f"{component}: layer_drop found no layer stack in {kind}; valid: {valid}")


def _plan(module: nn.Module, config: LayerDropConfig,
          component: str) -> Tuple[nn.Module, str, nn.Module, List[int], Callable[[], List[str]]]:
    """(owner, attribute, layer stack, indices to keep, the readout's change), or
    CompressionConfigError; changes nothing."""
    if config.targets or config.ignore:
        raise CompressionConfigError(
            f"{component}: layer_drop targets={config.targets} ignore={config.ignore} are not supported; "
            "valid: empty targets/ignore (layers are chosen with keep_every and drop)"
        )
    owner, attr, stack = _find_stack(module, component)
    n = len(stack)
    bad = [i for i in config.drop if not -n <= i < n]
    if bad:
        raise CompressionConfigError(f"{component}: layer_drop drop={config.drop} has out-of-range {bad}; valid range: {-n}..{n - 1} ({n} layers)")
    dropped = {i % n for i in config.drop}
    if config.keep_every >= 2:
        dropped |= {i for i in range(n) if i % config.keep_every}
    keep = [i for i in range(n) if i not in dropped]
    if not keep:
        raise CompressionConfigError(
            f"{component}: layer_drop keep_every={config.keep_every} drop={config.drop} drops all {n} layers; "
            "valid: leave at least one layer"
        )
    if getattr(owner, "interctc_layer_idx", None):
        raise CompressionConfigError(
            f"{component}: layer_drop with interctc_layer_idx={owner.interctc_layer_idx} is not supported; "
            "valid: an encoder without intermediate CTC"
        )
    return owner, attr, stack, keep, ssl_layers.readout(module, stack, keep, component)


@register_method(LayerDropConfig, components=("frontend", "encoder", "decoder", "lm"), reasons=NO_LAYER_STACK, check=_plan)
def _layer_drop(module: nn.Module, config: LayerDropConfig, component: str) -> CompressionReport:
    owner, attr, stack, keep, readout = _plan(module, config, component)
    n = len(stack)
    layers = [stack[i] for i in keep]
    new = type(stack)(*layers) if isinstance(stack, nn.Sequential) else nn.ModuleList(layers)
    if hasattr(stack, "layer_drop_rate"):  # ESPnet MultiSequential
        new.layer_drop_rate = stack.layer_drop_rate
    new.train(stack.training)
    setattr(owner, attr, new)
    if hasattr(owner, "num_blocks"):
        owner.num_blocks = len(keep)
    if hasattr(owner, "keep_probs"):  # MultiBlocks' block dropping in training, one probability per block
        owner.keep_probs = torch.ones(len(keep))
        owner.blockdrop_decay = 1.0 / len(keep)
    return CompressionReport(
        method={}, kernel="real",
        notes=[f"kept {len(keep)} of {n} layers of {attr}: {keep}", *readout()],
    )
