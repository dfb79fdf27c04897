"""Layer dropping: remove whole blocks from the encoder / decoder / LM layer stack, or from the
Transformer stack of an SSL frontend."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Tuple

from torch import nn

from asr_compress.compress.registry import (
    NO_LAYER_STACK,
    CompressionReport,
    MethodConfig,
    invalid,
    register_method,
)
from asr_compress.errors import CompressionConfigError

# where the layer stack lives: ESPnet2 encoders (encoders), decoders (decoders), TransformerLM (encoder.encoders)
STACK_PATHS = ("encoders", "decoders", "encoder.encoders")
# and in SSL frontends, which hold most of such a model's weights and whose upper layers are the
# usual first cut (DistilHuBERT and the layer-wise probes of SUPERB read fewer layers):
# ESPnetSSLFrontend's SSL encoder (upstream.encoder.encoders) and the wav2vec2 / HuBERT / WavLM that
# HuggingFaceFrontend wraps (encoder.encoder.layers). S3prlFrontend's upstreams keep theirs in
# model-specific places behind S3PRL's own featurizer, and S3PRL cannot be installed and exercised
# offline here, so it is refused rather than guessed at.
SSL_STACK_PATHS = ("upstream.encoder.encoders", "encoder.encoder.layers")


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
    paths = SSL_STACK_PATHS if component == "frontend" else STACK_PATHS
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
    if component != "frontend":
        valid = f"a module with one of {', '.join(STACK_PATHS)} (ESPnet encoder, decoder, TransformerLM)"
    elif kind == "S3prlFrontend":
        valid = ("ESPnetSSLFrontend or HuggingFaceFrontend (S3PRL upstreams are not supported: their layers sit in "
                 "model-specific places behind S3PRL's featurizer), or a weight method on this frontend")
    else:
        valid = ("an SSL frontend: ESPnetSSLFrontend (upstream.encoder.encoders) or HuggingFaceFrontend "
                 "(encoder.encoder.layers)")
    raise CompressionConfigError(f"{component}: layer_drop found no layer stack in {kind}; valid: {valid}")


def _readout(module: nn.Module, stack: nn.Module, keep: List[int], component: str) -> Callable[[], List[str]]:
    """What reads an SSL frontend's layers besides the next layer, made to match `keep`:
    ESPnetSSLFrontend's learned weighted sum (one weight per layer: the kept layers keep theirs) or
    the one layer it reads (`layer`: renumbered; refused if dropped, since the ASR was trained on
    it), and a Hugging Face model's `config.num_hidden_layers`. Raises CompressionConfigError,
    changing nothing, where the cut removes what is read; returns the change as a function that
    makes it and says what it did."""
    if component != "frontend":
        return lambda: []
    n = len(stack)
    if hasattr(module, "upstream") and hasattr(module, "multilayer_feature"):  # ESPnetSSLFrontend
        if module.multilayer_feature:
            feat = module.featurizer
            if list(feat.layer_selections) != list(range(n)) or feat.weights.numel() != n:
                raise CompressionConfigError(
                    f"{component}: layer_drop cannot renumber the featurizer (layer_selections="
                    f"{list(feat.layer_selections)}, {feat.weights.numel()} weights); valid: one weight per "
                    f"each of the {n} layers, as ESPnetSSLFrontend builds it")

            def weighted_sum() -> List[str]:
                feat.weights = nn.Parameter(feat.weights.detach()[keep].clone(), requires_grad=feat.weights.requires_grad)
                feat.layer_selections = list(range(len(keep)))
                return [f"the featurizer's weighted sum keeps the weights of layers {keep}"]

            return weighted_sum
        layer = module.layer
        if not -n <= layer < n:
            raise CompressionConfigError(f"{component}: ESPnetSSLFrontend reads layer={layer} of {n}; valid: {-n}..{n - 1}")
        read = layer % n
        if read != n - 1 and read not in keep:
            raise CompressionConfigError(
                f"{component}: layer_drop drops layer {read}, the one ESPnetSSLFrontend reads (layer={layer}) and "
                f"the ASR was trained on; valid: keep layer {read}, or drop only other layers")

        def one_layer() -> List[str]:
            if read == n - 1:  # the top of the stack, whichever layer that now is
                module.layer = -1 if layer < 0 else len(keep) - 1
                return [f"the frontend reads the top kept layer, {keep[-1]}"]
            module.layer = keep.index(read)
            unread = [i for i in keep if i > read]
            return [f"the frontend reads layer {read} (now layer={module.layer})"] + (
                [f"kept layers {unread} above it are computed but never read: dropping them costs no accuracy"]
                if unread else [])

        return one_layer
    config = getattr(getattr(module, "encoder", None), "config", None)
    if hasattr(config, "num_hidden_layers"):  # HuggingFaceFrontend
        if 0 not in keep and hasattr(getattr(stack[0], "attention", None), "rel_attn_embed"):
            raise CompressionConfigError(
                f"{component}: layer_drop drops layer 0, which holds the relative position bias every later layer "
                f"uses (WavLM); valid: keep layer 0")

        def hf_config() -> List[str]:
            config.num_hidden_layers = len(keep)
            return []

        return hf_config
    return lambda: []


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
    return owner, attr, stack, keep, _readout(module, stack, keep, component)


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
    return CompressionReport(
        method={}, kernel="real",
        notes=[f"kept {len(keep)} of {n} layers of {attr}: {keep}", *readout()],
    )
