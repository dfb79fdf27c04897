"""asr_compress: per-component compression studies of ESPnet speech recognisers.

Kept lean on purpose: importing the package must not import torch or ESPnet
(a test checks it), so `asr-compress --help` and config composition stay fast.
"""

__version__ = "0.1.0"

COMPONENTS = ("frontend", "encoder", "ctc", "decoder", "lm")
