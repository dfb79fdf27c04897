"""One experiment: load, compress per component, decode, score, write metrics.

    from asr_compress.run import run_experiment
    metrics = run_experiment(cfg, out_dir)   # cfg composed from conf/ (see cli.py)

Everything that can be checked is checked before decoding starts (config values,
files, audio, method applicability), and the outputs are written atomically, so a
failed run never leaves a half-written metrics.json behind.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from omegaconf import DictConfig, OmegaConf

from asr_compress import COMPONENTS
from asr_compress.config import Config, DataConfig, fill_labels, resolve_path
from asr_compress.errors import AsrCompressError

log = logging.getLogger("asr_compress")


def to_config(cfg: DictConfig) -> Config:
    """The composed DictConfig as typed dataclasses (methods validate themselves here).

    Components are converted one by one so that a method's own validation error
    (which does not know where it is used) can be prefixed with the component.
    """
    for comp in COMPONENTS:
        try:
            OmegaConf.to_object(cfg[comp])
        except Exception as e:
            cause = e if isinstance(e, AsrCompressError) else (e.__cause__ or e)
            if isinstance(cause, AsrCompressError):
                raise type(cause)(f"{comp}: {cause}") from e
            raise AsrCompressError(f"{comp}: invalid method config: {cause}") from e
    try:
        conf = OmegaConf.to_object(cfg)
    except Exception as e:  # OmegaConf wraps __post_init__ errors; surface the cause
        cause = e.__cause__ or e
        if isinstance(cause, AsrCompressError):
            raise cause
        raise AsrCompressError(f"invalid config: {cause}") from e
    fill_labels(conf)
    return conf


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# PyTorch's dynamic int8 kernels (fbgemm/qnnpack) exist only on CPU.
CPU_ONLY_METHODS = ("int8_dynamic", "prune_lowrank_int8")


def check_methods(cfg: Config, pipeline=None) -> None:
    """Fail before decoding if a method cannot apply: by config alone, or against the loaded model."""
    from asr_compress.compress import applicable

    for comp in COMPONENTS:
        method = getattr(cfg, comp)
        steps = [s.get("name") for s in getattr(method, "steps", None) or []]
        if not cfg.eval.device.startswith("cpu") and {method.name, *steps} & set(CPU_ONLY_METHODS):
            raise AsrCompressError(f"{comp}={method.name}: dynamic int8 kernels run on CPU only, not "
                                   f"eval.device={cfg.eval.device}; valid there: fp16, bf16, pruning, lowrank, layer_drop")
        if pipeline is None:
            applicable(comp, method)
        elif comp in pipeline.components():
            applicable(comp, method, pipeline.component(comp))
        elif method.name != "none":
            present = ", ".join(pipeline.components())
            why = (" that its search reads: a transducer's search never reads its auxiliary CTC head"
                   if comp == "ctc" and pipeline.transducer else "")
            raise AsrCompressError(f"{comp}={method.name}: this model has no {comp}{why} (present: {present})")
    learners = calibration_users(cfg)
    if learners and cfg.calibration.dir is None:
        raise AsrCompressError(f"{', '.join(learners)}: learns from data; set calibration.dir=<a Kaldi-style data dir "
                               f"that is not the test set> (e.g. your dev or training data), calibration.limit=N")
    if learners and not resolve_path(cfg.calibration.dir).is_dir():
        raise AsrCompressError(f"calibration.dir={cfg.calibration.dir}: not a directory; valid: a Kaldi-style data dir "
                               f"with wav.scp (for {', '.join(learners)})")
    if learners and resolve_path(cfg.calibration.dir) == resolve_path(cfg.data.dir):
        raise AsrCompressError(f"calibration.dir={cfg.calibration.dir} is the test set (data.dir): training on it would "
                               f"leak the test set into the WER; valid: any other data dir")


def calibration_users(cfg: Config) -> List[str]:
    """'component=method' for each component whose method learns from calibration data."""
    from asr_compress.compress import needs_calibration
    from asr_compress.compress.registry import resolve

    methods = {c: resolve(c, getattr(cfg, c)) for c in COMPONENTS}  # typed, whether given as config or mapping
    return [f"{c}={m.name}" for c, m in methods.items() if needs_calibration(m, c)]


def calibration_set(cfg: Config, test_utts: Optional[list] = None) -> list:
    """The calibration utterances, refused if any of their audio files is a test-set file (`test_utts`:
    the test set as already loaded, else read from `cfg.data`)."""
    from asr_compress.evaluate.data import load_test_set

    c = cfg.calibration
    utts = load_test_set(DataConfig(name=c.name, dir=c.dir, limit=c.limit), key="calibration", require_text=False)
    test_utts = load_test_set(cfg.data) if test_utts is None else test_utts
    shared = sorted({u.audio for u in utts} & {u.audio for u in test_utts}, key=str)  # files or pipes
    if shared:
        raise AsrCompressError(f"calibration.dir={c.dir}: {len(shared)} of its audio files are in the test set "
                               f"(first: {shared[0]}); training on them would leak the test set into the WER; "
                               f"valid: audio the test set does not use")
    return utts


# The last calibration decode of this process, by what determines it. Hydra's basic launcher runs a
# multirun's jobs in one process, and every learning cell of a sweep decodes the same calibration
# audio with the same uncompressed model and decoding: once is enough (1.5 min per cell for 200
# utterances on 2 cores). One entry, so memory stays bounded (~20 MB for 200 utterances).
_CAPTURED: Dict[str, Any] = {}


def _capture_key(pipeline, cfg: Config, utts: list) -> str:
    import torch

    return json.dumps({"model": pipeline.files.describe(), "decode": dataclasses.asdict(cfg.decode),
                       "device": cfg.eval.device, "threads": torch.get_num_threads(), "name": cfg.calibration.name,
                       "audio": [str(u.audio) for u in utts]}, sort_keys=True, default=str)


def calibrate(pipeline, cfg: Config, utts: Optional[list] = None):
    """Decode the calibration utterances (`calibration_set(cfg)` unless given) with the uncompressed
    pipeline; None if no method needs them. An earlier run of this process that decoded the same
    audio with the same model files (by SHA-256), decoding, device and threads gives its capture
    instead (the methods only read it)."""
    from asr_compress.evaluate.data import read_audio
    from asr_compress.pipeline.calibration import capture

    if not calibration_users(cfg):
        return None
    c = cfg.calibration
    utts = calibration_set(cfg) if utts is None else utts
    key = _capture_key(pipeline, cfg, utts)
    if key in _CAPTURED:
        log.info("calibration: %d utterances of %s as decoded by an earlier run of this process (same model, "
                 "decoding and audio)", len(utts), c.name)
        return _CAPTURED[key]
    log.info("calibration: decoding %d utterances of %s with the uncompressed model", len(utts), c.name)
    calib = capture(pipeline, [read_audio(u.audio, pipeline.sample_rate) for u in utts], cfg.decode, source=c.name)
    _CAPTURED.clear()
    _CAPTURED[key] = calib
    return calib


def compress_components(pipeline, cfg: Config, calibration_utts: Optional[list] = None) -> Dict[str, Any]:
    """Apply each component's method in place; returns the method reports by component. Methods that
    learn get the calibration data, decoded by the pipeline before anything is compressed."""
    check_methods(cfg, pipeline)
    calibration = calibrate(pipeline, cfg, calibration_utts)
    return {comp: pipeline.compress_(comp, getattr(cfg, comp), calibration=calibration)
            for comp in pipeline.components()}


def component_table(pipeline, reports) -> Dict[str, Dict[str, Any]]:
    from asr_compress.compress import component_stats

    return {comp: component_stats(module, reports[comp]) for comp, module in pipeline.components().items()}


def run_experiment(cfg: DictConfig, out_dir: Path) -> Dict[str, Any]:
    import torch

    from asr_compress.evaluate.data import load_test_set
    from asr_compress.evaluate.decode import decode_set, peak_rss_mb, reset_peak_rss
    from asr_compress.evaluate.environment import environment, usable_cpus, utc_now
    from asr_compress.evaluate.scoring import corpus_scores, group_scores
    from asr_compress.pipeline import load_pipeline
    from asr_compress.partial_decode import PartialDecode, machine
    from asr_compress.resume import identity

    conf = to_config(cfg)
    check_methods(conf)  # before anything slow is loaded
    if conf.eval.num_threads is not None:
        if conf.eval.num_threads < 1:
            raise AsrCompressError(f"eval.num_threads={conf.eval.num_threads}: must be >= 1 or null (all cores)")
        torch.set_num_threads(conf.eval.num_threads)
    else:
        torch.set_num_threads(usable_cpus())
    if conf.eval.device.startswith("cuda") and not torch.cuda.is_available():
        raise AsrCompressError(f"eval.device={conf.eval.device}: no CUDA device on this machine; valid: cpu")
    # a negative LM weight rewards what the LM finds unlikely; ESPnet decodes it without complaint
    for section, key, low in (("decode", "beam_size", 1), ("decode", "lm_weight", 0), ("decode", "maxlenratio", 0),
                              ("decode", "minlenratio", 0), ("eval", "warmup", 0), ("eval", "repeats", 1)):
        value = getattr(getattr(conf, section), key)
        if value < low:
            raise AsrCompressError(f"{section}.{key}={value}: must be >= {low}")
    if not 0.0 <= conf.decode.ctc_weight <= 1.0:
        raise AsrCompressError(f"decode.ctc_weight={conf.decode.ctc_weight}: must be within [0, 1]")
    from asr_compress.pipeline.transducer import check_search

    check_search(conf.decode.transducer_search)  # before loading, whatever the model (a typo fails early)

    # this run's own memory peak, also when a multirun ran others before it in this process
    rss_scope = "run" if reset_peak_rss() else "process"
    if conf.eval.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    utts = load_test_set(conf.data)
    log.info("model %s, test set %s (%d utterances)", conf.model.name, conf.data.name, len(utts))
    learners = calibration_users(conf)
    calibration_utts = calibration_set(conf, utts) if learners else None  # checked before loading
    pipeline = load_pipeline(conf.model, device=conf.eval.device)
    if pipeline.transducer:
        from asr_compress.pipeline.transducer import decode_note

        print(f"asr-compress: note: {decode_note(conf.decode.transducer_search)}", file=sys.stderr)
    baseline_components = component_table(pipeline, {c: _none_report() for c in pipeline.components()})
    reports = compress_components(pipeline, conf, calibration_utts)
    model_files = pipeline.files.describe()
    env = environment(conf.eval.device)
    # a cell killed mid-decode (a job's time limit) resumes where it stopped (partial_decode.py)
    run_identity = identity(cfg, model_files, env)
    partial = PartialDecode.open(out_dir, {"run": run_identity, "machine": machine(env)}, resume=bool(cfg.get("resume")))
    decode_start = utc_now()
    try:
        rows, timing = decode_set(pipeline, utts, conf.decode, conf.eval, partial)
    finally:
        partial.close()
    # when the latencies were measured: a report finds runs that decoded at the same time on one
    # machine (a launcher running cells in parallel), whose latencies measure their contention
    decode_window = {"start": decode_start, "end": utc_now()}

    components = component_table(pipeline, reports)
    search = pipeline.search(conf.decode)
    for comp, stats in components.items():
        stats["baseline_params"] = baseline_components[comp]["params"]
        stats["baseline_size_bytes"] = baseline_components[comp]["size_bytes"]
    metrics: Dict[str, Any] = {
        **corpus_scores(rows),
        **timing,
        "decode_window": decode_window,
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_scope": rss_scope,
        "components": components,
        "total_size_bytes": sum(c["size_bytes"] for c in components.values()),
        "groups": group_scores(rows),
        "model": {"name": conf.model.name, **model_files},
        "data": {"name": conf.data.name, "dir": conf.data.dir, "limit": conf.data.limit},
        **({"calibration": dataclasses.asdict(conf.calibration)} if learners else {}),
        "decode": dataclasses.asdict(conf.decode),
        # ESPnet's search class: BatchBeamSearch, BeamSearch (a scorer without batch scoring) or, for a
        # transducer, BeamSearchTransducer, which reads only beam_size and lm_weight of `decode`
        "search": type(getattr(search, "inner", search)).__name__,
        "environment": env,
        # utterances decoded by an earlier, killed run of this cell (resume=true; partial_decode.py)
        "resumed_utterances": partial.resumed,
        # what resume=true compares before reusing this run (resume.py)
        "settings_sha256": run_identity["settings_sha256"],
    }
    if conf.eval.device.startswith("cuda"):
        metrics["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(out_dir / "utterances.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    _write_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    partial.finish()
    return metrics


def _none_report():
    from asr_compress.compress import CompressionReport

    return CompressionReport(method={"name": "none"}, kernel="none")


def summary_line(metrics: Dict[str, Any]) -> str:
    lat = metrics["latency_ms"]
    return (f"WER {metrics['wer'] * 100:.2f}%  CER {metrics['cer'] * 100:.2f}%  "
            f"({metrics['n_utterances']} utts, {metrics['n_words']} words; "
            f"S/D/I {metrics['substitutions']}/{metrics['deletions']}/{metrics['insertions']})  "
            f"latency mean {lat['mean']:.0f} ms p50 {lat['p50']:.0f} p90 {lat['p90']:.0f}  RTF {metrics['rtf']:.3f}"
            + (f"  ({metrics['resumed_utterances']} utts decoded before the cell was stopped)"
               if metrics.get("resumed_utterances") else ""))
