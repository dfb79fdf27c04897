"""Transducer (RNN-T) models, of either of ESPnet's tasks: `espnet2.bin.asr_train` (`decoder:
transducer`, a `joint_net_conf`) and `espnet2.bin.asr_transducer_train` (a `joint_network_conf`).

ESPnet decodes them with a `BeamSearchTransducer` (each task has its own) instead of the attention
beam search: the encoder's frames go through the prediction network (`asr_model.decoder`) and the
joint network (`asr_model.joint_network`), optionally with the LM (`lm_weight`). An auxiliary CTC
head the model was trained with is never read, nor are ESPnet's CTC weight, length bonus or n-gram.

Here the decoder component of such a model is the prediction network with the joint network inside
it (`decoder.joint_network`, the same module as `asr_model.joint_network`): the joint network's
output layer is the one that scores the vocabulary, as the attention decoder's is, so compressing
"the decoder" cuts both and its size, time and FLOPs count both. The CTC component is absent: the
search never calls it, so a cut of it could change nothing.

asr_train's task builds the model with the training loss, `warprnnt_pytorch.RNNTLoss`, which is not
on PyPI (ESPnet's tools/installers build it). Decoding never calls it, so where it is not installed
`stand_in_rnnt_loss` registers a module whose loss raises if it is ever called (the transducer task
imports it only when training).
"""
from __future__ import annotations

import importlib.util
import sys
import types

from asr_compress.errors import AsrCompressError

# a key only the config.yaml of ESPnet's other transducer task, espnet2.bin.asr_transducer_train, has
# (its joint network's settings; asr_train's transducers name them joint_net_conf)
TRANSDUCER_TASK_KEY = "joint_network_conf"


def task_of(args: dict) -> str:
    """Which of ESPnet's tasks builds the ASR model a config.yaml describes: asr or asr_transducer."""
    return "asr_transducer" if TRANSDUCER_TASK_KEY in args else "asr"


def is_transducer(asr_args) -> bool:
    """Whether the config describes a transducer: of espnet2's ASR task, or of its transducer task."""
    return getattr(asr_args, "decoder", None) == "transducer" or task_of(vars(asr_args)) == "asr_transducer"


# per task: the module of the BeamSearchTransducer its Speech2Text builds, and that search's types
SEARCH = {"asr": ("espnet2.asr.transducer.beam_search_transducer", ("default", "tsd", "alsd", "nsc", "maes")),
          "asr_transducer": ("espnet2.asr_transducer.beam_search_transducer", ("default", "tsd", "alsd", "maes"))}
# the search_type values of either task (asr's "mbg" is for multi-blank models only)
SEARCHES = SEARCH["asr"][1]


def stand_in_rnnt_loss() -> None:
    """Let ESPnet build a transducer model without warp-transducer: decoding never calls its loss."""
    if "warprnnt_pytorch" in sys.modules or importlib.util.find_spec("warprnnt_pytorch") is not None:
        return
    import torch

    class RNNTLoss(torch.nn.Module):
        """Stand-in for warp-transducer's loss, which ESPnet builds with every transducer model."""

        def __init__(self, *args, **kwargs):
            super().__init__()

        def forward(self, *args, **kwargs):
            raise RuntimeError("asr_compress stands in for warprnnt_pytorch (not installed) to decode a "
                               "transducer model; training it needs ESPnet's warp-transducer "
                               "(tools/installers/install_warp-transducer.sh)")

    module = types.ModuleType("warprnnt_pytorch")
    module.RNNTLoss = RNNTLoss
    module.__asr_compress_stand_in__ = True
    sys.modules["warprnnt_pytorch"] = module


def join(asr_model) -> None:
    """Put the joint network inside the prediction network, so that the decoder component holds
    both, and keep `asr_model.joint_network` (where ESPnet's code reads it) the same module. Once
    joined, the decoder's is the one: a copy that kept the decoder and copied the rest points the
    model at the decoder's."""
    if "joint_network" in asr_model.decoder._modules:
        asr_model.joint_network = asr_model.decoder.joint_network
    else:
        asr_model.decoder.joint_network = asr_model.joint_network


