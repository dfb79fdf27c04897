import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from asr_compress.analysis.collect import collect
from asr_compress.report.callback import ReportCallback
from asr_compress.report.cli import report_main, run_report
from asr_compress.report.plots import pareto_front
from asr_compress.report.tables import markdown_table, wer_table
from asr_compress.report.write import write_report

PNGS = ("wer_vs_latency.png", "shapley.png", "interactions.png", "time_breakdown.png")


def _png_dpi(path: Path) -> float:
    from PIL import Image
    with Image.open(path) as im:
        return float(im.info.get("dpi", (0, 0))[0])


def test_write_report_end_to_end(make_sweep):
    root = make_sweep(interaction=True)
    path = write_report(root, n_resamples=200)
    assert path == root / "REPORT.md"
    for name in ("runs.csv", "attribution.csv", "broken_utterances.csv", *PNGS):
        assert (root / name).is_file(), name
    for png in PNGS:
        assert (root / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert _png_dpi(root / png) >= 120
    text = path.read_text()
    for needle in ("## Environment", "git_hash: 64ad1de", "num_threads: 1",
                   "|run|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|Params (M)|Size (MB)|",
                   "cutting the encoder cost 5.00 points of the 13.00 points (95% CI",
                   "the decoder cost 4.50 points", "the LM cost 3.50 points",
                   "cutting the encoder and the decoder together cost 5.00 points more",
                   "the decoder cut saved 18.5 ms/utt in decoder scoring",
                   "## WER per voice group", "## Shapley values per voice group", "## Missing runs", "None: every cell", "![Shapley values](shapley.png)"):
        assert needle in text, needle
    runs = pd.read_csv(root / "runs.csv")
    assert len(runs) == 8 and {"encoder", "decoder", "lm", "wer_pct", "wer_pct_ci_low", "size_mb"} <= set(runs)
    att = pd.read_csv(root / "attribution.csv")
    shap = att.query("metric == 'wer_pct' and kind == 'shapley'")
    assert np.isclose(shap["value"].sum(), 13.0, rtol=1e-12)
    assert shap["ci_low"].notna().all()


def test_setup_names_the_ngram_when_the_runs_have_one(make_sweep):
    import yaml

    root = make_sweep()
    assert "n-gram" not in write_report(root, n_resamples=50).read_text()
    for cfg_file in root.glob("*/.hydra/config.yaml"):
        cfg = yaml.safe_load(cfg_file.read_text())
        cfg["model"]["ngram_file"] = "exp/ngram/6gram.bin"
        cfg["decode"]["ngram_weight"] = 0.3
        cfg_file.write_text(yaml.safe_dump(cfg))
    text = write_report(root, n_resamples=50).read_text()
    assert "penalty 0.0, n-gram `exp/ngram/6gram.bin` at weight 0.3" in text


def test_time_parts_say_the_lm_part_holds_the_ngram_when_a_run_used_one(make_sweep):
    import yaml

    from asr_compress.analysis.collect import collect
    from asr_compress.report.plots import part_names

    root = make_sweep()
    assert part_names(collect(root))["lm"] == "LM scoring"
    assert "LM + n-gram" not in write_report(root, n_resamples=50).read_text()
    for weight in (0.0, 0.3):  # a file named but weight 0: the search never called it
        for cfg_file in root.glob("*/.hydra/config.yaml"):
            cfg = yaml.safe_load(cfg_file.read_text())
            cfg["model"]["ngram_file"], cfg["decode"]["ngram_weight"] = "exp/ngram/4gram.bin", weight
            cfg_file.write_text(yaml.safe_dump(cfg))
        assert part_names(collect(root))["lm"] == ("LM + n-gram scoring" if weight else "LM scoring")
    text = write_report(root, n_resamples=50).read_text()  # the summary's sentences and the Shapley table too
    assert "the LM cut saved" in text and "ms/utt in LM + n-gram scoring" in text
    assert "|time: LM + n-gram scoring (ms/utt)|" in text and "time: LM scoring" not in text

def test_report_with_missing_cell_and_out_dir(make_sweep, tmp_path):
    root = make_sweep(interaction=True, failed=[("int8_dynamic", "none", "int8_dynamic")],
                      missing=[("none", "int8_dynamic", "int8_dynamic")])
    (root / "5" / "error.txt").write_text("decoder: int8_dynamic does not apply (example)\nsecond line\n")
    out = tmp_path / "results" / "study"
    path = write_report(root, out_dir=out, n_resamples=50)
    assert path == out / "REPORT.md" and not (root / "REPORT.md").exists()
    text = path.read_text()
    assert "Shapley values are not computable" in text
    assert "|encoder=int8_dynamic+lm=int8_dynamic|failed|" in text
    assert "decoder: int8_dynamic does not apply" in text  # the failed run's error.txt
    assert "|decoder=int8_dynamic+lm=int8_dynamic|absent|" in text
    assert "FAILED" in text  # the failed run stays in the WER table
    att = pd.read_csv(out / "attribution.csv")
    assert att.query("metric == 'wer_pct' and kind == 'shapley'")["value"].isna().all()
    assert set(pd.read_csv(out / "missing_runs.csv")["status"]) == {"failed", "absent"}
    for png in PNGS:
        assert (out / png).is_file()


def test_a_sweep_over_decoding_settings_lists_its_failed_run_and_keeps_runs_apart(make_sweep):
    # asr-compress -m decode.beam_size=0,5,10: no component varies, every run is the "baseline"
    import shutil

    import yaml

    root = make_sweep(levels={"encoder": ["none"]})
    for num, beam in (("1", 10), ("2", 0)):
        shutil.copytree(root / "0", root / num)
        cfg = yaml.safe_load((root / num / ".hydra" / "config.yaml").read_text())
        cfg["decode"]["beam_size"] = beam
        (root / num / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    (root / "2" / "metrics.json").unlink()
    (root / "2" / "utterances.jsonl").unlink()
    (root / "2" / "error.txt").write_text("decode.beam_size=0: must be >= 1\n")
    text = write_report(root, n_resamples=20, plots_enabled=False).read_text()
    assert "No grid cell is missing, but these runs failed:\n\n- run `2` (baseline): decode.beam_size=0: must be >= 1" in text
    assert "## Attribution\n\nNone: no component varies" in text
    assert "|baseline (0)|10.00|0.00|" in text and "|baseline (1)|10.00|0.00|" in text  # WER per voice group
    assert "num_threads: 1\n" in text  # not "1.0": the failed run's empty column made it float


def test_environment_differences_are_flagged(make_sweep):
    root = make_sweep()
    m = json.loads((root / "3" / "metrics.json").read_text())
    m["environment"]["cpu"] = "Other CPU"
    (root / "3" / "metrics.json").write_text(json.dumps(m))
    text = write_report(root, n_resamples=20, plots_enabled=False).read_text()
    assert "cpu: DIFFERS between runs" in text and "not comparable" in text
    assert "gpu:" not in text  # recorded only for runs on a GPU
    assert "computed by different code" not in text and "code_sha256" not in text  # not recorded by these runs


def test_runs_computed_by_different_code_are_flagged(make_sweep):
    # e.g. two multiruns into one sweep directory with a method edited between them
    root = make_sweep()
    for f in root.glob("*/metrics.json"):
        m = json.loads(f.read_text())
        m["environment"]["code_sha256"] = ("ab" if f.parent.name == "5" else "cd") * 32
        f.write_text(json.dumps(m))
    text = write_report(root, n_resamples=20, plots_enabled=False).read_text()
    assert "code_sha256: DIFFERS between runs: cdcdcdcdcdcdcdcd (7 runs) | abababababababab (1 runs)" in text
    assert "**Warning**: runs were computed by different code (code_sha256); a difference between them may come " \
           "from the code, not the cuts" in text
    assert "not comparable" not in text  # the same machine: only the code differs


def test_runs_that_decoded_at_the_same_time_on_one_machine_are_flagged(make_sweep):
    # submitit_local (or Slurm jobs sharing a node) runs cells at once: their latencies contend
    root = make_sweep()
    for f in root.glob("*/metrics.json"):
        m, k = json.loads(f.read_text()), int(f.parent.name)
        # runs 0-5 one after another on node-a; 6 and 7 at the same time, and 7 on node-b as well as 3
        start = {6: 100, 7: 101}.get(k, 10 * k)
        m["decode_window"] = {"start": f"2026-12-07T12:{start // 60:02d}:{start % 60:02d}+00:00",
                              "end": f"2026-12-07T12:{(start + 9) // 60:02d}:{(start + 9) % 60:02d}+00:00"}
        m["environment"]["host"] = "node-b" if k in (3, 7) else "node-a"
        f.write_text(json.dumps(m))
    text = write_report(root, n_resamples=20, plots_enabled=False).read_text()
    assert "decoded at the same time" not in text  # 6 and 7 overlap in time, but 7 ran on node-b
    assert "host: DIFFERS between runs: node-a (6 runs) | node-b (2 runs)" in text and "not comparable" in text
    (root / "7" / "metrics.json").write_text((root / "7" / "metrics.json").read_text().replace("node-b", "node-a"))
    text = write_report(root, n_resamples=20, plots_enabled=False).read_text()
    assert "**Warning**: runs 6, 7 decoded at the same time on one machine (node-a)" in text
    assert "some of these runs decoded at the same time on one machine" in text  # the latency caveat
    assert "these runs were timed one after another" not in text
    from asr_compress.report import plots

    assert plots.timing_label(collect(root)) == plots.CONCURRENT  # the figures' latency labels say so too


def test_runs_on_different_gpus_are_flagged(make_sweep):
    # a cluster sweep: each cell a job, on whichever node Slurm gave it
    root = make_sweep()
    for f in root.glob("*/metrics.json"):
        m = json.loads(f.read_text())
        m["environment"].update(device="cuda", gpu="NVIDIA A100-SXM4-80GB" if f.parent.name == "3" else "NVIDIA H100")
        f.write_text(json.dumps(m))
    text = write_report(root, n_resamples=20, plots_enabled=False).read_text()
    assert "gpu: DIFFERS between runs: NVIDIA H100 (7 runs) | NVIDIA A100-SXM4-80GB (1 runs)" in text
    assert "not comparable" in text


def test_wer_table_espnet_percentages(make_sweep):
    table = wer_table(collect(make_sweep()))
    lines = table.splitlines()
    assert lines[0].startswith("|run|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|")
    base = next(line for line in lines if line.startswith("|baseline"))
    assert base.split("|")[2:11] == ["20", "200", "95.0", "5.0", "0.0", "0.0", "5.0", "50.0", "2.30"]
    assert lines[1].startswith("|---|---:|")  # text left, numbers right


def test_markdown_table_not_measured_is_na():
    text = markdown_table(pd.DataFrame({"a": ["x"], "b": [np.nan]}))
    assert text.splitlines()[-1] == "|x|n/a|"


def test_pareto_front():
    x = np.array([1.0, 2.0, 3.0, 2.5])
    y = np.array([5.0, 3.0, 1.0, 4.0])
    assert pareto_front(x, y).tolist() == [True, True, True, False]


def _legend_of_wer_vs_latency(make_sweep, name, monkeypatch, edit=None):
    """The legend texts of the WER-vs-latency plot of a one-factor sweep (run 0 baseline, run 1 cut)."""
    from asr_compress.report import plots

    root = make_sweep(name, levels={"encoder": ["none", "int8_dynamic"]})
    if edit:
        m = json.loads((root / "1" / "metrics.json").read_text())
        edit(m)
        (root / "1" / "metrics.json").write_text(json.dumps(m))
    seen = {}
    save = plots._save
    def _save(fig, path):
        ax = fig.axes[0]
        legend = ax.get_legend()
        seen["legend"] = [t.get_text() for t in legend.get_texts()]
        renderer = fig.canvas.get_renderer()  # the legend never covers a run's marker: it is beside the axes
        assert legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1
        return save(fig, path)
    monkeypatch.setattr(plots, "_save", _save)
    assert plots.plot_wer_vs_latency(collect(root), root / "p.png").is_file()
    return seen["legend"]


def test_wer_vs_latency_legend_names_only_what_is_plotted(make_sweep, monkeypatch):
    # the synthetic cut is 2 ms faster and 2.5 points worse: both runs are on the front
    legend = _legend_of_wer_vs_latency(make_sweep, "a", monkeypatch)
    assert legend == ["Pareto-optimal run", "Pareto front"]

    def slower(m):  # now the cut is slower and worse than the baseline: dominated
        m["latency_ms"]["mean"] += 10.0
    legend = _legend_of_wer_vs_latency(make_sweep, "b", monkeypatch, slower)
    assert legend == ["dominated run", "Pareto-optimal run"]  # one point on the front: no line

    def simulated(m):
        m["components"]["encoder"]["kernel"] = "simulated"
    legend = _legend_of_wer_vs_latency(make_sweep, "c", monkeypatch, simulated)
    assert legend == ["simulated kernel (latency = dense float32)", "Pareto-optimal run"]


def test_cli_bad_directory_exit_2_one_line(tmp_path, capsys):
    missing = tmp_path / "no_such_sweep"
    with pytest.raises(SystemExit) as exc:  # the console-script entry exits by itself
        report_main([str(missing)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(missing) in err[0] and "error" in err[0]
    assert run_report([str(tmp_path)]) == 2  # exists, but holds no runs
    assert str(tmp_path) in capsys.readouterr().err
    (tmp_path / "a_file").write_text("")
    assert run_report([str(tmp_path / "a_file")]) == 2


def test_a_speaker_bootstrap_is_named_in_the_report(make_sweep, tmp_path):
    root = make_sweep()
    assert run_report([str(root), "--out", str(tmp_path / "out"), "--resamples", "20", "--no-plots",
                       "--bootstrap-by", "speaker"]) == 0
    text = (tmp_path / "out" / "REPORT.md").read_text()
    assert "- uncertainty: paired bootstrap over 20 utterances of 4 speakers, drawn by speaker, 20 resamples" in text


def test_the_report_callback_checks_its_bootstrap_unit_when_the_sweep_starts():
    from asr_compress.report.callback import ReportCallback

    with pytest.raises(ValueError, match=r"hydra.callbacks.report.bootstrap_by='speakers'; valid: utterance, speaker"):
        ReportCallback(bootstrap_by="speakers")
    assert ReportCallback(bootstrap_by="speaker").bootstrap_by == "speaker"


@pytest.mark.parametrize("option,value,needle", [
    ("--resamples", "0", "argument --resamples: 0: valid: an integer >= 1"),
    ("--seed", "-1", "argument --seed: -1: valid: an integer >= 0"),
    ("--resamples", "many", "argument --resamples: 'many' is not an integer"),
])
def test_bad_bootstrap_options_are_a_usage_error(tmp_path, capsys, option, value, needle):
    # before the report starts, not as "report failed" with a traceback from the bootstrap
    with pytest.raises(SystemExit) as e:
        run_report([str(tmp_path), option, value])
    assert e.value.code == 2 and needle in capsys.readouterr().err


def test_cli_writes_report(make_sweep, tmp_path, capsys):
    root = make_sweep()
    assert run_report([str(root), "--out", str(tmp_path / "out"), "--resamples", "20", "--no-plots"]) == 0
    assert (tmp_path / "out" / "REPORT.md").is_file()
    assert str(tmp_path / "out" / "REPORT.md") in capsys.readouterr().out


def test_callback_writes_report_and_logs_failures(make_sweep, tmp_path, caplog):
    root = make_sweep()
    cb = ReportCallback(n_resamples=20, plots=False)
    cb.on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(root)}}}))
    assert (root / "REPORT.md").is_file()
    caplog.set_level(logging.INFO)
    bad = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "gone")}}})
    cb.on_multirun_end(bad)  # logged, not raised: the runs are already on disk
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and "REPORT FAILED" in errors[0].getMessage() and "gone" in errors[0].getMessage()


