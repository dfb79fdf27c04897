"""Compression methods, applied in place to any torch.nn.Module (one ESPnet component at a time).

Public API (stable; the pipeline and the analysis code depend on it):

    compress_(module, config, component="encoder") -> CompressionReport   # in place
    component_stats(module, report) -> dict   # method, params, nonzero_params, sparsity, size_bytes, kernel
    applicable(component, config, module=None) -> None   # raises CompressionConfigError before any decoding;
                                                         # with `module`, also checks its structure
    METHOD_CONFIGS: dict[str, type[MethodConfig]]   # method name -> config dataclass
    METHOD_PRESETS: dict[str, MethodConfig]         # named preset instances (composed recipes)
    make_config(name, component=None, **params) -> MethodConfig

    >>> from asr_compress.compress import compress_, make_config
    >>> report = compress_(model.decoder, make_config("prune_unstructured", sparsity=0.7), "decoder")

Importing this package imports torch but never ESPnet (ESPnet types are matched by class name).
See docs/compression_methods.md for the methods, their parameters and kernel status.
"""
from __future__ import annotations

from asr_compress.compress.registry import (
    METHOD_CONFIGS,
    METHOD_PRESETS,
    CompressionReport,
    MethodConfig,
    NoneConfig,
    applicable,
    applicable_methods,
    compress_,
    make_config,
    method_config,
    needs_calibration,
)

# each method module registers its configs and handlers on import
from asr_compress.compress.quantize import (  # noqa: E402
    Bf16Config,
    Fp16Config,
    Int4WeightOnlyConfig,
    Int8DynamicConfig,
    Int8WeightOnlyConfig,
)
from asr_compress.compress.prune import PruneNMConfig, PruneStructuredConfig, PruneUnstructuredConfig  # noqa: E402
from asr_compress.compress.lowrank import LowRankConfig  # noqa: E402
from asr_compress.compress.layer_drop import LayerDropConfig  # noqa: E402
from asr_compress.compress.sequence import SequenceConfig  # noqa: E402
from asr_compress.compress.distill import DistillConfig  # noqa: E402
from asr_compress.compress.stats import component_stats  # noqa: E402
from asr_compress.errors import CompressionConfigError  # noqa: E402
from asr_compress.compress.plugins import load_plugins  # noqa: E402

# methods of other installed packages (entry-point group asr_compress.methods), after the built-in
# ones so that a plugin may build on them and cannot take their names
load_plugins()

__all__ = [
    "compress_", "component_stats", "applicable", "applicable_methods", "method_config", "make_config", "METHOD_CONFIGS", "METHOD_PRESETS",
    "MethodConfig", "NoneConfig", "CompressionReport", "CompressionConfigError",
    "Int8DynamicConfig", "Fp16Config", "Bf16Config", "Int8WeightOnlyConfig", "Int4WeightOnlyConfig",
    "PruneUnstructuredConfig", "PruneNMConfig", "PruneStructuredConfig", "LowRankConfig",
    "LayerDropConfig", "SequenceConfig", "DistillConfig", "needs_calibration",
]
