"""Helpers shared by tests (import as `from support import ...`)."""
import subprocess
import sys
from pathlib import Path


def compose(overrides=()):
    """Compose the real config from conf/ with Hydra's compose API."""
    from hydra import compose as hcompose
    from hydra import initialize_config_dir

    from asr_compress.config import PROJECT_ROOT, register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return hcompose(config_name="config", overrides=list(overrides))


def tiny_overrides(tiny, *extra):
    # model.ngram_file=null: the default model's n-gram is over other units than the tiny model's
    return [f"model.exp_dir={tiny['asr']}", f"model.lm_exp_dir={tiny['lm']}", "model.ngram_file=null",
            "model.name=tiny", "decode=generic", f"data.dir={tiny['data']}", "data.name=tiny",
            "eval.progress=false", "eval.num_threads=1", *extra]


def run_cli(args, cwd, env=None):
    """`python -m asr_compress ARGS` as a user runs it: one thread, a bare PATH (plus `env`), output captured."""
    return subprocess.run([sys.executable, "-m", "asr_compress", *args], cwd=cwd, capture_output=True, text=True,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", **(env or {})})


def calibration_dir(tiny, dest: Path, n: int = 2) -> Path:
    """A data dir of other audio than the tiny test set (copies of its first n files, other ids),
    with wav.scp alone: calibration needs no transcripts."""
    import shutil

    dest.mkdir(parents=True)
    lines = []
    for line in (tiny["data"] / "wav.scp").read_text().splitlines()[:n]:
        uid, path = line.split(maxsplit=1)
        shutil.copy(path if path.startswith("/") else tiny["data"] / path, dest / f"c_{uid}.flac")
        lines.append(f"c_{uid} c_{uid}.flac\n")
    (dest / "wav.scp").write_text("".join(lines))
    return dest
