"""Which submodules a method touches: `targets` and `ignore` patterns.

A pattern is one of
  - a module type name, matched against the class and its bases: "Linear", "PositionwiseFeedForward"
  - an exact fully-qualified name inside the component: "encoders.0.feed_forward.w_1"
  - "re:<regex>", matched with re.fullmatch against the fully-qualified name: "re:encoders\\.[0-3]\\..*"

Precedence, written once here:
  1. a module is a candidate only if it is of a kind the method handles (e.g. nn.Linear);
  2. `ignore` wins: a candidate is dropped if it or any ancestor matches an ignore pattern;
  3. if `targets` is empty, every remaining candidate is selected; otherwise a candidate is
     selected only if it or any ancestor matches a target pattern (so "PositionwiseFeedForward"
     selects the Linear layers inside the feed-forward blocks).
Every pattern must match at least one submodule (typos fail loudly, with valid examples).
"""
from __future__ import annotations

import functools
import inspect
import re
from typing import Callable, Iterable, List, Sequence, Tuple

from torch import nn
from torch.nn.utils.weight_norm import WeightNorm  # the class; torch.nn.utils.weight_norm is the function

from asr_compress.errors import CompressionConfigError


def type_names(module) -> List[str]:
    """Class names of `module` and its bases: lets us match ESPnet types without importing ESPnet."""
    return [cls.__name__ for cls in type(module).__mro__]


def is_kind(module, name: str) -> bool:
    return name in type_names(module)


def _matches(pattern: str, fqn: str, module) -> bool:
    if pattern.startswith("re:"):
        return re.fullmatch(pattern[3:], fqn) is not None
    return pattern == fqn or pattern in type_names(module)


def _check_patterns(root, patterns: Sequence[str], field: str, component: str, method: str) -> None:
    modules = list(root.named_modules())
    for pattern in patterns:
        if pattern.startswith("re:"):
            try:
                re.compile(pattern[3:])
            except re.error as exc:
                raise CompressionConfigError(
                    f"{component}: {method} {field} entry '{pattern}' is not a valid regex ({exc}); "
                    f"valid: a type name, an exact module name or 're:<python regex>'"
                ) from None
        if not any(_matches(pattern, fqn, mod) for fqn, mod in modules):
            raise CompressionConfigError(
                f"{component}: {method} {field} entry '{pattern}' matches no submodule; valid examples: {_examples(root)}"
            )


_USEFUL_TYPES = ("Linear", "MultiHeadedAttention", "PositionwiseFeedForward", "LSTM", "Conv1d", "Embedding")


def _examples(root) -> str:
    """A few patterns that do match in `root`: type names, exact names, a regex."""
    present = {name for _, mod in root.named_modules() for name in type_names(mod)}
    kinds = [t for t in _USEFUL_TYPES if t in present] or sorted(present)[:4]
    names = [name for name, _ in root.named_children()][:4]
    leaf = next((fqn for fqn, mod in root.named_modules() if isinstance(mod, nn.Linear)), None)
    if leaf:
        names.append(leaf)
    regex = f"re:{re.escape(names[0])}\\..*" if names else "re:.*"
    return f"type names {', '.join(kinds)}; names {', '.join(names)}; regex '{regex}'"


def select(
    root,
    kinds: Tuple[type, ...] | Callable[[object], bool],
    targets: Sequence[str],
    ignore: Sequence[str],
    component: str,
    method: str,
) -> List[Tuple[str, object]]:
    """(fqn, module) of every submodule of `root` the method should touch, in module order."""
    _check_patterns(root, targets, "targets", component, method)
    _check_patterns(root, ignore, "ignore", component, method)
    is_candidate = kinds if callable(kinds) and not isinstance(kinds, tuple) else (
        lambda m: isinstance(m, kinds)
    )
    selected = []
    # walk with the ancestors' verdicts so a match on a parent covers its children
    stack: List[Tuple[str, object, bool, bool]] = [("", root, False, False)]
    while stack:
        fqn, mod, parent_targeted, parent_ignored = stack.pop()
        targeted = parent_targeted or any(_matches(p, fqn, mod) for p in targets)
        ignored = parent_ignored or any(_matches(p, fqn, mod) for p in ignore)
        if is_candidate(mod):
            if not ignored and (not targets or targeted):
                selected.append((fqn, mod))
            continue  # a handled module is a leaf for this method: do not descend into it
        children = list(mod.named_children())
        for name, child in reversed(children):
            stack.append((f"{fqn}.{name}" if fqn else name, child, targeted, ignored))
    return selected


