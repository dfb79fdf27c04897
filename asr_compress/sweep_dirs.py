"""The sweep directories one launch's cells went to: one per model and test set swept.

The sweep directory is named by the model and test set (`multirun/<model>/<data>/<time>`, conf/config.yaml),
and Hydra resolves it again for every cell, with that cell's values. A sweep over test sets
(`-m data=a,b encoder=none,int8_dynamic`) or models therefore files each test set's cells in a
sweep directory of its own, which is what a study needs (attribution holds the model and the test
set fixed), but Hydra's callbacks are handed one directory only: the one named by the values
before the sweep. So the launch notes the others here:

- `failed_cells.CellsCallback`, when the launch starts, puts its own sweep directory in the environment
  (`ENV`), where every cell finds it: the same process under Hydra's basic launcher, and the
  jobs of a cluster launcher, which start with the launching process's environment
  (submitit_local; Slurm exports it unless told not to);
- a cell whose sweep directory is another one adds it to `<launch sweep dir>/sweep_dirs.txt`;
- when the launch ends, that callback records the failed cells of every directory listed there,
  and the report callback reports each (and its own directory, if a cell ran in it).

A cell's error.txt in such a directory counts as this launch's failure (an earlier launch into the
same directories, possible only with a fixed `hydra.sweep.dir` that names the model or data,
has its own older files counted too).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List

ENV = "ASR_COMPRESS_LAUNCH_SWEEP_DIR"
LISTING = "sweep_dirs.txt"


def start(launch_dir: Path) -> None:
    """The launch begins: its cells will find `launch_dir`; an earlier launch's listing goes."""
    os.environ[ENV] = str(Path(launch_dir).absolute())
    (Path(launch_dir) / LISTING).unlink(missing_ok=True)


def note(cell_sweep_dir: Path) -> None:
    """A cell of the launch, in `cell_sweep_dir`: listed when that is not the launch's own directory."""
    launch = os.environ.get(ENV)
    if not launch or Path(cell_sweep_dir).absolute() == Path(launch):
        return
    Path(launch).mkdir(parents=True, exist_ok=True)
    # one short line per append: whole on a local or NFS disk, also from concurrent jobs
    with open(Path(launch) / LISTING, "a") as f:
        f.write(f"{Path(cell_sweep_dir).absolute()}\n")


def launched(launch_dir: Path) -> List[Path]:
    """The launch's sweep directories that hold runs: its own first, then the others in the order noted."""
    from asr_compress.analysis.collect import find_run_dirs

    listing = Path(launch_dir) / LISTING
    others = listing.read_text().split("\n") if listing.is_file() else []
    found: List[Path] = []
    seen = set()
    for d in [Path(launch_dir), *(Path(line) for line in others if line.strip())]:
        if d.absolute() not in seen and d.is_dir() and find_run_dirs(d):
            found.append(d)
        seen.add(d.absolute())
    return found
