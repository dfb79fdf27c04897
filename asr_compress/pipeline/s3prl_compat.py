"""ESPnet's S3PRL frontend (S3prlFrontend) under this project's pinned torch stack.

S3PRL frontends are the usual SSL frontends of ESPnet's LibriSpeech recipes (HuBERT, WavLM). Two
things stand between them and a working study here:

* s3prl 0.4.18 imports every upstream when its hub loads, and two of them use torchaudio APIs that
  torchaudio 2.9 removed (`torchaudio.set_audio_backend` in byol_s, `torchaudio.sox_effects` in
  mos_prediction). Under the pinned torchaudio 2.11 `import s3prl.hub` therefore fails before any
  model is built, whichever upstream the model uses (ESPnet's own `asr_inference` too).
  `patch_torchaudio()` puts stand-ins in their place: a no-op backend setter (2.9+ has one backend
  and nothing to choose) and a `sox_effects` module whose one function raises, saying why, if the
  MOS-prediction upstream ever calls it. Nothing else in torchaudio changes.
* S3PRL upstreams collect their hidden states with forward hooks whose closures hold the upstream's
  own list. `copy.deepcopy` copies the modules and the hooks but not what the closures hold, so a
  copy's hooks fill the original's list and the copy finds none (KeyError 'hidden_states'). A study
  copies the model for every cell it compresses (`Pipeline.copy`): `rehook(model)` registers each
  S3PRL upstream's hooks afresh on its copy.
"""
from __future__ import annotations

import sys
import types

from torch import nn


def _sox_effects_removed(*args, **kwargs):
    raise RuntimeError("torchaudio.sox_effects was removed in torchaudio 2.9; the S3PRL upstream that calls it "
                       "(mos_prediction) needs torchaudio < 2.9")


def patch_torchaudio() -> None:
    """Let `import s3prl.hub` succeed under torchaudio >= 2.9 (idempotent; see the module's docstring)."""
    import torchaudio

    if not hasattr(torchaudio, "set_audio_backend"):
        torchaudio.set_audio_backend = lambda *args, **kwargs: None
    try:
        import torchaudio.sox_effects  # noqa: F401
    except ImportError:
        stand_in = types.ModuleType("torchaudio.sox_effects")
        stand_in.apply_effects_tensor = stand_in.apply_effects_file = _sox_effects_removed
        sys.modules["torchaudio.sox_effects"] = stand_in
        torchaudio.sox_effects = stand_in


def _is_s3prl_hook(fn) -> bool:
    return getattr(fn, "__qualname__", "").startswith("UpstreamBase._register_hook_handler.")


def s3prl_experts(model: nn.Module):
    """The S3PRL upstream experts (UpstreamBase: `hooks`, `_hook_hiddens`) inside `model`."""
    return [m for m in model.modules() if hasattr(m, "_hook_hiddens") and hasattr(m, "_register_hook_handler")]


def rehook(model: nn.Module) -> None:
    """Give every S3PRL upstream in `model` (a deep copy) hooks that fill its own hidden-state list."""
    for expert in s3prl_experts(model):
        for sub in expert.modules():
            for key in [k for k, fn in sub._forward_hooks.items() if _is_s3prl_hook(fn)]:
                del sub._forward_hooks[key]
        expert._hook_hiddens = []
        for hook in expert.hooks:
            hook.handler = None
            expert._register_hook_handler(hook)