@pytest.mark.parametrize("breaks", [False, True])
def test_callback_fires_at_the_end_of_a_real_hydra_multirun(tmp_path, breaks):
    """A tiny Hydra app with the callback wired as the main config would; 4 jobs, then the report."""
    repo = Path(__file__).resolve().parents[2]
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text(textwrap.dedent("""
        encoder: none
        lm: none
        hydra:
          callbacks:
            report:
              _target_: asr_compress.report.callback.ReportCallback
              n_resamples: 20
              plots: false
    """))
    (tmp_path / "app.py").write_text(textwrap.dedent(f"""
        from pathlib import Path
        import hydra, yaml
        from hydra.core.hydra_config import HydraConfig
        from asr_compress.analysis.synthetic import config_for, utterance_rows, write_results

        @hydra.main(version_base="1.3", config_path="conf", config_name="config")
        def main(cfg):
            out = Path(HydraConfig.get().runtime.output_dir)
            methods = {{"encoder": cfg.encoder, "lm": cfg.lm}}
            # the real app writes its resolved config here; ours mimics the contract's mapping form
            (out / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config_for(methods)))
            idx = {{c: int(m != "none") for c, m in methods.items()}}
            write_results(out, methods, utterance_rows(idx, interaction=False))

        main()
    """))
    sweep = tmp_path / "multirun"
    extra = []
    if breaks:  # an output dir that cannot be created: the report fails, loudly, the sweep does not
        (tmp_path / "a_file").write_text("")
        extra = [f"+hydra.callbacks.report.out_dir={tmp_path / 'a_file' / 'report'}"]
    proc = subprocess.run([sys.executable, str(tmp_path / "app.py"), "-m", "encoder=none,int8_dynamic",
                           "lm=none,int8_dynamic", f"hydra.sweep.dir={sweep}", *extra],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(  # this checkout's package
                              [str(repo), os.environ.get("PYTHONPATH", "")])})
    assert proc.returncode == 0, proc.stderr[-3000:]
    if breaks:
        log = proc.stdout + proc.stderr
        assert "REPORT FAILED" in log and "retry with: asr-compress-report" in log, log[-3000:]
        assert (sweep / "3" / "metrics.json").is_file()
        return
    assert (sweep / "REPORT.md").is_file(), proc.stderr[-3000:]
    assert (proc.stdout + proc.stderr).lower().count("report written") == 1  # said once, not twice
    att = pd.read_csv(sweep / "attribution.csv").query("metric == 'wer_pct' and kind == 'shapley'")
    assert dict(zip(att["term"], att["value"])) == pytest.approx({"encoder": 2.5, "lm": 3.5})


