"""Config schemas, registered in Hydra's ConfigStore so that typos and wrong types
fail when the config is composed, not an hour into a sweep.

Groups: model, data, and one group per component (frontend, encoder, ctc, decoder,
lm) whose options are the compression methods. The same method schemas are
registered into every component group from Python (one list serves all five).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from asr_compress import COMPONENTS

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class ModelConfig:
    # label in run/sweep folder names, reports and metrics.json; null = named after what is loaded
    # (the zoo tag, the experiment folder, the config's folder; "default" for the shipped model), so
    # that a model of one's own, given by model.exp_dir alone, is never labelled as the default one
    name: Optional[str] = None
    # ESPnet model-zoo tag (needs the internet); exclusive with exp_dir and asr_config
    zoo_tag: Optional[str] = None
    # ESPnet experiment directory as espnet2.bin.asr_train writes it (config.yaml + *.pth)
    exp_dir: Optional[str] = None
    # explicit ASR config.yaml (with asr_weights): for models not laid out as an exp dir
    asr_config: Optional[str] = None
    # explicit ASR weights (.pth); with exp_dir, picks a checkpoint other than the default
    asr_weights: Optional[str] = None
    # LM experiment directory (config.yaml + *.pth); None = decode without an LM
    lm_exp_dir: Optional[str] = None
    # explicit LM config.yaml (with lm_weights)
    lm_config: Optional[str] = None
    # explicit LM weights (.pth)
    lm_weights: Optional[str] = None
    # KenLM n-gram over the ASR model's token units (binary or ARPA, as ESPnet's asr.sh
    # --use_ngram builds it), scored beside the LM with decode.ngram_weight; None = no n-gram
    ngram_file: Optional[str] = None


@dataclass
class DataConfig:
    # label in run/sweep folder names, reports and metrics.json; null = the data folder's name, so
    # that data.dir=<your test set> is not labelled as the default test set
    name: Optional[str] = None
    # Kaldi-style data directory: wav.scp + text (+ optional utt2spk, utt2group);
    # relative paths resolve against the working directory, then the project root
    dir: str = MISSING
    # decode only the first N utterances (None = all): for quick checks, never for results
    limit: Optional[int] = None


@dataclass
class CalibrationConfig:
    # Kaldi-style data dir (wav.scp; text not needed) whose audio methods that learn from data
    # (distill) run the uncompressed model on; null = none, and such methods fail before anything
    # loads. Never the test set (refused): training on it would leak the test set into the WER.
    dir: Optional[str] = None
    # the first N utterances of it (null = all): more recover more of what a cut lost, and take
    # longer to decode (once per multirun process). On the default model's dev half, the encoder
    # halved by layer_drop and distilled for 600 updates read 35.1% WER with 32 and 22.5% with 100;
    # 32 keeps a quick study quick (docs/compression_methods.md, "Batches of audio and calibration size")
    limit: Optional[int] = 32
    # short label for the run's record (metrics.json `calibration`)
    name: str = "calibration"


@dataclass
class DecodeConfig:
    # hypotheses kept per step; 5 keeps the default study inside its 3-minute budget
    beam_size: int = 5
    # weight of the CTC prefix score; the attention decoder gets 1 - ctc_weight
    ctc_weight: float = 0.3
    # weight of the language model score (ignored when the model has no LM)
    lm_weight: float = 0.5
    # length bonus per output token (ESPnet's `penalty`)
    penalty: float = 0.0
    # weight of the n-gram's log10 score (ESPnet's --ngram_weight default); used only when the
    # model has model.ngram_file, and 0 decodes such a model without it
    ngram_weight: float = 0.9
    # max output length as a ratio of encoder frames; 0 = up to the encoder length
    maxlenratio: float = 0.0
    # min output length as a ratio of encoder frames
    minlenratio: float = 0.0
    # use ESPnet's vectorised BatchBeamSearch (what asr_inference picks for batch_size 1)
    batch_search: bool = True
    # a transducer model's search (ESPnet's --transducer_conf search_type): default (ESPnet's), tsd
    # (time synchronous), alsd (alignment-length synchronous), nsc (N-step constrained), maes
    # (modified adaptive expansion); the faster ones are what a latency study of an RNN-T compares.
    # Attention and CTC models ignore it
    transducer_search: str = "default"


@dataclass
class EvalConfig:
    # torch intra-op threads; None = every core this process may use (a batch job's allocation, not
    # the whole node; recorded in metrics.json)
    num_threads: Optional[int] = None
    # utterances decoded once before timing, so one-off costs do not pollute latency
    warmup: int = 1
    # utterances decoded once more under PyTorch's FLOP counter (untimed); 0 = skip
    flops_utterances: int = 2
    # decode the whole set this many times and report the latency spread (noisy machines)
    repeats: int = 1
    # torch device; "cuda" when an accelerator is lent
    device: str = "cpu"
    # show a progress bar while decoding
    progress: bool = True


@dataclass
class Config:
    model: ModelConfig = MISSING
    data: DataConfig = MISSING
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    # audio for methods that learn from data (distill); unused by every other method
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    # one compression method per component; `none` = leave it as trained
    frontend: Any = MISSING
    encoder: Any = MISSING
    ctc: Any = MISSING
    decoder: Any = MISSING
    lm: Any = MISSING
    # reuse the finished run already in this run's directory when its settings, test set, model
    # files and code match, and decode only otherwise: rerunning a sweep into its own directory then
    # redoes just its failed or missing cells (resume.py). false = always decode
    resume: bool = False


def resolve_path(path: str, base: Optional[Path] = None) -> Path:
    """Resolve a user path: absolute as is; else against cwd, then `base`, then the project root."""
    p = Path(os.path.expanduser(path))
    if p.is_absolute():
        return p
    for root in (Path.cwd(), base, PROJECT_ROOT):
        if root is not None and (root / p).exists():
            return (root / p).resolve()
    return (Path.cwd() / p).resolve()


# the shipped model's experiment folder (conf/model/default.yaml), labelled "default" rather than "asr"
DEFAULT_MODEL_DIR = PROJECT_ROOT / "models" / "default" / "asr"


def _folder_label(path: str, fallback: str) -> str:
    """The name of a folder as given (a symlink's own name, not its target's), usable in a path:
    characters other than letters, digits and ._+- become _."""
    name = Path(os.path.abspath(os.path.expanduser(path))).name
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name).strip("_") or fallback


def model_label(name: Optional[str], zoo_tag: Optional[str] = None, exp_dir: Optional[str] = None,
                asr_config: Optional[str] = None) -> str:
    """model.name, or, when it is null, a label from what the model config loads."""
    if name:
        return str(name)
    if zoo_tag:
        return _folder_label(str(zoo_tag).replace("/", "_"), "model")
    if exp_dir:
        if resolve_path(str(exp_dir)) == DEFAULT_MODEL_DIR.resolve():
            return "default"
        return _folder_label(str(exp_dir), "model")
    if asr_config:  # ESPnet keeps config.yaml in the experiment folder, which names the model
        return _folder_label(os.path.dirname(os.path.abspath(str(asr_config))), "model")
    return "model"


def data_label(name: Optional[str], dir: Optional[str] = None) -> str:
    """data.name, or, when it is null, the data folder's name."""
    if name:
        return str(name)
    return _folder_label(str(dir), "data") if dir else "data"