def check_search(search: str) -> None:
    """Refuse a search type BeamSearchTransducer does not have, naming the parameter."""
    if search not in SEARCHES:
        raise AsrCompressError(f"decode.transducer_search={search}: not a search of ESPnet's "
                               f"BeamSearchTransducer; valid: {', '.join(SEARCHES)} (greedy: decode.beam_size=1, "
                               "with which asr_train's transducers run ESPnet's greedy search)")


def decode_note(search: str) -> str:
    """What a run prints for such a model: the decoding parameters it reads and those it does not."""
    return (f"the model is a transducer, decoded by ESPnet's BeamSearchTransducer (search_type {search}): "
            "decode.beam_size, lm_weight and transducer_search apply; decode.ctc_weight, penalty, maxlenratio, "
            "minlenratio and batch_search do not")


class TransducerSearch:
    """ESPnet's BeamSearchTransducer behind the interface of the attention search that decoding,
    timing and calibration use: called with `x=` the encoder output, and naming the scorers it
    calls (`full_scorers`, timed by their scoring methods) and the modules it calls directly
    (`timed_forwards`, timed by their forward)."""

    def __init__(self, decoder, lm, beam_size: int, lm_weight: float, token_list, search: str = "default",
                 task: str = "asr"):
        from asr_compress.quiet import import_quietly

        module, searches = SEARCH[task]
        bst = import_quietly(module).BeamSearchTransducer
        check_search(search)
        if search not in searches:
            raise AsrCompressError(f"decode.transducer_search={search}: not a search of {module}, which a model of "
                                   f"espnet2's {task} task is decoded with; valid: {', '.join(searches)}")
        with_lm = lm is not None and lm_weight != 0
        if with_lm and task == "asr_transducer" and not hasattr(lm, "rnn_type"):
            raise AsrCompressError(f"decode.lm_weight={lm_weight}: {module} scores with an RNN LM only, and this "
                                   f"one is a {type(lm).__name__}; valid: decode.lm_weight=0, model.lm_exp_dir=null, "
                                   "or an RNN LM (lm: seq_rnn)")
        if with_lm and search != "default" and type(lm).__name__ == "TransformerLM":
            raise AsrCompressError(f"decode.transducer_search={search}: ESPnet's {search} search cannot score "
                                   "with a Transformer LM (it raises NotImplementedError); valid: "
                                   "decode.transducer_search=default, or decode.lm_weight=0")
        # the LM joins with a nonzero weight only, as the attention search drops a scorer weighted 0
        # (Speech2Text hands BeamSearchTransducer any LM it loaded: at weight 0 it adds time, no score)
        joint = decoder.joint_network
        self.inner = bst(decoder=decoder, joint_network=_Rows(joint) if _quantized(joint) else joint,
                         beam_size=beam_size, lm=lm if with_lm else None, lm_weight=lm_weight, search_type=search,
                         **({"token_list": token_list} if task == "asr" else {}))
        self.full_scorers = {"decoder": decoder, **({"lm": lm} if self.inner.use_lm else {})}
        self.part_scorers = {}
        self.timed_forwards = (("decoder", joint),)

    def __call__(self, x, maxlenratio: float = 0.0, minlenratio: float = 0.0):
        """The n-best hypotheses; a transducer emits at most a few tokens a frame, so ESPnet's
        length ratios do not apply to it."""
        return self.inner(x)


def _quantized(module) -> bool:
    """Whether a module holds torch's quantized kernels (int8_dynamic's), which need batched input."""
    return any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in module.modules())


class _Rows:
    """The joint network called with one batch row: ESPnet's default and greedy searches pass it
    single vectors, which torch's int8 kernel (`quantized::linear_dynamic`) refuses. Only used
    when the joint network holds such kernels, so an uncompressed one runs ESPnet's exact calls."""

    def __init__(self, joint):
        self.joint = joint

    def __call__(self, enc_out, dec_out):
        if enc_out.dim() == 1 and dec_out.dim() == 1:
            return self.joint(enc_out.unsqueeze(0), dec_out.unsqueeze(0)).squeeze(0)
        return self.joint(enc_out, dec_out)
