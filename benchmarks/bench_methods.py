"""Speed ratios of every compression method on every component, measured side by side.

    python benchmarks/bench_methods.py                       # default model, 12 utterances, 3 rounds
    python benchmarks/bench_methods.py --utterances 30 --rounds 5 --components decoder,lm
    python benchmarks/bench_methods.py model.exp_dir=... data.dir=...   # any asr-compress override
    python benchmarks/bench_methods.py --factorial encoder,ctc,decoder,lm --methods int8_dynamic \
        --out /tmp/factorial_int8   # every on/off cell, Shapley of the time (a sweep: asr-compress-retime)

All variants (baseline, each method on each component, and ESPnet's own whole-model
dynamic quantization through Speech2Text(quantize_asr_model, quantize_lm)) live in one
process and are timed in rounds on the same utterances: in each round every utterance is decoded
by every variant back to back, in a shuffled order (asr_compress/evaluate/interleave.py).
Reported are ratios to the baseline of the same round (median and range over rounds), never
absolute seconds compared across runs: these machines are noisy.
With --factorial, the variants are every on/off combination of the listed components under one
method, and the time is attributed to the components by exact Shapley values per round (median
and range over rounds): the factorial study's sweep runs its combinations one after another, so
drift of the machine during the sweep lands on whichever component the later runs cut.
Writes <out>/bench.json and <out>/BENCH.md (default out: results/benchmark/<device>, and its
factorial/ folder with --factorial).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List

import numpy as np

from asr_compress.analysis.collect import TIME_PARTS as PARTS
from asr_compress.evaluate.interleave import decoder_of, spread, time_interleaved
from asr_compress.report.interleaved import PER_UTTERANCE


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("overrides", nargs="*", help="asr-compress config overrides (model=..., data.dir=..., decode.beam_size=...)")
    ap.add_argument("--utterances", type=int, default=12, help="utterances decoded per variant per round")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    ap.add_argument("--components", default="frontend,encoder,ctc,decoder,lm")
    ap.add_argument("--methods", default="", help="comma list of methods (default: all registered, presets included)")
    ap.add_argument("--no-espnet", action="store_true", help="skip ESPnet's own whole-model quantization")
    ap.add_argument("--factorial", default="", help="comma list of components: time every on/off combination "
                    "of them under the one method in --methods (no ESPnet rows) and attribute it (Shapley)")
    ap.add_argument("--out", default=None)
    return ap.parse_args(argv)


def build_variants(base, components: List[str], methods: List[str]):
    """(name, component, method, pipeline, [(component, report)]) for every applicable method/component
    pair, after the baseline (no reports)."""
    from asr_compress.compress import applicable, applicable_methods, method_config
    from asr_compress.errors import CompressionConfigError

    out = [("baseline", None, "none", base, [])]
    for comp in components:
        if comp not in base.components():
            continue
        for m in applicable_methods(comp, methods, base.component(comp)):
            cfg = method_config(m)
            try:
                applicable(comp, cfg, base.component(comp))
                p = base.copy(cut=[comp])
                report = p.compress_(comp, cfg)
            except CompressionConfigError as e:
                print(f"skip {comp}={m}: {e}", file=sys.stderr)
                continue
            out.append((f"{comp}={m}", comp, m, p, [(comp, report)]))
    return out


def build_factorial_variants(base, components: List[str], method: str):
    """(name, cut, method, pipeline, reports) for every subset of `components` cut by `method`,
    in binary order (bit i = components[i]); `cut` is the tuple of on/off flags."""
    from asr_compress.compress import method_config

    missing = [c for c in components if c not in base.components()]
    if missing:
        raise SystemExit(f"--factorial: {', '.join(missing)} not in this model; it has {', '.join(base.components())}")
    cfg = method_config(method)
    out = []
    for mask in range(1 << len(components)):
        cut = tuple(bool(mask >> i & 1) for i in range(len(components)))
        p = base.copy(cut=[c for c, on in zip(components, cut) if on]) if any(cut) else base
        reports = [(c, p.compress_(c, cfg)) for c, on in zip(components, cut) if on]
        name = "+".join(f"{c}={method}" for c, _ in reports) or "baseline"
        out.append((name, cut, method, p, reports))
    return out


def shapley_over_rounds(variants, times, components: List[str], n_utts: int):
    """{component: {part: median/min/max ms per utterance}}: exact Shapley values of each part's
    time, computed within each round (all cells timed side by side) and summarised over rounds, by the
    same code as asr-compress-retime (`variants` are in binary order: bit i = components[i])."""
    from asr_compress.analysis.attribution import Grid
    from asr_compress.report.retime import grid_attribution

    names = [name for name, *_ in variants]
    grid = Grid(factors=list(components), levels={c: "cut" for c in components}, run_ids=names,
                status=["ok"] * len(names))
    ms = {n: [{k: v / n_utts for k, v in t.items()} for t in times[n]] for n in names}
    return grid_attribution(grid, ms, {})["ms"]


def espnet_variants(files, decode):
    """ESPnet's Speech2Text, plain and with its whole-model dynamic int8 quantization."""
    from asr_compress.quiet import import_quietly, silenced

    S2T = import_quietly("espnet2.bin.asr_inference").Speech2Text
    out = []
    for name, q in (("espnet:fp32", False), ("espnet:quantize_asr_model+quantize_lm", True)):
        with silenced():
            s2t = S2T(asr_train_config=str(files.asr_config), asr_model_file=str(files.asr_weights),
                      lm_train_config=str(files.lm_config) if files.lm_config else None,
                      lm_file=str(files.lm_weights) if files.lm_weights else None,
                      beam_size=decode.beam_size, ctc_weight=decode.ctc_weight, lm_weight=decode.lm_weight,
                      penalty=decode.penalty, maxlenratio=decode.maxlenratio, minlenratio=decode.minlenratio,
                      ngram_file=str(files.ngram_file) if files.ngram_file else None,
                      ngram_weight=decode.ngram_weight,  # the same search: ESPnet's own n-gram scorer
                      nbest=1, quantize_asr_model=q, quantize_lm=q)
        out.append((name, s2t))
    return out


