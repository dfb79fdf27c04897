"""The environment block every result carries: versions, git hash, CPU/GPU, threads, date."""
from __future__ import annotations

import datetime
import platform
import subprocess
from typing import Any, Dict

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


def environment(device: str = "cpu") -> Dict[str, Any]:
    import os

    import espnet
    import torch

    import asr_compress

    env = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "asr_compress": asr_compress.__version__,
        "git_hash": git_hash(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "espnet": espnet.__version__,
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "num_threads": torch.get_num_threads(),
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["cuda"] = torch.version.cuda
    return env
