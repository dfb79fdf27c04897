"""Compression methods from other packages: the `asr_compress.methods` entry-point group.

A method of your own can live in your own package rather than in a fork of this one. Its
pyproject.toml names the module that registers it (examples/method_plugin/ is a working one):

    [project.entry-points."asr_compress.methods"]
    weight_cluster = "asr_compress_weight_cluster"

Once that package is installed (`pip install -e .`), every asr-compress command knows
`encoder=weight_cluster`: the module is imported when `asr_compress.compress` is, which is before
Hydra composes a config, so its config dataclass becomes a schema like the built-in methods' (a
typo'd parameter fails at once), `cut=encoder_weight_cluster` exists, and retiming and the tests'
isolation checks see it. Each run records the plugins it had in `metrics.json`
(environment.method_plugins) so that a number is cited with the code that produced it.

A plugin that fails to import, or that registers a name already taken, stops every command with
one line naming the entry point and the distribution that installed it: running without it would
silently drop its method from a sweep.
"""
from __future__ import annotations

import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from asr_compress.compress.registry import METHOD_CONFIGS, METHOD_PRESETS
from asr_compress.errors import AsrCompressError

GROUP = "asr_compress.methods"

# entry point value (module) -> (distribution and version, the method names it registered)
_loaded: Dict[str, Tuple[str, Optional[List[str]]]] = {}


class PluginError(AsrCompressError):
    """A method plugin (entry point of group asr_compress.methods) could not be loaded."""


def load_plugins() -> None:
    """Import every installed method plugin once; its module registers its methods on import."""
    for ep in entry_points(group=GROUP):
        if ep.value in _loaded:  # a distribution seen twice on sys.path (editable installs)
            continue
        dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist is not None else "an unknown distribution"
        # imported before this package (a user's script imported the plugin first): it is still
        # running its own imports and registers when it gets there, so only its names are unknown yet
        early = ep.module in sys.modules
        before = set(METHOD_CONFIGS) | set(METHOD_PRESETS)
        try:
            ep.load()
        except Exception as exc:  # noqa: BLE001 - any failure of foreign code, named in one line
            raise PluginError(
                f"method plugin {ep.name} = {ep.value!r} (entry point group {GROUP}, installed by {dist}) failed "
                f"to load: {type(exc).__name__}: {exc}; valid: fix that module, or uninstall {dist.split()[0]}"
            ) from exc
        added = sorted((set(METHOD_CONFIGS) | set(METHOD_PRESETS)) - before)
        if not added and not early:
            raise PluginError(
                f"method plugin {ep.name} = {ep.value!r} (installed by {dist}) registered no method; valid: a "
                "module that calls @register_method (docs/compression_methods.md, 'How to add a method')")
        _loaded[ep.value] = (dist, added or None)


def plugin_sources() -> List[Path]:
    """Where each loaded plugin's code lives: its top-level package's folder, or its module file."""
    out = set()
    for value in _loaded:
        spec = importlib.util.find_spec(value.split(":")[0].split(".")[0])
        if spec is None:
            continue
        if spec.submodule_search_locations:
            out.update(Path(p) for p in spec.submodule_search_locations)
        elif spec.origin:
            out.add(Path(spec.origin))
    return sorted(out)


def loaded() -> str:
    """The loaded plugins in one line ("" when none), as the run's environment records them."""
    out = []
    for module, (dist, names) in _loaded.items():
        if names is None:  # imported early: its config classes name their module
            names = [n for n, cls in METHOD_CONFIGS.items() if cls.__module__.split(".")[0] == module.split(".")[0]]
        out.append(f"{','.join(names)} from {dist}")
    return "; ".join(out)
