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


def import_quietly(*modules: str):
    """Import the given modules with ESPnet's noise suppressed; return the last one."""
    # NLTK would otherwise try the network at import time; point it nowhere harmful.
    os.environ.setdefault("NLTK_DATA", os.path.join(os.path.expanduser("~"), ".cache", "nltk_data"))
    mod = None
    with silenced():
        for name in modules:
            mod = importlib.import_module(name)
    return mod