def test_report_three_levels_and_one_at_a_time(make_sweep, monkeypatch):
    three = make_sweep("three", levels={"encoder": ["none", "int8_dynamic", "prune"], "lm": ["none", "int8_dynamic"]})
    text = write_report(three, n_resamples=20, plots_enabled=False).read_text()
    assert "**Sub-grid `encoder=prune,lm=int8_dynamic`**" in text
    assert "cutting the encoder cost 5.00 points of the 8.50 points" in text  # prune doubles the encoder errors
    oat = make_sweep("oat")
    import shutil
    for num in ("3", "5", "6", "7"):
        shutil.rmtree(oat / num)
    text = write_report(oat, n_resamples=20, plots_enabled=False).read_text()
    # one at a time: each cut once, in one table (tests/report/test_cuts.py has the rest)
    assert "**A one-at-a-time study**: 3 cuts (3 finished)" in text and "Sub-grid" not in text
    assert "|LM|int8_dynamic|8.50|+3.50|" in text
    assert "-2.0 (encoder forward)" in text and "-18.5 (decoder scoring)" in text and "-12.5 (LM scoring)" in text
    from asr_compress.analysis.attribution import attribute
    from asr_compress.report import plots

    titles, save = [], plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: (titles.append(fig._suptitle.get_text()), save(fig, path))[1])
    sweep = collect(oat)
    att = attribute(sweep)
    plots.plot_shapley(att, att.grids[0], oat / "s.png", plots.part_names(sweep))
    assert titles[0].startswith("Shapley values not computable (a one-at-a-time study: no run cuts two components)")
    assert "4 combinations of two or more cuts are absent by design" in text


