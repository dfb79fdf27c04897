"""sweep_dirs: the sweep directories one launch's cells went to (a sweep over models or test sets)."""
from pathlib import Path

from asr_compress import sweep_dirs
from asr_compress.analysis.synthetic import build_sweep
from asr_compress.report.callback import ReportCallback


def test_cells_in_other_sweep_dirs_are_listed_once_and_only_dirs_with_runs_are_reported(tmp_path, monkeypatch):
    launch, a, b = tmp_path / "synth_test" / "T", tmp_path / "a" / "T", tmp_path / "b" / "T"
    monkeypatch.delenv(sweep_dirs.ENV, raising=False)
    sweep_dirs.note(a)  # no launch under way (a single run, or a multirun without the callback)
    assert not launch.exists()
    launch.mkdir(parents=True)
    (launch / sweep_dirs.LISTING).write_text(f"{tmp_path / 'old'}\n")  # an earlier launch's, into the same dir
    sweep_dirs.start(launch)
    for d in (b, a, launch, b):  # cells in any order; the launch's own directory is not listed
        sweep_dirs.note(d)
    assert (launch / sweep_dirs.LISTING).read_text().split() == [str(b.absolute()), str(a.absolute()),
                                                                str(b.absolute())]
    build_sweep(a, levels={"encoder": ["none", "int8_dynamic"]})
    build_sweep(b, levels={"lm": ["none", "int8_dynamic"]})
    assert sweep_dirs.launched(launch) == [b, a]  # the launch's own holds no run: not a study
    build_sweep(launch, levels={"decoder": ["none", "int8_dynamic"]})
    assert sweep_dirs.launched(launch) == [launch, b, a]


def test_several_sweep_dirs_report_into_their_own_folders_under_out_dir(tmp_path):
    dirs = [tmp_path / "multirun" / "m" / d / "T" for d in ("test_clean", "test_other")]
    assert ReportCallback(out_dir=str(tmp_path / "out"))._out(dirs[1], dirs) == tmp_path / "out" / "test_other" / "T"
    assert ReportCallback(out_dir=str(tmp_path / "out"))._out(dirs[1], dirs[1:]) == tmp_path / "out"
    assert ReportCallback()._out(dirs[0], dirs) is None
    assert isinstance(ReportCallback(out_dir="rel")._out(dirs[0], dirs), Path)


def test_reporting_a_launch_dir_whose_cells_went_elsewhere_names_them(tmp_path, monkeypatch, capsys):
    from asr_compress.report.cli import run_report

    launch, a = tmp_path / "synth_test" / "T", tmp_path / "a" / "T"
    launch.mkdir(parents=True)
    monkeypatch.delenv(sweep_dirs.ENV, raising=False)  # what teardown restores: no launch under way
    sweep_dirs.start(launch)
    sweep_dirs.note(a)
    monkeypatch.delenv(sweep_dirs.ENV)
    build_sweep(a, levels={"encoder": ["none", "int8_dynamic"]})
    assert run_report([str(launch)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"asr-compress-report: error: {launch}: no run directories in it; this launch's cells went to "
                   f"{a.absolute()} (its sweep_dirs.txt): report each, or them together with --out")
