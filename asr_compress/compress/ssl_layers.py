"""The layer stacks of SSL frontends, and what reads them, for `layer_drop` on the frontend.

An SSL frontend (HuBERT, wav2vec 2.0, WavLM) holds most of such a model's weights, and its upper
layers are the usual first cut: DistilHuBERT keeps a few of HuBERT's layers, and SUPERB's
layer-wise probes read fewer. Dropping a layer is the stack's business (layer_drop.py); this module
knows where each ESPnet frontend keeps its stack and what reads the layers besides the next one,
which must follow the cut:

* ESPnetSSLFrontend (an SSL model trained in ESPnet): `upstream.encoder.encoders`; its hidden
  states are the layers' outputs; read by a learned weighted sum over all of them
  (`multilayer_feature`) or one of them (`layer`).
* S3prlFrontend: `upstream.upstream.model.encoder.layers` (S3PRL's HuBERT, wav2vec 2.0 and WavLM
  experts); its hidden states are each layer's input and the encoder's output, collected by hooks
  on those modules; read by S3PRL's featurizer (a weighted sum) or one of them (`layer`).
* HuggingFaceFrontend: `encoder.encoder.layers` of a transformers wav2vec2 / HuBERT / WavLM; the
  last hidden state is read, and `config.num_hidden_layers` follows.

A weighted sum keeps the weights of the states that remain (softmax renormalises over them); a
frontend that reads one state reads the same state renumbered, and a cut that removes it is
refused (the ASR was trained on it). WavLM's first layer holds the relative position bias every
later layer uses, so it is kept.
"""
from __future__ import annotations

from typing import Callable, List

from torch import nn

from asr_compress.errors import CompressionConfigError

STACK_PATHS = {
    "upstream.encoder.encoders": "ESPnetSSLFrontend",
    "upstream.upstream.model.encoder.layers": "S3prlFrontend",
    "encoder.encoder.layers": "HuggingFaceFrontend",
}
VALID = "an SSL frontend: " + ", ".join(f"{kind} ({path})" for path, kind in STACK_PATHS.items())
# what the first layer of WavLM (transformers, S3PRL) holds for every later layer
POSITION_BIAS = ("rel_attn_embed", "relative_attention_bias")

Change = Callable[[], List[str]]


def readout(module: nn.Module, stack: nn.Module, keep: List[int], component: str) -> Change:
    """Check that cutting `stack` of `module` down to `keep` leaves what is read, and return the
    change that makes the readout follow (it says what it did). Raises CompressionConfigError,
    changing nothing, where the cut removes what is read."""
    if component != "frontend":
        return lambda: []
    if 0 not in keep and any(name.endswith(POSITION_BIAS) for name, _ in stack[0].named_modules()):
        raise CompressionConfigError(f"{component}: layer_drop drops layer 0, which holds the relative position bias "
                                     f"every later layer uses (WavLM); valid: keep layer 0")
    if hasattr(getattr(module, "upstream", None), "upstream"):
        return _s3prl(module, len(stack), keep, component)
    if hasattr(module, "upstream") and hasattr(module, "multilayer_feature"):
        return _espnet_ssl(module, len(stack), keep, component)
    config = getattr(getattr(module, "encoder", None), "config", None)
    if hasattr(config, "num_hidden_layers"):  # HuggingFaceFrontend: the last hidden state is read
        def hf_config() -> List[str]:
            config.num_hidden_layers = len(keep)
            return []

        return hf_config
    return lambda: []


def _weighted_sum(featurizer: nn.Module, states: List[int]) -> str:
    """Keep the weights of `states` (old indices, in new order) and number them afresh."""
    w = featurizer.weights
    featurizer.weights = nn.Parameter(w.detach()[states].clone(), requires_grad=w.requires_grad)
    featurizer.layer_selections = list(range(len(states)))
    return f"the featurizer's weighted sum keeps the weights of hidden states {states}"


def _refuse_if_removed(frontend: str, layer: int, read: int, new: int, component: str) -> None:
    """`read`: the hidden state the frontend reads (layer=`layer`); `new`: its index after the cut, -1 if gone."""
    if new < 0:
        raise CompressionConfigError(
            f"{component}: layer_drop removes hidden state {read}, the one {frontend} reads (layer={layer}) and the "
            f"ASR was trained on; valid: keep the layer that computes it, or drop only other layers")