def test_report_when_every_run_failed_says_why(make_sweep):
    import itertools
    levels = {"encoder": ["none", "int8_dynamic"], "lm": ["none", "int8_dynamic"]}
    root = make_sweep(levels=levels, failed=list(itertools.product(*levels.values())))
    text = write_report(root, n_resamples=10, plots_enabled=False).read_text()
    assert "Nothing can be attributed: no run of this grid finished" in text
    assert "runs: 4 found, 0 finished, 4 failed" in text
    assert "||" not in text


def test_speedups_only_on_the_baselines_machine(make_sweep):
    root = make_sweep()
    m = json.loads((root / "3" / "metrics.json").read_text())
    m["environment"]["num_threads"] = 2
    (root / "3" / "metrics.json").write_text(json.dumps(m))
    write_report(root, n_resamples=10, plots_enabled=False)
    runs = pd.read_csv(root / "runs.csv", dtype={"run_id": str}).set_index("run_id")
    assert runs.loc["2", "speedup.latency_ms.mean"] == pytest.approx(101.0 / 82.5)
    assert runs.loc["2", "speedup.time_breakdown_ms.decoder"] == pytest.approx(2.0)
    assert np.isnan(runs.loc["3", "speedup.latency_ms.mean"])  # other thread count: never compared
    table = wer_table(collect(root))
    assert "|Speed-up|" in table and "1.22x" in table


