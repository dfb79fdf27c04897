"""Config base classes, the handler registry keyed by config type, `compress_` and `applicable`.

Users only see configs; handlers are private functions registered per config type:

    @register_method(MyConfig, components=("encoder", "decoder"))
    def _my_handler(module, config, component) -> CompressionReport: ...

Torch-free on purpose: the configs are read by Hydra before any model is loaded.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Tuple

from asr_compress import COMPONENTS
from asr_compress.errors import CompressionConfigError

KERNELS = ("none", "real", "simulated")

# why a method family cannot apply to a component, phrased for the one-line error
NO_LAYER_STACK = {
    "ctc": "ctc has no layer stack, it is one Linear",
}
NO_HEADS = {
    "frontend": "heads and channels are pruned in the encoder, decoder and LM stacks, not in a frontend",
    "ctc": "ctc has no attention heads or feed-forward channels, its output size is the vocabulary",
}
# Methods on weight matrices apply to every component, the frontend included: ESPnet's default
# frontend (STFT + fixed mel filterbank) has no weights, but an SSL frontend (S3prlFrontend,
# HuggingFaceFrontend, ESPnetSSLFrontend, as in the best LibriSpeech recipes) holds most of the
# model's. Which one a model has is known only once it is loaded, so `applicable(..., module)`
# refuses a weight-less module there, before anything is decoded.
WEIGHT_COMPONENTS = ("frontend", "encoder", "ctc", "decoder", "lm")
# components whose modules may have no weights at all, depending on the model
MODEL_DEPENDENT = ("frontend",)
STACK_COMPONENTS = ("encoder", "decoder", "lm")


@dataclass
class MethodConfig:
    # the preset name, fixed by each subclass; lets a run record what was applied
    name: str = "none"
    # submodules to compress: type name, exact qualified name or "re:<regex>"; empty = method default
    targets: List[str] = field(default_factory=list)
    # submodules never to touch, same syntax; wins over targets
    ignore: List[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise CompressionConfigError naming the parameter and its valid range; overridden per method."""
        for param in ("targets", "ignore"):
            value = getattr(self, param)
            if isinstance(value, str) or not all(isinstance(p, str) and p for p in value):
                raise invalid(self, param, value, "a list of non-empty strings (type name, exact name or 're:<regex>')")


@dataclass
class NoneConfig(MethodConfig):
    name: str = "none"


@dataclass
class CompressionReport:
    method: Dict[str, Any]
    # "none" (untouched), "real" (runs faster/smaller kernels) or "simulated" (accuracy effect only)
    kernel: str = "none"
    notes: List[str] = field(default_factory=list)


def invalid(config: MethodConfig, param: str, value: Any, valid: str) -> CompressionConfigError:
    """The one-line error for a bad parameter; the component is prefixed by `applicable`."""
    return CompressionConfigError(f"{config.name} {param}={value!r} is invalid; valid: {valid}")


@dataclass(frozen=True)
class _Method:
    config_type: type
    handler: Callable[..., CompressionReport]
    components: Tuple[str, ...]
    reasons: Mapping[str, str]
    check: Callable[..., Any] = None
    # the handler takes `calibration=` (pipeline/calibration.py): data the uncompressed model decoded
    calibration: bool = False


_METHODS: Dict[type, _Method] = {}
# method name -> config dataclass (Hydra registers each into every component group)
METHOD_CONFIGS: Dict[str, type] = {}
# named presets that are instances rather than classes (composed recipes)
METHOD_PRESETS: Dict[str, MethodConfig] = {}


