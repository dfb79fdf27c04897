"""Find and load ESPnet models, the three ways users have them.

1. a model-zoo tag (downloads through espnet_model_zoo; needs the internet),
2. an experiment directory as `espnet2.bin.asr_train` writes it (config.yaml + *.pth),
3. explicit config + weights paths, for the ASR model and the LM.

Paths inside ESPnet's config.yaml (bpemodel, normalize stats, token list) are
written relative to the directory training ran in (or the unpacked zoo archive's
root). We resolve each against the working directory, then the config's
ancestors, so a model loads from any working directory without edited files.
"""
from __future__ import annotations

import argparse
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import yaml

from asr_compress.config import ModelConfig, resolve_path
from asr_compress.errors import ModelLoadError

# Which checkpoint of an experiment dir to take, best first: ESPnet's averaged model,
# then its best single checkpoint, then the newest epoch.
WEIGHT_PREFERENCE = ("valid.acc.ave.pth", "valid.acc.best.pth", "valid.loss.ave.pth", "valid.loss.best.pth")


@dataclass
class ModelFiles:
    asr_config: Path
    asr_weights: Path
    lm_config: Optional[Path] = None
    lm_weights: Optional[Path] = None
    # KenLM token n-gram (named as the model.* key, like the others)
    ngram_file: Optional[Path] = None
    # where the files came from: "zoo:<tag>", "exp_dir" or "paths"
    source: str = "paths"

    def describe(self) -> Dict[str, Any]:
        """Resolved paths and SHA-256 of every file, for metrics.json."""
        out: Dict[str, Any] = {"source": self.source}
        for key in ("asr_config", "asr_weights", "lm_config", "lm_weights", "ngram_file"):
            path = getattr(self, key)
            out[key] = None if path is None else str(path)
            out[key + "_sha256"] = None if path is None else sha256(path)
        return out


# (path, size, mtime) -> digest: a run describes its model more than once (metrics.json, the
# calibration fingerprint) and a multirun's cells share one model, whose weights may be hundreds of MB
_digests: Dict[Tuple[str, int, int], str] = {}


