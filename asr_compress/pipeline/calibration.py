"""Calibration data: what each component sees and produces in the uncompressed pipeline.

Methods that learn from data (`distill`) need inputs to run a component on and the original
model's behaviour to match. They get both from `capture`, which decodes a few utterances of a data
directory that is not the test set with the pipeline as loaded, before anything is compressed:

    calib = capture(pipeline, audio, decode)
    pipeline.compress_("encoder", make_config("distill", steps=[...]), calibration=calib)

Per utterance it keeps the encoder's input (features after the frontend and normalisation), the
encoder's output (what CTC and the decoder read), and the token ids of the best hypothesis (what
the decoder and LM are run on with teacher forcing: sequence-level distillation, Kim & Rush 2016,
so no transcripts are needed and a user's unlabelled audio serves).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Sequence

import numpy as np
import torch


@dataclass
class Calibration:
    # encoder inputs, one (1, frames, dim) tensor per utterance, and their lengths (1,)
    feats: List[torch.Tensor] = field(default_factory=list)
    feats_lengths: List[torch.Tensor] = field(default_factory=list)
    # encoder outputs of the uncompressed model, (1, frames', d_model) each: CTC's and the decoder's input
    encoded: List[torch.Tensor] = field(default_factory=list)
    # best-hypothesis token ids (no sos/eos/blank) of the uncompressed model, per utterance
    tokens: List[List[int]] = field(default_factory=list)
    # ESPnet's sos/eos id (the last token): the first input of the decoder and the LM
    sos_eos: int = -1
    # where the audio came from, for the run's record
    source: str = ""

    def __len__(self) -> int:
        return len(self.feats)

    @property
    def device(self) -> torch.device:
        """Where the captured tensors are, i.e. where the pipeline ran."""
        return self.encoded[0].device if self.encoded else torch.device("cpu")

    def token_inputs(self, i: int, device) -> torch.Tensor:
        """(1, 1 + len) decoder/LM input for utterance i: sos followed by its hypothesis."""
        return torch.tensor([[self.sos_eos, *self.tokens[i]]], dtype=torch.long, device=device)


@torch.no_grad()
def capture(pipeline, audio: Sequence[np.ndarray], decode, source: str = "") -> Calibration:
    """Decode `audio` with `pipeline` as it is now and record what each component sees."""
    calib = Calibration(sos_eos=len(pipeline.token_list) - 1, source=source)
    seen = {}

    def keep_input(module, args, kwargs):
        xs = args[0] if args else kwargs["xs_pad"]
        lengths = args[1] if len(args) > 1 else kwargs["ilens"]
        seen["feats"], seen["lengths"] = xs.detach().clone(), lengths.detach().clone()

    handle = pipeline.encoder.register_forward_pre_hook(keep_input, with_kwargs=True)
    try:
        search = pipeline.search(decode)
        for speech in audio:
            enc = pipeline.encode(speech)
            hyps = search(x=enc, maxlenratio=decode.maxlenratio, minlenratio=decode.minlenratio)
            calib.feats.append(seen["feats"])
            calib.feats_lengths.append(seen["lengths"])
            calib.encoded.append(enc.unsqueeze(0).detach().clone())
            calib.tokens.append(pipeline.best_text(hyps)[2])
    finally:
        handle.remove()
    return calib