def test_summary_says_when_a_cut_made_decoding_slower(make_sweep):
    root = make_sweep()
    for num in ("4", "5", "6", "7"):  # every run with the encoder cut: encoder forward 10 ms slower
        m = json.loads((root / num / "metrics.json").read_text())
        m["time_breakdown_ms"]["encoder"] += 10.0
        m["latency_ms"]["mean"] += 10.0
        (root / num / "metrics.json").write_text(json.dumps(m))
    text = write_report(root, n_resamples=10, plots_enabled=False).read_text()
    assert "the encoder cut made encoder forward SLOWER by 8.0 ms/utt" in text


def test_summary_says_plainly_when_no_cut_changed_wer(make_sweep):
    # the synthetic CTC cut changes no word: one sentence, not "cost 0.00 points of the 0.00 points"
    root = make_sweep(levels={"ctc": ["none", "int8_dynamic"]})
    text = write_report(root, n_resamples=10, plots_enabled=False).read_text()
    assert "**WER**: 5.00% in every run of this grid: no cut changed it." in text
    assert "**mean latency**: cutting the CTC moved mean latency from 101.0 ms to 89.0 ms" in text
    # shares that cancel: the encoder cut costs 2.5 points, the LM cut gains them back (all-cut = baseline)
    root = make_sweep("cancel", levels={"encoder": ["none", "int8_dynamic"], "lm": ["none", "int8_dynamic"]})
    for num in ("1", "3"):  # every run with the LM cut: 5 of the encoder's extra errors fixed
        path = root / num / "utterances.jsonl"
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        for r in rows:
            r["insertions"] = 0
            if int(r["id"][3:]) % 4 == 0 and num == "3":
                r["substitutions"] -= 1
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        m = json.loads((root / num / "metrics.json").read_text())
        n_err = sum(r["substitutions"] + r["deletions"] + r["insertions"] for r in rows)
        m.update(wer=n_err / 200, substitutions=sum(r["substitutions"] for r in rows), insertions=0)
        (root / num / "metrics.json").write_text(json.dumps(m))
    wer = next(line for line in write_report(root, n_resamples=10, plots_enabled=False).read_text().splitlines()
               if line.startswith("**WER**"))
    assert "+0.00 points (0 on every bootstrap resample). Shapley attribution (the shares cancel): cutting the" in wer
    assert "of the 0.00 points" not in wer
    # beside a cut that changes WER, the CTC's share is exactly 0 on every resample: said so once
    text = write_report(make_sweep("two", levels={"encoder": ["none", "int8_dynamic"], "ctc": ["none", "int8_dynamic"]}),
                        n_resamples=10, plots_enabled=False).read_text()
    wer = next(line for line in text.splitlines() if line.startswith("**WER**"))
    assert "the CTC cost 0.00 points (0 on every bootstrap resample)" in wer, wer
    # one at a time (the all-cut cell absent): the same sentence over the runs that exist
    root = make_sweep("oat", levels={"ctc": ["none", "int8_dynamic"], "frontend": ["none", "int8_dynamic"]},
                      missing=[("int8_dynamic", "int8_dynamic")])
    text = write_report(root, n_resamples=10, plots_enabled=False).read_text()
    assert "**WER**: 5.00% in every run: no cut changed it." in text


