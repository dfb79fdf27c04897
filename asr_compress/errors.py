"""Exceptions that the CLI turns into one clear error line (no traceback)."""


class AsrCompressError(Exception):
    """Base class: a user-facing problem with an input, a file or a parameter."""


class CompressionConfigError(AsrCompressError, ValueError):
    """A compression method got a parameter it cannot use, or a component it does not apply to."""


class ModelLoadError(AsrCompressError):
    """A model could not be found, downloaded or loaded."""


class DataError(AsrCompressError):
    """A test set, transcript or audio file is missing or unreadable."""


class InterleavedMismatch(AsrCompressError, ValueError):
    """A bench.json given to the report is not a factorial over the sweep's components, method, model, data."""