def register_method(config_type: type, components: Tuple[str, ...], reasons: Mapping[str, str] = None,
                    check: Callable[..., Any] = None, calibration: bool = False):
    """Register the handler for `config_type`; `components` are those it applies to; `check(module,
    config, component)` raises CompressionConfigError if a given module cannot take the method
    (no layer stack, no targeted Linear, ...) without changing it. `calibration=True`: the handler
    is called with `calibration=` (a pipeline.calibration.Calibration, or None where the caller has
    none) and the config needs one unless it defines `uses_calibration()` and that says no."""

    def decorator(fn):
        name = config_type.name if isinstance(config_type.name, str) else None
        if not name or name in METHOD_CONFIGS:
            raise RuntimeError(f"method name {name!r} of {config_type.__name__} is empty or already registered")
        _METHODS[config_type] = _Method(config_type, fn, tuple(components), dict(reasons or {}), check, calibration)
        METHOD_CONFIGS[name] = config_type
        return fn

    return decorator


def register_preset(preset: MethodConfig) -> MethodConfig:
    if preset.name in METHOD_CONFIGS or preset.name in METHOD_PRESETS:
        raise RuntimeError(f"preset name {preset.name!r} is already registered")
    METHOD_PRESETS[preset.name] = preset
    return preset


def _choices() -> str:
    return ", ".join(list(METHOD_CONFIGS) + list(METHOD_PRESETS))


def make_config(name: str, component: str = None, **params: Any) -> MethodConfig:
    """Build a validated config by method or preset name: make_config("prune_unstructured", sparsity=0.5)."""
    prefix = f"{component}: " if component else ""
    try:
        if name in METHOD_CONFIGS:
            cls = METHOD_CONFIGS[name]
            return cls(**params)
        if name in METHOD_PRESETS:
            return dataclasses.replace(METHOD_PRESETS[name], **params)
    except CompressionConfigError as exc:
        raise CompressionConfigError(prefix + str(exc)) from None
    except TypeError:
        cls = METHOD_CONFIGS.get(name) or type(METHOD_PRESETS[name])
        valid = [f.name for f in dataclasses.fields(cls) if f.name != "name"]
        unknown = sorted(set(params) - set(valid))
        if not unknown:  # a TypeError from inside the config, not from an unknown keyword
            raise
        raise CompressionConfigError(
            f"{prefix}{name} has no parameter {', '.join(map(repr, unknown))}; valid parameters: {', '.join(valid)}"
        ) from None
    raise CompressionConfigError(f"{prefix}unknown method name={name!r}; valid choices: {_choices()}")


def _as_plain(obj: Any) -> Any:
    if type(obj).__name__ in ("DictConfig", "ListConfig"):  # Hydra node: convert without importing omegaconf here
        from omegaconf import OmegaConf

        return OmegaConf.to_container(obj, resolve=True)
    return obj


def resolve(component: str, config: Any) -> MethodConfig:
    """The validated MethodConfig for `config` (an instance, a dict or a Hydra node) on `component`."""
    config = _as_plain(config)
    if isinstance(config, Mapping):
        params = dict(config)
        name = params.pop("name", None)
        if name is None:
            raise CompressionConfigError(f"{component}: method config has no 'name'; valid choices: {_choices()}")
        config = make_config(name, component, **params)
    if not isinstance(config, MethodConfig):
        raise CompressionConfigError(
            f"{component}: config is a {type(config).__name__}; valid: a MethodConfig, or a mapping with "
            f"'name' in: {_choices()}"
        )
    try:
        config.validate()  # fields may have been changed after construction
    except CompressionConfigError as exc:
        raise CompressionConfigError(f"{component}: {exc}") from None
    method = _METHODS.get(type(config))
    if method is None:
        raise CompressionConfigError(
            f"{component}: no handler registered for {type(config).__name__}; valid choices: {_choices()}"
        )
    if component in COMPONENTS and component not in method.components:
        reason = method.reasons.get(component, f"{config.name} is not defined for {component}")
        raise CompressionConfigError(
            f"{component}: {config.name} does not apply ({reason}); valid components: {', '.join(method.components)}"
        )
    extra = getattr(config, "check_components", None)  # composed configs check their steps
    if extra is not None:
        extra(component)
    return config