def test_one_at_a_time_attribution_shows_the_effects_alone_not_rows_of_na(make_sweep):
    import itertools

    levels = {c: ["none", "int8_dynamic"] for c in ("encoder", "decoder", "lm")}
    # a sub-grid with every combination absent inside a sweep that has one (the encoder's prune level
    # was only run alone; int8 also on encoder + decoder together): that grid shows the effects alone
    mixed = {**levels, "encoder": ["none", "int8_dynamic", "prune"]}
    absent = [cell for cell in itertools.product(*mixed.values())
              if sum(x != "none" for x in cell) >= 2 and cell != ("int8_dynamic", "int8_dynamic", "none")]
    text = write_report(make_sweep(levels=mixed, missing=absent), n_resamples=20, plots_enabled=False).read_text()
    attribution = text.split("## Attribution")[1].split("## Per utterance")[0]
    alone = attribution.split("### Sub-grid `encoder=prune,decoder=int8_dynamic,lm=int8_dynamic`")[1]
    assert "|term|alone vs baseline|alone 95% CI|" in alone
    assert "|encoder (prune)|+5.00|" in alone and "|LM (int8_dynamic)|+3.50|" in alone
    assert "|interaction" not in alone and "n/a" not in alone
    assert "Shapley values for every metric" not in alone
    assert "need every combination of cuts measured, and here some are not (absent; see Missing runs)" in alone
    assert ("**WER**: a one-at-a-time study: no run cuts two components, so only the effects of each cut alone "
            "are known") in text
    # a factorial that lost its all-cut cell: no Shapley value, but the pairwise interactions it has
    lost = write_report(make_sweep("lost", levels=levels, failed=[("int8_dynamic",) * 3]), n_resamples=20,
                        plots_enabled=False).read_text()
    assert "|interaction encoder x decoder|+0.00|" in lost and "|interaction encoder x decoder x LM|" not in lost
    assert "here some are not (failed; see Missing runs)" in lost
    assert "**WER**: the all-compressed run has no usable WER (failed), so only the effects of each cut alone" in lost
    # a complete factorial keeps the full table
    full = write_report(make_sweep("full", levels=levels), n_resamples=20, plots_enabled=False).read_text()
    assert "|term|Shapley|Shapley 95% CI|alone vs baseline|alone 95% CI|main effect|" in full