def _espnet_ssl(module: nn.Module, n: int, keep: List[int], component: str) -> Change:
    # hidden state i is the output of layer i: after the cut, state j is that of kept layer keep[j]
    if module.multilayer_feature:
        feat = module.featurizer
        if list(feat.layer_selections) != list(range(n)) or feat.weights.numel() != n:
            raise CompressionConfigError(
                f"{component}: layer_drop cannot renumber the featurizer (layer_selections={list(feat.layer_selections)}, "
                f"{feat.weights.numel()} weights); valid: one weight for each of the {n} layers, as ESPnetSSLFrontend "
                f"builds it")
        return lambda: [_weighted_sum(feat, keep)]
    layer = module.layer
    if not -n <= layer < n:
        raise CompressionConfigError(f"{component}: ESPnetSSLFrontend reads layer={layer} of {n}; valid: {-n}..{n - 1}")
    read = layer % n
    top = read == n - 1  # the top of the stack, whichever layer that now is
    new = len(keep) - 1 if top else keep.index(read) if read in keep else -1
    _refuse_if_removed("ESPnetSSLFrontend", layer, read, new, component)

    def one_layer() -> List[str]:
        module.layer = -1 if top and layer < 0 else new
        return [_reads(keep[-1] if top else read, new, top), *_unread(keep, read)]

    return one_layer


def _s3prl(module: nn.Module, n: int, keep: List[int], component: str) -> Change:
    upstream, expert = module.upstream, module.upstream.upstream
    paths = [f"self.model.encoder.layers[{i}]" for i in range(n)]
    if [h.module_path for h in getattr(expert, "hooks", [])] != paths + ["self.model.encoder"]:
        raise CompressionConfigError(
            f"{component}: layer_drop cannot follow the hidden states of this S3PRL upstream ({type(expert).__module__}); "
            f"valid: an upstream whose hidden states are its layers' inputs and its encoder's output (S3PRL's "
            f"HuBERT, wav2vec 2.0, WavLM)")
    # hidden state i < n is the input of layer i, state n the encoder's output; after the cut, state
    # 0 is still the features below every layer and state j > 0 the output of kept layer keep[j-1],
    # which was state keep[j-1] + 1
    states = [0] + [i + 1 for i in keep]
    feat, layer = module.featurizer, module.layer
    read = None
    if layer != -1:  # ESPnet reads this one state and leaves the featurizer out
        if not -(n + 1) <= layer <= n:
            raise CompressionConfigError(f"{component}: S3prlFrontend reads layer={layer} of {n + 1} hidden states; "
                                         f"valid: {-(n + 1)}..{n}")
        read = layer % (n + 1)
        new = len(states) - 1 if read == n else states.index(read) if read in states else -1
        _refuse_if_removed("S3prlFrontend", layer, read, new, component)
    elif list(getattr(feat, "layer_selections", [])) != list(range(n + 1)):
        raise CompressionConfigError(
            f"{component}: layer_drop cannot renumber the featurizer (layer_selections="
            f"{list(getattr(feat, 'layer_selections', []))}); valid: all {n + 1} hidden states, as S3prlFrontend builds it")

    def s3prl() -> List[str]:
        kept_hooks = [expert.hooks[i] for i in keep] + [expert.hooks[n]]
        for i, hook in enumerate(expert.hooks[:n]):
            if i not in keep:
                hook.handler.remove()
        for j, hook in enumerate(kept_hooks[:-1]):
            hook.module_path = f"self.model.encoder.layers[{j}]"
        expert.hooks = kept_hooks
        m = len(states)
        upstream._num_layers = m
        upstream._hidden_sizes = upstream._hidden_sizes[:m]
        upstream._downsample_rates = upstream._downsample_rates[:m]
        if read is None:
            return [_weighted_sum(feat, states)]
        module.layer = new
        feat.layer_selections = [new]
        top = read == n
        return [_reads(keep[-1] if top else read - 1, new, top), *_unread(keep, read - 1)]

    return s3prl


def _reads(layer: int, state: int, top: bool) -> str:
    """The note on what a frontend reading one hidden state reads after the cut: `layer`'s output
    (-1: the features below every layer), now hidden state `state`."""
    what = "the features below every layer" if layer < 0 else f"layer {layer}'s output"
    return f"the frontend reads {'the top of the stack, ' if top else ''}{what}, now hidden state {state}"


def _unread(keep: List[int], top_read: int) -> List[str]:
    """A note naming kept layers above the highest one whose output is read."""
    unread = [i for i in keep if i > top_read]
    return ([f"kept layers {unread} are computed but their outputs are never read: dropping them costs no accuracy"]
            if unread else [])
