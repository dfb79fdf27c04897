"""Low-rank factorisation: each targeted Linear becomes two Linear layers from a truncated SVD."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from asr_compress.compress.registry import (
    WEIGHT_COMPONENTS,
    CompressionReport,
    MethodConfig,
    invalid,
    register_method,
)
from asr_compress.compress.targeting import nothing_selected, reroute, select, set_submodule, swappable


class LowRankLinear(nn.Module):
    """y = second(first(x)): in -> rank (no bias) -> out (with the original bias).

    Keeps `in_features`/`out_features` so code that inspects a Linear's sizes still works;
    its children are plain nn.Linear, so int8_dynamic can quantize them afterwards.
    """

    def __init__(self, linear: nn.Linear, rank: int):
        super().__init__()
        self.in_features, self.out_features, self.rank = linear.in_features, linear.out_features, rank
        w = linear.weight.detach().float()
        u, s, vh = torch.linalg.svd(w, full_matrices=False)
        root = s[:rank].sqrt()
        self.first = nn.Linear(self.in_features, rank, bias=False)
        self.second = nn.Linear(rank, self.out_features, bias=linear.bias is not None)
        with torch.no_grad():
            self.first.weight.copy_(root[:, None] * vh[:rank])
            self.second.weight.copy_(u[:, :rank] * root[None, :])
            if linear.bias is not None:
                self.second.bias.copy_(linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))


@dataclass
class LowRankConfig(MethodConfig):
    name: str = "lowrank"
    # fixed rank for every targeted Linear; when set it wins over `energy`
    rank: Optional[int] = None
    # otherwise: smallest rank keeping this fraction of the squared singular values, per layer
    energy: float = 0.9

    def validate(self) -> None:
        super().validate()
        if self.rank is not None and not (isinstance(self.rank, int) and self.rank >= 1):
            raise invalid(self, "rank", self.rank, "an integer >= 1, or null to use energy")
        if self.rank is None and not (isinstance(self.energy, (int, float)) and 0.0 < self.energy < 1.0):
            raise invalid(self, "energy", self.energy, "0 < energy < 1 (or set rank)")


def _rank_for(w: torch.Tensor, config: LowRankConfig) -> int:
    if config.rank is not None:
        return min(config.rank, min(w.shape))
    s2 = torch.linalg.svdvals(w.detach().float()).pow(2)
    kept = torch.cumsum(s2, 0) / s2.sum().clamp_min(1e-30)
    return int(torch.searchsorted(kept, torch.tensor(config.energy)).item()) + 1


def _lowrank_targets(module, config: LowRankConfig, component: str):
    selected = swappable(module, select(module, (nn.Linear,), config.targets, config.ignore, component,
                                        config.name))
    if not selected:
        raise nothing_selected(component, config, "float Linear",
                               "patterns covering at least one float Linear (factorise before quantizing)")
    return selected


@register_method(LowRankConfig, components=WEIGHT_COMPONENTS, check=_lowrank_targets)
def _lowrank(module, config: LowRankConfig, component: str) -> CompressionReport:
    selected = _lowrank_targets(module, config, component)
    done, skipped = [], []
    for fqn, lin in selected:
        out_f, in_f = lin.weight.shape
        rank = _rank_for(lin.weight, config)
        if rank * (in_f + out_f) >= in_f * out_f:  # factorised form would not be smaller
            skipped.append(fqn)
            continue
        set_submodule(module, fqn, LowRankLinear(lin, rank))
        done.append(f"{fqn}:{rank}")
    notes = [f"factorised {len(done)} Linear (name:rank) {done}",
             *reroute(module, [d.rpartition(":")[0] for d in done])]
    if skipped:
        notes.append(f"skipped {len(skipped)} Linear where rank*(in+out) >= in*out: {skipped}")
    return CompressionReport(method={}, kernel="real" if done else "none", notes=notes)
