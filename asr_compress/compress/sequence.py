"""Composed recipes: an ordered list of methods applied to one component (e.g. prune -> low-rank -> int8)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping

from asr_compress.compress.registry import (
    COMPONENTS,
    CompressionReport,
    METHOD_CONFIGS,
    MethodConfig,
    applicable,
    compress_,
    invalid,
    make_config,
    register_method,
    register_preset,
    resolve,
)
from asr_compress.errors import CompressionConfigError


@dataclass
class SequenceConfig(MethodConfig):
    name: str = "sequence"
    # the steps in order, each {"name": <method>, <param>: <value>, ...}; a step without its own
    # targets/ignore inherits this config's targets/ignore
    steps: List[Dict[str, Any]] = field(default_factory=list)

    def validate(self) -> None:
        super().validate()
        if not self.steps:
            raise invalid(self, "steps", self.steps, "a non-empty list of {name: <method>, ...params}")
        for i, step in enumerate(self.steps):
            self.step_config(i, step)

    def step_config(self, i: int, step: Dict[str, Any]) -> MethodConfig:
        if not isinstance(step, Mapping):
            raise invalid(self, f"steps[{i}]", step, "a mapping {name: <method>, <param>: <value>, ...}")
        step = dict(step)
        name = step.pop("name", None)
        singles = [n for n, cls in METHOD_CONFIGS.items() if not issubclass(cls, SequenceConfig)]
        if name not in singles:  # no nesting: a recipe is one flat, readable list
            raise invalid(self, f"steps[{i}].name", name, f"one of {', '.join(singles)}")
        step.setdefault("targets", list(self.targets))
        step.setdefault("ignore", list(self.ignore))
        try:
            return make_config(name, **step)
        except CompressionConfigError as exc:
            raise CompressionConfigError(f"{self.name} steps[{i}]: {exc}") from None

    def step_configs(self) -> List[MethodConfig]:
        return [self.step_config(i, s) for i, s in enumerate(self.steps)]

    def uses_calibration(self) -> bool:
        from asr_compress.compress.registry import needs_calibration

        return any(needs_calibration(c) for c in self.step_configs())

    def check_components(self, component: str) -> None:
        for i, cfg in enumerate(self.step_configs()):
            try:
                resolve(component, cfg)
            except CompressionConfigError as exc:
                raise CompressionConfigError(f"{exc} [in {self.name} steps[{i}]]") from None


def _combined_kernel(kernels: List[str]) -> str:
    # one simulated step means the result's accuracy is simulated: never present it as a speedup
    if "simulated" in kernels:
        return "simulated"
    return "real" if "real" in kernels else "none"


def _check_first_step(module, config: SequenceConfig, component: str) -> None:
    # only the first step sees the module as it is now; later steps see what earlier ones leave
    # (e.g. targets naming LowRankLinear's `first`), so compress_ checks those when it gets there
    first = config.step_configs()[0]
    try:
        applicable(component, first, module)
    except CompressionConfigError as exc:
        raise CompressionConfigError(f"{exc} [in {config.name} steps[0]]") from None


def apply_steps(module, steps: List[MethodConfig], component: str, calibration=None) -> CompressionReport:
    """Apply `steps` in order; one report: the combined kernel and every step's notes, prefixed."""
    kernels, notes = [], []
    for i, cfg in enumerate(steps):
        report = compress_(module, cfg, component, calibration=calibration)
        kernels.append(report.kernel)
        notes += [f"step {i} {cfg.name} ({report.kernel}): {n}" for n in report.notes]
    return CompressionReport(method={}, kernel=_combined_kernel(kernels), notes=notes)


@register_method(SequenceConfig, components=COMPONENTS, check=_check_first_step, calibration=True)
def _sequence(module, config: SequenceConfig, component: str, calibration=None) -> CompressionReport:
    return apply_steps(module, config.step_configs(), component, calibration)


PRUNE_LOWRANK_INT8 = register_preset(
    SequenceConfig(
        name="prune_lowrank_int8",
        steps=[
            # structured first: removes heads/channels physically, so every step keeps a real kernel
            {"name": "prune_structured", "heads_fraction": 0.25, "channels_fraction": 0.25},
            # then factorise what is left, keeping 90% of the singular-value energy per layer
            {"name": "lowrank", "energy": 0.9},
            # and run the factors with PyTorch's int8 dynamic kernels
            {"name": "int8_dynamic"},
        ],
    )
)
