"""Failed sweep cells are found in the launching process and on disk, each once."""
from pathlib import Path

import pytest

from asr_compress import failed_cells


@pytest.fixture(autouse=True)
def _empty_registry(monkeypatch):
    monkeypatch.setattr(failed_cells, "_failed", {})


def test_record_sweep_finds_nested_cells_once(tmp_path):
    for cell in ("0", "lm=int8/1", "2"):
        (tmp_path / cell).mkdir(parents=True)
    (tmp_path / "0" / "error.txt").write_text("beam_size=0\n")
    (tmp_path / "lm=int8" / "1" / "error.txt").write_text("lm: no LM\n")
    (tmp_path / "2" / "metrics.json").write_text("{}")
    failed_cells.record(tmp_path / "0")  # failed in this process, then found on disk as well
    failed_cells.record_sweep(tmp_path)
    assert failed_cells.failed() == [tmp_path / "0", tmp_path / "lm=int8" / "1"]


def test_record_sweep_takes_a_relative_sweep_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "multirun" / "0").mkdir(parents=True)
    (tmp_path / "multirun" / "0" / "error.txt").write_text("x\n")
    failed_cells.record(tmp_path / "multirun" / "0")  # Hydra's output_dir is absolute
    failed_cells.record_sweep(Path("multirun"))
    assert failed_cells.failed() == [tmp_path / "multirun" / "0"]


def test_clear_outputs_removes_a_previous_runs_results_only(tmp_path):
    (tmp_path / ".hydra").mkdir()
    for name in ("metrics.json", "utterances.jsonl", "error.txt", "cli.log", ".hydra/config.yaml"):
        (tmp_path / name).write_text("old")
    failed_cells.clear_outputs(tmp_path)
    failed_cells.clear_outputs(tmp_path / "nonexistent")  # a fresh run dir: nothing to remove
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [".hydra", ".hydra/config.yaml", "cli.log"]


def test_the_cells_callback_records_cells_that_failed_elsewhere(tmp_path):
    from omegaconf import OmegaConf

    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "error.txt").write_text("failed in a Slurm job\n")
    failed_cells.CellsCallback().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    assert failed_cells.failed() == [tmp_path / "0"]


def test_record_sweep_skips_an_earlier_launchs_errors_but_not_a_cell_that_failed_again(tmp_path):
    for cell in ("a", "b"):
        (tmp_path / cell).mkdir()
        (tmp_path / cell / "error.txt").write_text("failed in the first launch\n")
    existing = failed_cells.existing_errors(tmp_path)  # the second launch starts
    assert {f[0] for f in existing} == {tmp_path / "a" / "error.txt", tmp_path / "b" / "error.txt"}
    failed_cells.clear_outputs(tmp_path / "b")  # the second launch runs cell b again ...
    (tmp_path / "b" / "error.txt").write_text("failed in the second launch\n")  # ... and it fails again
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "error.txt").write_text("a new cell\n")
    failed_cells.record_sweep(tmp_path, existing)
    assert failed_cells.failed() == [tmp_path / "b", tmp_path / "c"]