def applicable(component: str, config: Any, module: Any = None) -> None:
    """Raise CompressionConfigError (one line: component, parameter, valid range) unless `config`
    can be applied to `component`. Call it before any decoding. Components outside
    asr_compress.COMPONENTS are treated as generic modules (only the parameters are checked).
    With `module`, also check its structure (targets match, a layer stack exists, layer indices
    are in range) without changing it."""
    config = resolve(component, config)
    if module is not None and config.name != "none" and not any(True for _ in module.parameters()):
        kind = type(module).__name__ + (" (STFT + fixed mel filterbank)" if type(module).__name__ == "DefaultFrontend" else "")
        valid = f"{component}=none" + (", or a model with an SSL frontend (S3prlFrontend, HuggingFaceFrontend, "
                                       "ESPnetSSLFrontend)" if component == "frontend" else "")
        raise CompressionConfigError(f"{component}: {config.name} does not apply to this model's {component}: "
                                     f"{kind} has no weights; valid: {valid}")
    check = _METHODS[type(config)].check
    if module is not None and check is not None:
        check(module, config, component)


def needs_calibration(config: Any, component: str = "encoder") -> bool:
    """Whether applying `config` needs calibration data (a method that learns, or a recipe with one)."""
    return _learns(resolve(component, config))


def _learns(config: MethodConfig) -> bool:
    uses = getattr(config, "uses_calibration", None)
    return _METHODS[type(config)].calibration and (uses is None or uses())


def compress_(module, config: Any, component: str = "encoder", calibration: Any = None) -> CompressionReport:
    """Apply `config` to `module` in place and say what was done.

    `config` is a MethodConfig, or a mapping / Hydra node with a `name`. Invalid configs and
    method/component pairs that do not apply raise CompressionConfigError before anything changes.
    `calibration` (pipeline/calibration.py) is passed to methods that learn from data (`distill`),
    which refuse to run without it.
    """
    config = resolve(component, config)
    method = _METHODS[type(config)]
    if _learns(config) and not calibration:
        raise CompressionConfigError(f"{component}: {config.name} learns from data and was given no calibration "
                                     f"utterances; valid: set calibration.dir to a Kaldi-style data dir that is "
                                     f"not the test set (compress_(..., calibration=...) from Python)")
    extra = {"calibration": calibration} if method.calibration else {}
    report = method.handler(module, config, component, **extra)
    if report.kernel not in KERNELS:
        raise RuntimeError(f"handler for {config.name} returned kernel={report.kernel!r}; valid: {KERNELS}")
    report.method = dataclasses.asdict(config)
    return report


@register_method(NoneConfig, components=COMPONENTS)
def _none(module, config: NoneConfig, component: str) -> CompressionReport:
    return CompressionReport(method={}, kernel="none", notes=["identity: nothing changed"])


def method_config(name: str) -> MethodConfig:
    """A fresh config for a method or preset name, with its default parameters."""
    if name in METHOD_PRESETS:
        return copy.deepcopy(METHOD_PRESETS[name])
    if name in METHOD_CONFIGS:
        return METHOD_CONFIGS[name]()
    raise CompressionConfigError(f"unknown method {name!r}; valid: {', '.join([*METHOD_CONFIGS, *METHOD_PRESETS])}")


def applicable_methods(component: str, names=None, module: Any = None) -> list:
    """Names of the methods and presets (default settings) that apply to `component`, and with
    `module` (the loaded model's component) to its structure.

    `sequence` and `distill` are left out: they have no default steps. So are methods that learn
    from data (`layer_drop_distill`): a sweep that tries everything has no calibration set to give
    them. Without `module`, a component in MODEL_DEPENDENT (the frontend) gets none: most ESPnet
    frontends have no weights, and whether this model's has is known only from the model. Used by
    sweeps that try everything.
    """
    if module is None and component in MODEL_DEPENDENT:
        return []
    out = []
    for name in names or [*METHOD_CONFIGS, *METHOD_PRESETS]:
        if name in ("none", "sequence", "distill"):
            continue
        try:
            applicable(component, method_config(name), module)
            if needs_calibration(method_config(name), component):
                continue
        except CompressionConfigError:
            continue
        out.append(name)
    return out