def nothing_selected(component: str, config, found: str, valid: str) -> CompressionConfigError:
    """The one-line error of a method whose targets/ignore select nothing it can work on: `found`
    names what it looked for, `valid` what would do (with the order-of-methods hint that fits)."""
    return CompressionConfigError(f"{component}: {config.name} targets={config.targets} ignore={config.ignore} "
                                  f"select no {found}; valid: {valid}")


def read_by_weight(parent: nn.Module) -> frozenset:
    """Names of the children that `parent`'s forward reads through `.weight`/`.bias` for a fused
    kernel instead of calling them: torch's nn.MultiheadAttention (`out_proj`), and the fairseq-style
    attention of S3PRL's HuBERT, wav2vec 2.0 and WavLM, which hands `q_proj`/`k_proj`/`v_proj`/
    `out_proj` weights to `F.multi_head_attention_forward`. Read from the forward's source, per class."""
    return _read_by_weight(type(parent))


@functools.lru_cache(maxsize=None)
def _read_by_weight(cls: type) -> frozenset:
    try:
        source = inspect.getsource(cls.forward)
    except (OSError, TypeError):  # built-in or source not shipped: nothing is known to be read so
        return frozenset()
    return frozenset(re.findall(r"self\.(\w+)\.(?:weight|bias)\b", source))


def _reroutable(parent: nn.Module) -> bool:
    """fairseq's MultiheadAttention (S3PRL's HuBERT and wav2vec 2.0) has a switch of its own that
    makes it call its projections instead of reading their weights: fairseq sets it after pruning."""
    return callable(getattr(parent, "_set_skip_embed_dim_check", None))


def _parent(root: nn.Module, fqn: str) -> Tuple[nn.Module, str]:
    parent_name, _, child = fqn.rpartition(".")
    return (root.get_submodule(parent_name) if parent_name else root), child


def swappable(root: nn.Module, selected: List[Tuple[str, object]]) -> List[Tuple[str, object]]:
    """`selected` (inside `root`) without the layers that a parent reads by weight instead of
    calling (`read_by_weight`; torch's NonDynamicallyQuantizableLinear is one), unless the parent
    can be switched to calling them (`reroute`). A method that replaces a layer with another module
    (fp16, lowrank, quantization) must leave such a layer as it is; pruning, which masks weights in
    place, may touch it."""
    out = []
    for fqn, m in selected:
        if isinstance(m, nn.modules.linear.NonDynamicallyQuantizableLinear):
            continue
        if fqn:
            parent, child = _parent(root, fqn)
            if child in read_by_weight(parent) and not _reroutable(parent):
                continue
        out.append((fqn, m))
    return out


def reroute(root: nn.Module, fqns: Iterable[str]) -> List[str]:
    """After `fqns` were replaced by other modules: switch every parent that read them by weight to
    calling them (see `_reroutable`); returns the note for the method's report (none if none was)."""
    switched = []
    for fqn in fqns:
        if not fqn:
            continue
        parent, child = _parent(root, fqn)
        if child in read_by_weight(parent) and _reroutable(parent) and not getattr(parent, "skip_embed_dim_check", False):
            parent._set_skip_embed_dim_check()
            switched.append(fqn.rpartition(".")[0])
    return ([f"{len(switched)} fairseq attention blocks now call their replaced projections instead of passing "
             f"their weights to a fused kernel (skip_embed_dim_check, as fairseq sets it after pruning)"]
            if switched else [])


def weight_norm_hooks(m) -> list:
    """The older `torch.nn.utils.weight_norm` hooks on `m` itself (fairseq-style wav2vec2/HuBERT
    positional convolutions): each computes its `hook.name` tensor from weight_g and weight_v before
    every forward, so that attribute is derived, not a parameter."""
    return [h for h in m._forward_pre_hooks.values() if isinstance(h, WeightNorm)]


def set_submodule(root, fqn: str, new) -> None:
    """Replace the submodule at `fqn` by `new` (the root itself cannot be replaced in place)."""
    if not fqn:
        raise CompressionConfigError(
            f"cannot replace the component itself ({type(root).__name__}) in place; "
            "pass its parent module, or target a submodule"
        )
    parent_name, _, child = fqn.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


def describe(selected: Iterable[Tuple[str, object]]) -> str:
    names = [fqn for fqn, _ in selected]
    return f"{len(names)} modules" + (f" ({names[0]} ... {names[-1]})" if names else "")
