"""Exceptions raised by asr_compress, so callers can catch ours and not every ValueError."""


class AsrCompressError(Exception):
    """Base class for every error asr_compress raises on purpose."""


class CompressionConfigError(AsrCompressError, ValueError):
    """A compression config that cannot be applied.

    The message is one line naming the component (when known), the parameter and the
    valid range or choices, e.g.
    "ctc: layer_drop does not apply (ctc has no layer stack); valid components: encoder, decoder, lm".
    Subclasses ValueError so generic callers that catch bad values still catch it.
    """