def sha256(path: Path) -> str:
    """SHA-256 of a file, hashed once per process while its size and modification time stay."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _digests:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _digests[key] = h.hexdigest()
    return _digests[key]


def _pick_weights(exp_dir: Path) -> Path:
    for name in WEIGHT_PREFERENCE:
        if (exp_dir / name).is_file():
            return exp_dir / name
    epochs = sorted(exp_dir.glob("*epoch.pth"), key=lambda p: int(p.name.split("epoch")[0] or 0))
    if epochs:
        return epochs[-1]
    others = sorted(p for p in exp_dir.glob("*.pth") if p.name != "checkpoint.pth")
    if others:
        return others[0]
    raise ModelLoadError(f"{exp_dir}: no model weights (*.pth) in this experiment directory")


def _exp_dir_files(exp_dir_arg: str, weights_arg: Optional[str], what: str, key: str):
    exp_dir = resolve_path(exp_dir_arg)
    if not exp_dir.is_dir():
        raise ModelLoadError(f"{exp_dir}: model.{key} is not a directory ({what} experiment directory expected)")
    config = exp_dir / "config.yaml"
    if not config.is_file():
        raise ModelLoadError(f"{config}: missing; model.{key} must hold the config.yaml that ESPnet training wrote")
    weights = resolve_path(weights_arg, exp_dir) if weights_arg else _pick_weights(exp_dir)
    return config, weights


def _explicit(config_arg: Optional[str], weights_arg: Optional[str], prefix: str):
    if (config_arg is None) != (weights_arg is None):
        missing = f"model.{prefix}_weights" if weights_arg is None else f"model.{prefix}_config"
        raise ModelLoadError(f"{missing} is required with model.{prefix}_config/model.{prefix}_weights")
    return resolve_path(config_arg), resolve_path(weights_arg)


def _download_zoo(tag: str) -> Dict[str, Any]:
    try:
        from espnet_model_zoo.downloader import ModelDownloader
    except ImportError as e:  # pragma: no cover - it is a dependency
        raise ModelLoadError(f"model.zoo_tag={tag}: espnet_model_zoo is not installed ({e})") from e
    try:
        return ModelDownloader().download_and_unpack(tag, quiet=True)
    except Exception as e:  # network errors come in many types (requests, huggingface_hub, OSError)
        raise ModelLoadError(
            f"model.zoo_tag={tag}: could not download the model ({type(e).__name__}). Offline? Download it "
            "where there is internet and point at the local copy: model.exp_dir=<dir with config.yaml and *.pth> "
            "or model.asr_config=<config.yaml> model.asr_weights=<model.pth>"
        ) from e


def find_model_files(cfg: ModelConfig) -> ModelFiles:
    """Resolve a model config to existing files, or raise one clear ModelLoadError."""
    ways = [w for w, v in (("zoo_tag", cfg.zoo_tag), ("exp_dir", cfg.exp_dir), ("asr_config", cfg.asr_config)) if v]
    if len(ways) != 1:
        raise ModelLoadError(
            f"model '{cfg.name}': give exactly one of model.zoo_tag, model.exp_dir, model.asr_config (got {ways or 'none'})"
        )
    lm_config = lm_weights = None
    if cfg.zoo_tag:
        got = _download_zoo(cfg.zoo_tag)
        asr_config, asr_weights = Path(got["asr_train_config"]), Path(got["asr_model_file"])
        if got.get("lm_train_config") and got.get("lm_file"):
            lm_config, lm_weights = Path(got["lm_train_config"]), Path(got["lm_file"])
        source = f"zoo:{cfg.zoo_tag}"
    elif cfg.exp_dir:
        asr_config, asr_weights = _exp_dir_files(cfg.exp_dir, cfg.asr_weights, "ASR", "exp_dir")
        source = "exp_dir"
    else:
        asr_config, asr_weights = _explicit(cfg.asr_config, cfg.asr_weights, "asr")
        source = "paths"
    if cfg.lm_exp_dir and cfg.lm_config:
        raise ModelLoadError("give one of model.lm_exp_dir and model.lm_config, not both")
    if cfg.lm_exp_dir:
        lm_config, lm_weights = _exp_dir_files(cfg.lm_exp_dir, cfg.lm_weights, "LM", "lm_exp_dir")
    elif cfg.lm_config or cfg.lm_weights:
        lm_config, lm_weights = _explicit(cfg.lm_config, cfg.lm_weights, "lm")
    ngram = resolve_path(cfg.ngram_file) if cfg.ngram_file else None
    files = ModelFiles(asr_config, asr_weights, lm_config, lm_weights, ngram, source)
    for key in ("asr_config", "asr_weights", "lm_config", "lm_weights", "ngram_file"):
        path = getattr(files, key)
        if path is not None and not path.is_file():
            raise ModelLoadError(f"{path}: file not found (model.{key})")
    return files


def _resolve_config_paths(args: Dict[str, Any], config_path: Path) -> Dict[str, Any]:
    """Make the file paths inside an ESPnet config.yaml absolute (see module docstring)."""

    def fix(value: Optional[str]) -> Optional[str]:
        if not isinstance(value, str) or not value or Path(value).is_absolute():
            return value
        if Path(value).exists():
            return str(Path(value).resolve())
        for parent in config_path.resolve().parents:
            if (parent / value).exists():
                return str(parent / value)
        return value  # let ESPnet fail on it with its own message

    if isinstance(args.get("token_list"), str):
        args["token_list"] = fix(args["token_list"])
    args["bpemodel"] = fix(args.get("bpemodel"))
    norm = args.get("normalize_conf") or {}
    if "stats_file" in norm:
        norm["stats_file"] = fix(norm["stats_file"])
    return args


def _read_config(path: Path) -> Dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            args = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise ModelLoadError(f"{path}: cannot read ESPnet config ({e})") from e
    if not isinstance(args, dict):
        raise ModelLoadError(f"{path}: not an ESPnet training config (expected a YAML mapping)")
    return _resolve_config_paths(args, path)


def _load_weights(model, weights: Path, config: Path, device: str):
    import torch

    try:
        state = torch.load(weights, map_location=device, weights_only=False)
    except Exception as e:
        raise ModelLoadError(f"{weights}: cannot read weights ({type(e).__name__}: {e})") from e
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # a training checkpoint.pth
    own = model.state_dict()
    for key, tensor in state.items():
        if key in own and own[key].shape != tensor.shape:
            hint = ""
            if getattr(model, "vocab_size", None) is not None and own[key].shape[0] == model.vocab_size:
                hint = f": token list in {config} has {model.vocab_size} entries, weights expect {tensor.shape[0]}"
            raise ModelLoadError(
                f"{weights}: does not match {config} ({key}: weights {tuple(tensor.shape)} vs model {tuple(own[key].shape)}){hint}"
            )
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing:
        raise ModelLoadError(f"{weights}: missing {len(missing)} parameters of {config} (first: {missing[0]})")
    if unexpected:
        raise ModelLoadError(f"{weights}: {len(unexpected)} parameters unknown to {config} (first: {unexpected[0]})")


# a key only that task's config.yaml has (espnet2/tasks/asr.py and asr_transducer.py, lm.py), and
# the parameters that name such a model
TASK_KEYS = {"asr": "encoder_conf", "lm": "lm"}
TASK_PARAMS = {"asr": "model.exp_dir or model.asr_config", "lm": "model.lm_exp_dir or model.lm_config"}


def _check_task(task_name: str, args: dict, config: Path) -> None:
    """An LM's config given for the ASR (or the other way round) is named as such, rather than left
    to fail inside ESPnet's builder on a missing attribute."""
    other = "lm" if task_name == "asr" else "asr"
    if TASK_KEYS[task_name] not in args and TASK_KEYS[other] in args:
        raise ModelLoadError(
            f"{config}: an ESPnet {other.upper()} config, where the {task_name.upper()} model's is expected; "
            f"valid: the {task_name.upper()} experiment in {TASK_PARAMS[task_name]}, "
            f"the {other.upper()} one in {TASK_PARAMS[other]}"
        )


