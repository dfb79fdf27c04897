"""Keep ESPnet's import-time noise out of the user's console.

Importing espnet2 tries to download NLTK data (printing "[nltk_data] Error loading ..."
when offline), prints a Flash-Attention notice and emits dozens of deprecation
warnings. None of it concerns the user. We swallow it while importing, and only
show it if the import itself fails.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import sys
import tempfile
import warnings


@contextlib.contextmanager
def silenced():
    """Silence Python-level stdout/stderr, warnings and library logging inside the block."""
    out, err = io.StringIO(), io.StringIO()
    old_disable = logging.root.manager.disable
    with warnings.catch_warnings(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield out, err
        except BaseException:
            sys.__stderr__.write(out.getvalue() + err.getvalue())
            raise
        finally:
            logging.disable(old_disable)


@contextlib.contextmanager
def c_output_silenced():
    """Silence what C/C++ code writes to the process's stdout and stderr inside the block.

    `silenced()` swaps Python's sys.stdout/sys.stderr, which a C++ library writing to file
    descriptors 1 and 2 never sees: KenLM prints "Reading <file>" and a 100-star progress bar
    when it loads an ARPA file, and the same bar before it fails on a bad one. Its errors come
    back as Python exceptions with the reason in them, so the text written here is dropped.
    """
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is not None:
            stream.flush()
    saved = [os.dup(fd) for fd in (1, 2)]
    try:
        with tempfile.TemporaryFile() as sink:
            for fd in (1, 2):
                os.dup2(sink.fileno(), fd)
            try:
                yield
            finally:
                for fd, old in zip((1, 2), saved):
                    os.dup2(old, fd)
    finally:
        for old in saved:
            os.close(old)


def import_quietly(*modules: str):
    """Import the given modules with ESPnet's noise suppressed; return the last one."""
    # NLTK would otherwise try the network at import time; point it nowhere harmful.
    os.environ.setdefault("NLTK_DATA", os.path.join(os.path.expanduser("~"), ".cache", "nltk_data"))
    mod = None
    with silenced():
        for name in modules:
            mod = importlib.import_module(name)
    return mod


# What ESPnet writes while decoding that concerns its own code, not the run, once or twice per
# utterance: RNNDecoder pads with a Python list of lengths, and make_pad_mask logs a tracing hint
# about it at WARNING on the root logger.
ESPNET_DECODING_HINTS = ("Using make_pad_mask with a list of lengths is not tracable",)


class _DropEspnetHints(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(ESPNET_DECODING_HINTS)


def quiet_espnet_decoding() -> None:
    """Keep ESPnet's per-utterance decoding chatter off the console (idempotent).

    Besides the hints above: the non-batch CTC prefix scorer (models whose decoder has no
    batch_score, e.g. RNNDecoder) fills its state arrays with np.ndarray, i.e. uninitialised memory,
    and takes logaddexp over all frames, rows it never reads included; numpy then warns "invalid
    value encountered in logaddexp" on whatever those rows held. The scores it uses are unaffected
    (tests/test_parity.py decodes such a model token for token as ESPnet does).
    """
    warnings.filterwarnings("ignore", message="invalid value encountered in logaddexp", category=RuntimeWarning,
                            module=r"espnet\.nets\.ctc_prefix_score")
    root = logging.getLogger()
    if not any(isinstance(f, _DropEspnetHints) for f in root.filters):
        root.addFilter(_DropEspnetHints())
