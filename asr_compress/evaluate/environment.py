"""The environment block every result carries: versions, git hash, CPU/GPU, threads, date."""
from __future__ import annotations

import datetime
import hashlib
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterable

from asr_compress.config import PROJECT_ROOT


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def usable_cpus() -> int:
    """The cores this process may run on: a batch job's allocation (Slurm's cpuset, `taskset`), not
    the whole node that os.cpu_count() counts; all threads on a 64-core node inside a 4-core job
    would oversubscribe it and time the contention instead of the model."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def git_hash() -> str:
    """HEAD's short hash, with '-dirty' when tracked files differ from it, results/ excepted: those
    are what the commands write (results/README.md regenerates them one command after another), so
    a report written after an earlier one of the same regeneration still names clean code."""
    try:
        out = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no",
                                "--", ".", ":(exclude)results"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def source_digest(roots: Iterable[Path]) -> str:
    """SHA-256 over the Python files under `roots` (folders, or single files), by relative name."""
    h = hashlib.sha256()
    for root in roots:
        files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
        for f in files:
            if "__pycache__" not in f.parts:
                h.update(f"{root.name}/{f.relative_to(root) if root.is_dir() else ''}".encode() + b"\0"
                         + f.read_bytes() + b"\0")
    return h.hexdigest()


def code_sha256() -> str:
    """One digest of the Python source a run computes with: this package's and each loaded method
    plugin's. The git hash names a commit, not uncommitted edits ("-dirty"), and a plugin's version
    stays the same while it is edited in place; resume=true must not reuse a cell either made."""
    import asr_compress
    from asr_compress.compress.plugins import plugin_sources

    return source_digest([Path(asr_compress.__file__).resolve().parent, *plugin_sources()])


def environment(device: str = "cpu") -> Dict[str, Any]:
    import espnet
    import torch

    import asr_compress

    env = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "asr_compress": asr_compress.__version__,
        "git_hash": git_hash(),
        # the source itself, uncommitted edits and method plugins included (code_sha256)
        "code_sha256": code_sha256(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "espnet": espnet.__version__,
        "platform": platform.platform(),
        # tells the nodes of a cluster sweep apart, and the runs that shared one (report: concurrent runs)
        "host": platform.node(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "num_threads": torch.get_num_threads(),
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["cuda"] = torch.version.cuda
    from asr_compress.compress.plugins import loaded

    plugins = loaded()
    if plugins:  # methods from other packages: a number is cited with the code that produced it
        env["method_plugins"] = plugins
    return env