def build_espnet_model(task_name: str, config: Path, weights: Path, device: str = "cpu"):
    """Build an ESPnet ASR or LM model from its files; returns (model, train_args)."""
    from asr_compress.quiet import import_quietly, silenced

    from asr_compress.pipeline.transducer import task_of

    args = _read_config(config)
    _check_task(task_name, args, config)
    if task_name == "asr" and task_of(args) == "asr_transducer":  # espnet2.bin.asr_transducer_train's
        task = import_quietly("espnet2.tasks.asr_transducer").ASRTransducerTask
    elif task_name == "asr":
        task = import_quietly("espnet2.tasks.asr").ASRTask
    else:
        task = import_quietly("espnet2.tasks.lm").LMTask
    if args.get("frontend") == "s3prl":  # s3prl's hub imports removed torchaudio APIs (s3prl_compat)
        from asr_compress.pipeline.s3prl_compat import patch_torchaudio

        patch_torchaudio()
    if task_name == "asr" and args.get("decoder") == "transducer":  # built with warp-transducer's loss
        from asr_compress.pipeline.transducer import stand_in_rnnt_loss

        stand_in_rnnt_loss()
    try:
        with silenced():  # ESPnet warns about legacy attention variants of released models
            model = task.build_model(argparse.Namespace(**args))
    except Exception as e:
        raise ModelLoadError(f"{config}: ESPnet cannot build a model from it ({type(e).__name__}: {e})"
                             f"{_offline_hint(args, e)}") from e
    _load_weights(model, weights, config, device)
    _drop_pretraining_copy(model)
    model.to(device).eval()
    return model, argparse.Namespace(**args)