def test_summary_leads_with_the_cut_components_own_time_part(make_sweep):
    # every run with the encoder cut also met a faster machine: LM scoring 6 ms quicker. The
    # summary names the encoder's own part first and the LM part as one the encoder does not run
    root = make_sweep()
    for num in ("4", "5", "6", "7"):
        m = json.loads((root / num / "metrics.json").read_text())
        m["time_breakdown_ms"]["lm"] -= 6.0
        m["latency_ms"]["mean"] -= 6.0
        (root / num / "metrics.json").write_text(json.dumps(m))
    text = write_report(root, n_resamples=10, plots_enabled=False).read_text()
    where = next(line for line in text.splitlines() if line.startswith("**Where the time went**"))
    enc = next(s for s in where.split(": ", 1)[1].split("; ") if "the encoder cut" in s)
    assert enc.startswith("the encoder cut saved 2.0 ms/utt in encoder forward, while LM scoring, "
                          "which the encoder does not run, moved by -6.0 ms/utt"), enc
    assert "the decoder cut saved 18.5 ms/utt in decoder scoring;" in where  # its own part, the biggest
    assert where.endswith("moves when the search takes other paths, or when the machine drifts between runs.")
    plain = write_report(make_sweep("plain"), n_resamples=10, plots_enabled=False).read_text()
    assert "does not run" not in plain  # every cut's own part moved most: nothing to explain


def test_simulated_runs_show_no_speedup(make_sweep):
    root = make_sweep()
    m = json.loads((root / "1" / "metrics.json").read_text())
    m["components"]["lm"]["kernel"] = "simulated"
    (root / "1" / "metrics.json").write_text(json.dumps(m))
    row = next(line for line in wer_table(collect(root)).splitlines() if line.startswith("|lm=int8_dynamic (1)"))
    assert "|simulated|" in row
    latency = write_report(root, n_resamples=20, plots_enabled=False).read_text().split("**latency (ms/utt)**")[1]
    assert "|LM (int8_dynamic)|n/a|n/a|" in latency  # its time is dense float32's: no effect claimed
    assert "here some are not (simulated kernel, no speed-up): the table" in latency
    # every LM cut simulated (as a real kernel-less method is): the total is blocked by the timing, not
    # by a run's status, and the summary says which
    for num in ("3", "5", "7"):
        m = json.loads((root / num / "metrics.json").read_text())
        m["components"]["lm"]["kernel"] = "simulated"
        (root / num / "metrics.json").write_text(json.dumps(m))
    assert ("**mean latency**: the all-compressed run has no usable mean latency (simulated kernel, no speed-up), "
            "so only the effects of each cut alone are known") in write_report(root, n_resamples=20,
                                                                               plots_enabled=False).read_text()


def _bench(path: Path, components=("encoder", "decoder", "lm"), method="int8_dynamic", model="tiny_conformer"):
    """A bench.json as `bench_methods.py --factorial` writes it (only what the report reads)."""
    def span(m, lo, hi):
        return {"median": m, "min": lo, "max": hi}
    shap = {c: {"total": span(v, v - 3, v + 2)} for c, v in zip(components, (-38.6, 0.4, 12.0))}
    path.write_text(json.dumps({"model": model, "data": "synthetic", "utterances": 8, "rounds": 3,
                                "factorial": {"components": list(components), "method": method,
                                              "shapley_ms": shap}}))
    return path


def test_report_cites_the_interleaved_latency_and_otherwise_warns(make_sweep, tmp_path):
    # a sweep times its cells one after another: drift lands on later cuts, so the report either
    # cites the side-by-side attribution or says it should not be cited for latency
    root = make_sweep()
    plain = write_report(root, out_dir=tmp_path / "plain", n_resamples=20, plots_enabled=False).read_text()
    assert "**Latency caveat**: these runs were timed one after another" in plain
    assert "sequential runs" not in plain  # nothing to contrast them with
    bench = _bench(tmp_path / "bench.json")
    text = write_report(root, out_dir=tmp_path / "with", n_resamples=20, plots_enabled=False,
                        interleaved=bench).read_text()
    assert "Latency caveat" not in text
    assert f"--interleaved {bench}" in text.split("\n")[2]  # the regenerate command names the file
    assert (f"**mean latency, timed side by side** (`{bench}`: every combination, in each of 3 shuffled rounds "
            "of 8 utterances") in text  # a file without `interleave` was timed block-wise per round
    # largest effect first; a range that includes 0 is said to
    assert ("the encoder cut saved 38.6 ms (-41.6 to -36.6); the LM cut added 12.0 ms (+9.0 to +14.0); "
            "the decoder cut added 0.4 ms (-2.6 to +2.4; the range includes 0)") in text


