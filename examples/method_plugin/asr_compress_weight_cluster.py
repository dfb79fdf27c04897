"""Weight clustering, or weight sharing (Han et al. 2016, "Deep Compression", section 3): every
targeted Linear's weights are replaced by the nearest of 2**bits values shared within that matrix,
found by one-dimensional k-means.

An example of a method kept in a package of its own (asr_compress/compress/plugins.py): this file
and the entry point in pyproject.toml are all it takes. It uses only the public registry helpers
that the built-in methods use.

Kernel: simulated. The weights stay dense float32; a real kernel would store `bits`-bit indices
plus a codebook and look them up, so the run measures the accuracy effect only.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from asr_compress.compress.registry import (
    WEIGHT_COMPONENTS,
    CompressionReport,
    MethodConfig,
    invalid,
    register_method,
)
from asr_compress.compress.targeting import describe, nothing_selected, select


@dataclass
class WeightClusterConfig(MethodConfig):
    name: str = "weight_cluster"
    # shared values per weight matrix = 2**bits; Deep Compression kept 4-5 bits for fully
    # connected layers without retraining loss, fewer bits show where a component breaks
    bits: int = 4
    # Lloyd iterations of the k-means; it starts from evenly spaced quantiles, so a few suffice
    iters: int = 10

    def validate(self) -> None:
        super().validate()
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not 1 <= self.bits <= 8:
            raise invalid(self, "bits", self.bits, "an integer 1 <= bits <= 8")
        if isinstance(self.iters, bool) or not isinstance(self.iters, int) or self.iters < 0:
            raise invalid(self, "iters", self.iters, "an integer >= 0")


def _linears(module, config: WeightClusterConfig, component: str):
    selected = select(module, (nn.Linear,), config.targets, config.ignore, component, config.name)
    if not selected:
        raise nothing_selected(component, config, "float Linear", "patterns covering at least one float Linear")
    return selected


def cluster(weight: torch.Tensor, k: int, iters: int) -> torch.Tensor:
    """`weight` with every entry replaced by the nearest of at most `k` shared values (1-D k-means)."""
    flat = weight.detach().flatten().float()
    ordered = flat.sort().values
    centroids = ordered[torch.linspace(0, flat.numel() - 1, k).round().long()]
    for _ in range(iters):
        nearest = torch.bucketize(flat, (centroids[1:] + centroids[:-1]) / 2)  # centroids stay sorted
        sums = torch.zeros(k, dtype=flat.dtype).index_add_(0, nearest, flat)
        counts = torch.bincount(nearest, minlength=k)
        centroids = torch.where(counts > 0, sums / counts.clamp(min=1), centroids).sort().values
    nearest = torch.bucketize(flat, (centroids[1:] + centroids[:-1]) / 2)
    return centroids[nearest].view_as(weight).to(weight.dtype)


@register_method(WeightClusterConfig, components=WEIGHT_COMPONENTS, check=_linears)
def _weight_cluster(module, config: WeightClusterConfig, component: str) -> CompressionReport:
    selected = _linears(module, config, component)
    with torch.no_grad():
        for _, m in selected:
            m.weight.copy_(cluster(m.weight, 2 ** config.bits, config.iters))
    return CompressionReport(
        method={}, kernel="simulated",
        notes=[f"{2 ** config.bits} shared values per weight matrix on {describe(selected)}; stored as dense "
               f"float32 (a real kernel would store {config.bits}-bit indices and a codebook)"])