def _offline_hint(args: dict, error: Exception) -> str:
    """What to do when an S3PRL frontend could not fetch its upstream's checkpoint (S3PRL downloads
    one named by hub name, e.g. hubert_large_ll60k, on first use; a cluster node is often offline)."""
    conf = (args.get("frontend_conf") or {}).get("frontend_conf") or {}
    if args.get("frontend") != "s3prl" or not isinstance(error, OSError) or conf.get("path_or_url"):
        return ""
    return (f"; S3PRL downloads upstream '{conf.get('upstream')}' on first use: offline, set "
            f"frontend_conf.download_dir in the config to a cache that holds it, or point "
            f"frontend_conf.frontend_conf.path_or_url at a local checkpoint (upstream hubert_local, "
            f"wav2vec2_local or wavlm_local)")


def _drop_pretraining_copy(model) -> None:
    """ESPnet's SSL frontends (S3PRL, Hugging Face, ESPnet SSL) keep a full copy of the pretrained SSL
    weights (`pretrained_params`), which only training reads (`reload_pretrained_parameters`, before
    fine-tuning): the model decodes with its own fine-tuned weights. For a study it doubles the
    frontend's memory (1.2 GB more for WavLM Large), again in every copy side-by-side timing makes,
    and counts in the peak memory reported for each cut. It is dropped once the weights are loaded."""
    frontend = getattr(model, "frontend", None)
    if isinstance(getattr(frontend, "pretrained_params", None), dict):
        del frontend.pretrained_params


def _token_list(value) -> list:
    """A config's token_list: the list itself, or the file ESPnet reads it from (one unit a line)."""
    if isinstance(value, (str, Path)):
        return [line.rstrip() for line in Path(value).read_text(encoding="utf-8").splitlines()]
    return list(value)


def load_pipeline(cfg: ModelConfig, device: str = "cpu"):
    """Find the files, build ASR (and LM) models and wrap them in a Pipeline."""
    from asr_compress.pipeline.pipeline import Pipeline
    from asr_compress.pipeline.transducer import is_transducer
    from asr_compress.quiet import quiet_espnet_decoding

    quiet_espnet_decoding()
    files = find_model_files(cfg)
    asr_model, asr_args = build_espnet_model("asr", files.asr_config, files.asr_weights, device)
    lm_model = None
    if files.lm_config is not None:
        lm_model, lm_args = build_espnet_model("lm", files.lm_config, files.lm_weights, device)
        # the LM scores the ASR's token ids: with another token list its scores belong to other
        # units (or have another size, and the search fails deep inside ESPnet)
        lm_tokens = _token_list(lm_args.token_list)
        if lm_tokens != list(asr_model.token_list):
            raise ModelLoadError(
                f"{files.lm_config}: the LM's token list ({len(lm_tokens)} units) is not the ASR's "
                f"({files.asr_config}, {len(asr_model.token_list)} units) (model.lm_exp_dir / model.lm_config); "
                "point it at the LM trained with this ASR's units, or set model.lm_exp_dir=null")
    ngram = None
    if files.ngram_file is not None and is_transducer(asr_args):
        raise ModelLoadError(
            f"model.ngram_file={files.ngram_file}: {files.asr_config} is a transducer model, and ESPnet's "
            "transducer search (BeamSearchTransducer) has no n-gram scorer; valid: model.ngram_file=null")
    if files.ngram_file is not None:
        from asr_compress.pipeline.ngram import load_ngram_scorer

        ngram = load_ngram_scorer(files.ngram_file, list(asr_model.token_list))
    return Pipeline(asr_model, asr_args, lm_model, files=files, device=device, ngram=ngram)
