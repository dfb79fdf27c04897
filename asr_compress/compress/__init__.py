"""Compression methods, applied in place to any torch.nn.Module.

Public API (stable; the foundation and the analysis code depend on it):

    compress_(module, config, component="encoder") -> CompressionReport
    component_stats(module, report) -> dict   # params, nonzero_params, size_bytes, sparsity, kernel
    METHOD_CONFIGS: dict[str, type[MethodConfig]]   # method name -> config dataclass

PLACEHOLDER: only `none` exists until the methods land (issue 4).
"""
from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass, field
from typing import Any, Dict, List


@dataclass
class MethodConfig:
    # the preset name, fixed by each subclass; lets a run record what was applied
    name: str = "none"
    # submodules to compress: type name, exact qualified name or "re:<regex>"; empty = method default
    targets: List[str] = field(default_factory=list)
    # submodules never to touch, same syntax; wins over targets
    ignore: List[str] = field(default_factory=list)


@dataclass
class NoneConfig(MethodConfig):
    name: str = "none"


@dataclass
class CompressionReport:
    method: Dict[str, Any]
    # "none" (untouched), "real" (runs faster/smaller kernels) or "simulated" (accuracy effect only)
    kernel: str = "none"
    notes: List[str] = field(default_factory=list)


METHOD_CONFIGS: Dict[str, type] = {"none": NoneConfig}


def compress_(module, config: MethodConfig, component: str = "module") -> CompressionReport:
    """Apply `config` to `module` in place and say what was done."""
    return CompressionReport(method=dataclasses.asdict(config), kernel="none")


def component_stats(module, report: CompressionReport) -> Dict[str, Any]:
    """Parameter count, nonzeros and stored size of a component."""
    import torch

    params = sum(p.numel() for p in module.parameters())
    nonzero = sum(int(torch.count_nonzero(p)) for p in module.parameters())
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    return {
        "method": report.method,
        "params": params,
        "nonzero_params": nonzero,
        "sparsity": 0.0 if params == 0 else 1.0 - nonzero / params,
        "size_bytes": buf.getbuffer().nbytes,
        "kernel": report.kernel,
    }