@pytest.mark.parametrize("kwargs, needle", [
    ({"components": ("encoder", "lm")}, "components encoder, lm differ from the sweep's factors encoder, decoder, lm"),
    ({"method": "int4_weight"}, "method int4_weight differs from the sweep's int8_dynamic"),
    ({"model": "default"}, "model default differs from the sweep's tiny_conformer"),
])
def test_cli_refuses_an_interleaved_file_of_another_study(make_sweep, tmp_path, capsys, kwargs, needle):
    root = make_sweep()
    bench = _bench(tmp_path / "bench.json", **kwargs)
    out = tmp_path / "out"
    assert run_report([str(root), "--out", str(out), "--no-plots", "--interleaved", str(bench)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--interleaved {bench}: {needle}" in err[0], err
    assert not out.exists()  # checked before anything is written
    assert run_report([str(root), "--interleaved", str(tmp_path / "nope.json")]) == 2
    assert "nope.json: --interleaved: no such file" in capsys.readouterr().err
    (tmp_path / "plain.json").write_text('{"rows": []}')
    assert run_report([str(root), "--interleaved", str(tmp_path / "plain.json")]) == 2
    assert "no 'sweep' or 'factorial' section (write it with asr-compress-retime SWEEP" in capsys.readouterr().err


def test_one_factor_sweep_summary_says_no_together(make_sweep):
    # a sweep over one component: its total is its effect, so no "together" and no Shapley split
    root = make_sweep(levels={"encoder": ["none", "int8_dynamic"]})
    text = write_report(root, n_resamples=20, plots_enabled=False).read_text()
    assert "**WER**: cutting the encoder moved WER from" in text
    summary = text.split("## Summary")[1].split("\n## ")[0]
    assert "together" not in summary and "moved mean latency" in summary
    assert "Shapley attribution: cutting the encoder" not in text


@pytest.mark.parametrize("ngram_file, weight, expected", [
    ("models/default/ngram/4gram.bin", 0.3, True), ("models/default/ngram/4gram.bin", 0.0, False),
    ("models/default/ngram/4gram.bin", float("nan"), False), (None, 0.3, False), ("n/a", 0.3, False),
    (float("nan"), 0.3, False), ("", 0.3, False), ("x.bin", None, False)])
def test_ngram_in_search_reads_metrics_and_sweep_columns_alike(ngram_file, weight, expected):
    from asr_compress.report.tables import ngram_in_search

    assert ngram_in_search(ngram_file, weight) is expected


def test_several_sweep_dirs_are_reported_as_one_study(make_sweep, tmp_path, capsys):
    a = make_sweep("a", levels={"encoder": ["none", "int8_dynamic"]})
    b = make_sweep("b", levels={"lm": ["none", "int8_dynamic"]})
    out = tmp_path / "ab"
    assert run_report([str(a), str(b), "--out", str(out), "--resamples", "20", "--no-plots"]) == 0
    text = (out / "REPORT.md").read_text()
    assert text.startswith("# Compression study: tiny_conformer on synthetic (`a` + `b`)\n")
    assert f"Generated by `asr-compress-report {a} {b} --out {out}`" in text
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(runs["run_id"]) == ["a/0", "a/1", "b/0", "b/1"]
    # each sweep cut one component: together a one-at-a-time study of both, against the first baseline
    assert "A one-at-a-time study" in text and "2 baseline runs (a/0, b/0); using a/0" in text
    assert "|encoder|int8_dynamic|7.50|+2.50|" in text and "|LM|int8_dynamic|8.50|+3.50|" in text
    # the retime command it suggests times the same study, for the combined report's folder
    assert f"`asr-compress-retime {a} {b} --report-out {out}`" in text


def test_sweep_dirs_may_come_before_and_after_the_options(make_sweep, tmp_path):
    a = make_sweep("a", levels={"encoder": ["none", "int8_dynamic"]})
    b = make_sweep("b", levels={"lm": ["none", "int8_dynamic"]})
    out = tmp_path / "ab"
    assert run_report([str(a), "--out", str(out), "--no-plots", str(b), "--resamples", "10"]) == 0
    assert pd.read_csv(out / "runs.csv")["run_id"].tolist() == ["a/0", "a/1", "b/0", "b/1"]


@pytest.mark.parametrize("case, needle", [
    ("no_out", "2 sweep directories: give --out DIR, the folder of their combined report"),
    ("second_missing", "no such directory"),
])
def test_several_sweep_dirs_bad_inputs_are_one_line_errors(make_sweep, tmp_path, capsys, case, needle):
    a = make_sweep("a", levels={"encoder": ["none", "int8_dynamic"]})
    b = make_sweep("b", levels={"lm": ["none", "int8_dynamic"]}) if case == "no_out" else tmp_path / "nope"
    args = [str(a), str(b)] + (["--out", str(tmp_path / "out")] if case != "no_out" else [])
    assert run_report(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    named = a if case == "no_out" else b
    assert len(err) == 1 and err[0].startswith(f"asr-compress-report: error: {named}: ") and needle in err[0], err
    assert not (tmp_path / "out").exists()