def main(argv=None) -> Path:
    args = parse_args(argv)
    import warnings

    warnings.simplefilter("ignore")  # torch/ESPnet deprecation chatter
    import torch

    from asr_compress.compress import component_stats
    from asr_compress.config import PROJECT_ROOT, register_configs
    from asr_compress.evaluate.data import load_test_set, read_audio
    from asr_compress.evaluate.environment import environment
    from asr_compress.evaluate.scoring import TextNormalizer, corpus_scores, utterance_errors
    from asr_compress.evaluate.timing import Clock
    from asr_compress.pipeline import load_pipeline
    from asr_compress.run import to_config

    from hydra import compose, initialize_config_dir

    register_configs()
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = to_config(compose(config_name="config", overrides=args.overrides))
    torch.set_num_threads(cfg.eval.num_threads or torch.get_num_threads())
    methods = args.methods.split(",") if args.methods else None
    utts = load_test_set(cfg.data)[: args.utterances]
    base = load_pipeline(cfg.model, device=cfg.eval.device)
    fs = base.sample_rate
    audio = [read_audio(u.audio, fs) for u in utts]
    norm = TextNormalizer.for_tokens(base.token_list)
    factors = args.factorial.split(",") if args.factorial else []
    if factors:
        if not methods or len(methods) != 1:
            raise SystemExit("--factorial needs exactly one method in --methods, e.g. --methods int8_dynamic")
        cells = build_factorial_variants(base, factors, methods[0])
        variants = [(n, None, m, p, reports) for n, _, m, p, reports in cells]
    else:
        variants = build_variants(base, args.components.split(","), methods)
    espnet = [] if args.no_espnet or factors else espnet_variants(base.files, cfg.decode)
    clock = Clock(cfg.eval.device)

    def espnet_job(s2t):
        def one(i):
            t0 = clock()
            res = s2t(audio[i].astype(np.float32))
            return (res[0][0] if res else ""), {"total": (clock() - t0) * 1000}
        return one

    jobs = {n: decoder_of(p, audio, cfg.decode, clock) for n, _, _, p, _ in variants}
    jobs.update({n: espnet_job(s) for n, s in espnet})
    times, hyps = time_interleaved(jobs, len(audio), args.rounds, progress=lambda msg: print(msg, file=sys.stderr))

    def ratio(n, key, ref):
        vals = [b[key] / v[key] for b, v in zip(times[ref], times[n]) if v.get(key) and b.get(key)]
        return spread(vals) if vals else None

    rows = []
    for n, comp, method, p, reports in variants:
        stats = [component_stats(p.component(c), r) for c, r in reports]
        score = corpus_scores([utterance_errors(norm(u.ref), norm(h)) for u, h in zip(utts, hyps[n])])
        rows.append({
            "variant": n, "component": comp, "method": method,
            "kernel": ",".join(sorted({st["kernel"] for st in stats})) or "none",
            "speedup": ratio(n, "total", "baseline"),
            "part_speedup": {k: ratio(n, k, "baseline") for k in PARTS},
            "ms_per_utt": {k: float(np.median([t[k] for t in times[n]])) / len(audio) for k in (*PARTS, "total")},
            "size_bytes": sum(st["size_bytes"] for st in stats) if stats else None,
            "wer": score["wer"],
        })
    for n, _ in espnet:
        score = corpus_scores([utterance_errors(norm(u.ref), norm(h)) for u, h in zip(utts, hyps[n])])
        rows.append({"variant": n, "component": "all" if "quantize" in n else None, "method": n.split(":")[1],
                     "kernel": "real" if "quantize" in n else "none",
                     "speedup": ratio(n, "total", "baseline"), "speedup_vs_espnet_fp32": ratio(n, "total", "espnet:fp32"),
                     "ms_per_utt": {"total": float(np.median([t["total"] for t in times[n]])) / len(audio)},
                     "wer": score["wer"]})
    env = environment(cfg.eval.device)
    out = Path(args.out) if args.out else PROJECT_ROOT / "results" / "benchmark" / cfg.eval.device.split(":")[0]
    if factors and not args.out:
        out = out / "factorial"  # beside, not over, the methods benchmark
    out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/bench_methods.py " + " ".join(argv if argv is not None else sys.argv[1:])
    result = {"command": command.strip(), "environment": env, "model": cfg.model.name, "data": cfg.data.name,
              "utterances": len(audio), "rounds": args.rounds, "interleave": PER_UTTERANCE, "decode": vars(cfg.decode), "rows": rows}
    if factors:
        result["factorial"] = {"components": factors, "method": methods[0],
                               "shapley_ms": shapley_over_rounds(cells, times, factors, len(audio))}
    (out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "BENCH.md").write_text(render(result))
    print(f"wrote {out / 'BENCH.md'}")
    return out


