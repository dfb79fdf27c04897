"""A cell's decode kept utterance by utterance, so that a killed cell resumes where it stopped.

`resume=true` reuses finished cells only, so a cluster job killed at its time limit (or a node that
went away) lost every utterance its cell had decoded: hours, for a large test set and a wide beam.
While a cell decodes, each utterance's hypothesis and timing is appended to
`utterances.partial.jsonl` in its run directory, under a first line that records

- what the cell computes, with which code and model files: the fields `resume` compares before it
  reuses a finished cell (resume.identity: settings and test set, code, model files);
- what it was timed on: CPU model, device, GPU and threads (not the host: a requeued cluster
  job lands on another node of the same kind).

The same cell run again with `resume=true` takes the utterances of a matching file as they are and
decodes the rest. Any difference starts afresh, another kind of machine included: latencies
measured on two kinds of machine are not one run's. The compressed components are rebuilt from
the same settings, code and model files (every method is deterministic given them; distillation
seeds its training), so the utterances before and after the break are decoded by the same model. A truncated last line (the
kill came mid-write) is dropped and that utterance decoded again. The finished run removes the file;
metrics.json says how many utterances it took from it (`resumed_utterances`).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

log = logging.getLogger(__name__)

FILE = "utterances.partial.jsonl"
# the kind of machine a latency was measured on: a file from another kind is not resumed. Not the
# host: a requeued cluster job lands on another node of the same kind, which times alike
MACHINE_KEYS = ("cpu", "device", "gpu", "num_threads")


def machine(environment: Dict[str, Any]) -> Dict[str, Any]:
    return {k: environment.get(k) for k in MACHINE_KEYS}


class PartialDecode:
    """The utterances this cell has decoded, as (repeat, utterance id) -> (hypothesis, time parts)."""

    def __init__(self, path: Path, header: Dict[str, Any], done: Dict[Tuple[int, str], Tuple[str, Dict[str, float]]]):
        self.path = path
        self.done = done
        self.resumed = len({uid for (r, uid) in done if r == 0})
        self._header = header
        self._file = None  # the file is written anew with the first decode: a cell that fails before leaves it as it was

    @classmethod
    def open(cls, out_dir: Path, header: Dict[str, Any], resume: bool) -> "PartialDecode":
        """Continue the file in `out_dir` when `resume` and its first line equals `header`, else start one."""
        path = Path(out_dir) / FILE
        done = _read(path, header) if resume and path.is_file() else None
        if done:
            log.info("resume=true: %d utterance decodes taken from %s (same settings, code, model files and "
                     "kind of machine)", len(done), path)
        return cls(path, header, done or {})

    def add(self, repeat: int, uid: str, text: str, parts: Dict[str, float]) -> None:
        if self._file is None:  # the record, then what was taken over (a torn last line is not carried on)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "w")
            self._file.write(json.dumps(self._header, sort_keys=True) + "\n")
            for (r, u), (t, p) in self.done.items():
                self._write(r, u, t, p)
        self._write(repeat, uid, text, parts)
        self._file.flush()  # in the kernel's hands: a killed process loses nothing it wrote

    def _write(self, repeat: int, uid: str, text: str, parts: Dict[str, float]) -> None:
        self._file.write(json.dumps({"repeat": repeat, "id": uid, "hyp": text, "parts": parts}) + "\n")

    def finish(self) -> None:
        """The run is written (metrics.json): the file has served."""
        self.close()
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _read(path: Path, header: Dict[str, Any]) -> Optional[Dict[Tuple[int, str], Tuple[str, Dict[str, float]]]]:
    """The decodes recorded under `header`; None when the file records another cell, code or machine."""
    lines = path.read_text().split("\n")
    try:
        recorded = json.loads(lines[0])
    except ValueError:
        recorded = None
    if recorded != json.loads(json.dumps(header, sort_keys=True)):
        log.info("resume=true: %s records other settings, code, model files or kind of machine; decoding afresh",
                 path)
        return None
    done = {}
    for line in lines[1:]:
        try:
            row = json.loads(line)
            done[(int(row["repeat"]), str(row["id"]))] = (row["hyp"], row["parts"])
        except (ValueError, KeyError, TypeError):  # the last line of a kill mid-write (or the empty tail)
            continue
    return done
