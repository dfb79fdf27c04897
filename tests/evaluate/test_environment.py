"""The environment block's git hash: '-dirty' for changed code, not for regenerated results."""
import subprocess

from asr_compress.evaluate import environment


def _repo(tmp_path):
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "REPORT.md").write_text("old numbers\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "c"], check=True)
    return subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()


def test_git_hash_ignores_regenerated_results_but_not_changed_code(tmp_path, monkeypatch):
    head = _repo(tmp_path)
    monkeypatch.setattr(environment, "PROJECT_ROOT", tmp_path)
    assert environment.git_hash() == head
    (tmp_path / "results" / "REPORT.md").write_text("new numbers\n")  # an earlier report of the chain
    assert environment.git_hash() == head
    (tmp_path / "code.py").write_text("x = 2\n")
    assert environment.git_hash() == head + "-dirty"


def test_git_hash_outside_a_repository_is_unknown(tmp_path, monkeypatch):
    monkeypatch.setattr(environment, "PROJECT_ROOT", tmp_path)
    assert environment.git_hash() == "unknown"


def test_usable_cpus_counts_the_processs_cpu_set_not_the_machine():
    # a Slurm job's cpuset, as `taskset -c 0` gives one: threads beyond it would only contend
    import sys

    code = ("import os; os.sched_setaffinity(0, {0}); "
            "from asr_compress.evaluate.environment import usable_cpus; print(usable_cpus())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
    assert 1 <= environment.usable_cpus() <= (__import__("os").cpu_count() or 1)