def _fmt(r):
    if not r:
        return "–"
    return f"{r['median']:.2f}× [{r['min']:.2f}–{r['max']:.2f}]"


def render(result) -> str:
    env = result["environment"]
    lines = [
        f"# Compression speed benchmark ({env['device']})", "",
        f"Regenerate: `{result['command']}`", "",
        "```", *(f"{k}: {v}" for k, v in env.items()), "```", "",
        f"Model `{result['model']}`, test set `{result['data']}`, {result['utterances']} utterances x "
        f"{result['rounds']} interleaved rounds; beam {result['decode']['beam_size']}. Speedup = baseline time / variant "
        "time in the same round (median [min–max]); > 1 is faster. `kernel=simulated` rows only show the "
        "accuracy effect: their time is not a speedup claim. component MB = the compressed component as stored. WER is on these few utterances only.", "",
        "| variant | kernel | speedup (total) | speedup of its own part | ms/utt | frontend | encoder | decoder | ctc | lm | search | component MB | WER % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        ms = r["ms_per_utt"]
        own = r.get("part_speedup", {}).get(r["component"]) if r.get("component") in PARTS else None
        parts = " | ".join(f"{ms[k]:.0f}" if k in ms else "–" for k in PARTS)
        size = f"{r['size_bytes'] / 1e6:.2f}" if r.get("size_bytes") else "–"
        lines.append(f"| {r['variant']} | {r['kernel']} | {_fmt(r['speedup'])} | {_fmt(own)} | {ms['total']:.0f} | {parts} | {size} | {r['wer'] * 100:.1f} |")
    if "factorial" in result:
        lines += render_factorial(result["factorial"])
    espnet = [r for r in result["rows"] if r["variant"].startswith("espnet:")]
    if espnet:
        lines += ["", "ESPnet's own whole-model int8 quantization vs ESPnet fp32 (same process, same rounds): "
                  + _fmt(espnet[-1].get("speedup_vs_espnet_fp32")) + "."]
    return "\n".join(lines) + "\n"


def render_factorial(f) -> List[str]:
    from asr_compress.report.interleaved import interleaved_table

    grid = {"components": f["components"], "ms": f["shapley_ms"], "kind": "shapley"}
    return ["", f"## Where the time went: Shapley attribution, measured interleaved ({f['method']})", "",
            "Each component's Shapley value of the time per utterance (ms; negative = the cut saves time), "
            "computed from the cells of one round, all timed side by side, then median [min to max] over "
            "rounds. A part's column is the time spent in that part: a cut that changes another part's "
            "time by more than the rounds' range shows an interaction, not noise.", "",
            *interleaved_table(grid)]


if __name__ == "__main__":
    main()