def model_label_of(m: Any) -> str:
    """The label of a model section (DictConfig or ModelConfig)."""
    return model_label(m.name, m.zoo_tag, m.exp_dir, m.asr_config)


def data_label_of(d: Any) -> str:
    """The label of a data section (DictConfig or DataConfig)."""
    return data_label(d.name, d.dir)


def fill_labels(cfg: Any) -> None:
    """Set a null model.name / data.name to its label, in a DictConfig or a typed Config."""
    cfg.model.name = model_label_of(cfg.model)
    cfg.data.name = data_label_of(cfg.data)


def _model_label_resolver(*args: Optional[str], _root_: Any) -> str:
    return model_label(*args) if args else model_label_of(_root_.model)


def _data_label_resolver(*args: Optional[str], _root_: Any) -> str:
    return data_label(*args) if args else data_label_of(_root_.data)


def register_resolvers() -> None:
    """${model_label:...} and ${data_label:...}: the labels in conf/config.yaml's folder names, which
    Hydra resolves before any of this package's code runs in a cell. Without arguments
    (`${data_label:}`) they read the config's own model and data sections: the short form for a fixed
    sweep directory on the command line (`hydra.sweep.dir=study/\${data_label:}`), which needs no
    quoting for Hydra's comma syntax."""
    OmegaConf.register_new_resolver("model_label", _model_label_resolver, replace=True)
    OmegaConf.register_new_resolver("data_label", _data_label_resolver, replace=True)


def register_configs() -> None:
    """Store the schemas and every method under every component group."""
    register_resolvers()
    from asr_compress.compress import METHOD_CONFIGS

    presets = {}
    try:
        from asr_compress.compress import METHOD_PRESETS

        presets = METHOD_PRESETS
    except ImportError:  # methods not yet landed
        pass
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    cs.store(group="model", name="base_model", node=ModelConfig)
    cs.store(group="data", name="base_data", node=DataConfig)
    for comp in COMPONENTS:
        for name, cls in METHOD_CONFIGS.items():
            cs.store(group=comp, name=name, node=cls)
        for name, preset in presets.items():
            cs.store(group=comp, name=name, node=preset)
    # `cut=<component>_<method>` selects one component's method in a single choice, so a
    # non-Cartesian study (one component at a time) is a plain sweep over `cut`.
    cs.store(group="cut", name="none", package="_global_", node={})
    for comp in COMPONENTS:
        for name in [*METHOD_CONFIGS, *presets]:
            if name != "none":
                cs.store(group="cut", name=f"{comp}_{name}", package="_global_",
                         node={"defaults": [{f"override /{comp}": name}]})
