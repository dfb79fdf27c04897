"""An ESPnet ASR pipeline taken apart into typed component handles.

ESPnet's beam search keeps references to the decoder, the CTC module and the LM
inside its scorers. Swapping `asr_model.decoder` after building a search would be
silently ignored by that search, so the Pipeline owns the search: it is rebuilt
from the current components whenever a component is replaced or changed through
the Pipeline (each change bumps `version`), and whenever decoding parameters
change.
"""
from __future__ import annotations

from dataclasses import astuple
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np
import torch

from asr_compress import COMPONENTS
from asr_compress.config import DecodeConfig
from asr_compress.errors import AsrCompressError


class Pipeline:
    def __init__(self, asr_model, asr_args, lm_model=None, files=None, device: str = "cpu", ngram=None):
        self.asr_model = asr_model
        self.asr_args = asr_args
        self.lm_model = lm_model
        # ESPnet's token n-gram scorer (pipeline/ngram.py) or None; no weights to compress, so it is
        # not a component: it joins the search with decode.ngram_weight, its time counts as LM time
        self.ngram = ngram
        self.files = files
        self.device = device
        self.version = 0
        self._search = None
        self._search_key = None
        self.token_list: List[str] = list(asr_model.token_list)
        self._build_text_converters()
        from asr_compress.pipeline.transducer import is_transducer, join

        # a transducer (RNN-T) model: decoded by ESPnet's BeamSearchTransducer, its decoder component
        # holding the joint network (pipeline/transducer.py)
        self.transducer = is_transducer(asr_args)
        if self.transducer:
            join(asr_model)

    # ---- component handles -------------------------------------------------
    @property
    def frontend(self):
        return self.asr_model.frontend

    @property
    def encoder(self):
        return self.asr_model.encoder

    @property
    def ctc(self):
        # a transducer's auxiliary CTC head is never read by its search: not a component to cut
        return None if self.transducer else self.asr_model.ctc

    @property
    def decoder(self):
        return self.asr_model.decoder

    @property
    def lm(self):
        return None if self.lm_model is None else self.lm_model.lm

    def components(self) -> Dict[str, torch.nn.Module]:
        """The components this model has, in pipeline order (absent ones left out)."""
        return {name: getattr(self, name) for name in COMPONENTS if getattr(self, name) is not None}

    def component(self, name: str) -> torch.nn.Module:
        if name not in COMPONENTS:
            raise AsrCompressError(f"unknown component '{name}'; valid: {', '.join(COMPONENTS)}")
        module = getattr(self, name)
        if module is None and name == "ctc" and self.transducer:
            raise AsrCompressError(f"component 'ctc' is not used by this transducer model's search "
                                   f"({self._describe_source()}): ESPnet's BeamSearchTransducer reads the encoder, "
                                   f"the decoder (prediction and joint networks) and the LM; valid: "
                                   f"{', '.join(self.components())}")
        if module is None:
            raise AsrCompressError(f"component '{name}' is not present in this model ({self._describe_source()})")
        return module

    def set_component(self, name: str, module: torch.nn.Module) -> None:
        """Replace a component; the next search is rebuilt around the new module."""
        self.component(name)  # validates the name and presence
        if name == "lm":
            self.lm_model.lm = module
        else:
            setattr(self.asr_model, name, module)
        if name == "decoder" and self.transducer:
            from asr_compress.pipeline.transducer import join

            join(self.asr_model)  # the model reads the new decoder's joint network
        self.changed()

    def changed(self) -> None:
        """Call after modifying a component in place: drops the cached search."""
        self.version += 1
        self._search = None

    def compress_(self, name: str, config, calibration=None) -> "object":
        """Apply a compression config to one component in place; returns the method's report.
        `calibration` (pipeline/calibration.py, captured before anything was compressed) is what
        methods that learn from data (distill) train on."""
        from asr_compress.compress import compress_

        report = compress_(self.component(name), config, component=name, calibration=calibration)
        self.changed()
        return report

    def copy(self, cut: Optional[Iterable[str]] = None) -> "Pipeline":
        """A copy to compress differently; side-by-side timing keeps every variant in one process.

        `cut`: the components the copy will compress. Only those are deep-copied; the others stay
        shared with this pipeline (same modules, same weights), so a grid of 16 cells holds one model
        plus the cut components, not 16 models. Compression methods change only the component they
        are given (`compress_`), and timing patches a module only for the length of one decode, so
        sharing is safe as long as the shared components are not compressed through either pipeline.
        None (the default) deep-copies every component. Files and the n-gram, which no method
        changes, are always shared."""
        import copy

        cut = list(COMPONENTS) if cut is None else list(cut)
        for name in cut:
            self.component(name)  # validates the name and presence
        # deepcopy returns an object found in its memo as it is: seeding the memo with the kept
        # components makes both models' copies point at them, whatever attribute holds them
        # (their submodules too: a transducer's joint network is in its decoder and in the model)
        memo = {id(s): s for name, m in self.components().items() if name not in cut for s in m.modules()}
        for name in cut:
            _detach_weight_norm(self.component(name))
        from asr_compress.pipeline.s3prl_compat import rehook

        new = Pipeline(copy.deepcopy(self.asr_model, memo), self.asr_args, copy.deepcopy(self.lm_model, memo),
                       files=self.files, device=self.device, ngram=self.ngram)
        for name in cut:  # an S3PRL frontend's copied hooks would fill the original's hidden states
            rehook(new.component(name))
        return new

    def _describe_source(self) -> str:
        return "no files" if self.files is None else str(self.files.asr_config)

    # ---- beam search ---------------------------------------------------------
    def search(self, decode: DecodeConfig):
        """The beam search over the current components (cached until something changes)."""
        key = (self.version, astuple(decode))
        if self._search is None or self._search_key != key:
            self._search = self.build_search(decode)
            self._search_key = key
        return self._search

    def build_search(self, decode: DecodeConfig):
        """Build ESPnet's beam search exactly as espnet2.bin.asr_inference.Speech2Text does."""
        model = self.asr_model
        if self.transducer:
            from asr_compress.pipeline.transducer import TransducerSearch, task_of

            return TransducerSearch(model.decoder, self.lm, decode.beam_size, decode.lm_weight, self.token_list,
                                    decode.transducer_search, task_of(vars(self.asr_args)))
        from asr_compress.quiet import import_quietly

        bs = import_quietly("espnet.nets.beam_search")
        bbs = import_quietly("espnet.nets.batch_beam_search")
        from espnet.nets.scorer_interface import BatchScorerInterface
        from espnet.nets.scorers.ctc import CTCPrefixScorer
        from espnet.nets.scorers.length_bonus import LengthBonus

        vocab = len(self.token_list)
        scorers = {
            "decoder": model.decoder,
            "ctc": CTCPrefixScorer(ctc=model.ctc, eos=model.eos),
            "length_bonus": LengthBonus(vocab),
        }
        if self.lm_model is not None:
            scorers["lm"] = self.lm_model.lm
        weights = {
            "decoder": 1.0 - decode.ctc_weight,
            "ctc": decode.ctc_weight,
            "lm": decode.lm_weight,
            "length_bonus": decode.penalty,
        }
        if self.ngram is not None and decode.ngram_weight != 0:
            scorers["ngram"] = self.ngram
            weights["ngram"] = decode.ngram_weight
        kwargs = dict(
            beam_size=decode.beam_size,
            weights=weights,
            scorers=scorers,
            sos=model.sos,
            eos=model.eos,
            vocab_size=vocab,
            token_list=self.token_list,
            pre_beam_score_key=None if decode.ctc_weight == 1.0 else "full",
        )
        # ESPnet picks the vectorised search when every full scorer supports batching.
        search = bs.BeamSearch(**kwargs)
        if decode.batch_search and all(isinstance(v, BatchScorerInterface) for v in search.full_scorers.values()):
            search = bbs.BatchBeamSearch(**kwargs)
        # No .to(dtype) here (ESPnet casts to float32): it would undo fp16/bf16 compression.
        return search.to(device=self.device).eval()

    # ---- recognition -----------------------------------------------------------
    def _build_text_converters(self) -> None:
        from asr_compress.quiet import import_quietly

        tok = import_quietly("espnet2.text.build_tokenizer")
        from espnet2.text.token_id_converter import TokenIDConverter

        self.token_type = getattr(self.asr_args, "token_type", None)
        bpemodel = getattr(self.asr_args, "bpemodel", None)
        self.converter = TokenIDConverter(token_list=self.token_list)
        if self.token_type is None or (self.token_type == "bpe" and bpemodel is None):
            self.tokenizer = None
        else:
            self.tokenizer = tok.build_tokenizer(token_type=self.token_type, bpemodel=bpemodel)

    @torch.no_grad()
    def encode(self, speech: np.ndarray) -> torch.Tensor:
        """Frontend + normalisation + encoder for one utterance; returns (frames, dim)."""
        x = torch.as_tensor(speech).unsqueeze(0).to(torch.float32).to(self.device)
        lengths = x.new_full([1], dtype=torch.long, fill_value=x.size(1))
        enc, _ = self.asr_model.encode(speech=x, speech_lengths=lengths)
        if isinstance(enc, tuple):  # intermediate CTC outputs
            enc = enc[0]
        return enc[0]

    @torch.no_grad()
    def recognize(self, speech: np.ndarray, decode: DecodeConfig) -> Tuple[str, List[str], List[int]]:
        """Decode one utterance like Speech2Text.__call__: returns (text, tokens, token ids)."""
        enc = self.encode(speech)
        hyps = self.search(decode)(x=enc, maxlenratio=decode.maxlenratio, minlenratio=decode.minlenratio)
        return self.best_text(hyps)

    def best_text(self, hyps) -> Tuple[str, List[str], List[int]]:
        """Text of the best hypothesis, post-processed exactly as Speech2Text does."""
        if not hyps:
            return "", [], []
        # ESPnet drops sos/eos and blank (0); a transducer's hypothesis is a list after one blank, no eos
        yseq = hyps[0].yseq[1:] if self.transducer else hyps[0].yseq[1:-1].tolist()
        ids = [i for i in yseq if i != 0]
        tokens = self.converter.ids2tokens(ids)
        text = self.tokenizer.tokens2text(tokens) if self.tokenizer is not None else "".join(tokens)
        return text, tokens, ids

    @property
    def sample_rate(self) -> int:
        fs = (getattr(self.asr_args, "frontend_conf", None) or {}).get("fs", 16000)
        if isinstance(fs, str):  # ESPnet accepts "16k"
            fs = int(float(fs.lower().rstrip("k")) * 1000) if fs.lower().endswith("k") else int(fs)
        return int(fs)


def _detach_weight_norm(module: torch.nn.Module) -> None:
    """Let `copy.deepcopy` take a module with the older `torch.nn.utils.weight_norm` (the positional
    convolution of fairseq-style wav2vec2/HuBERT SSL frontends): its `weight` is a tensor computed
    from weight_g and weight_v with gradients on at load time, which deepcopy refuses ("Only Tensors
    created explicitly by the user ..."). The hook recomputes it before every forward, so a detached
    copy of the current value changes nothing."""
    from asr_compress.compress.targeting import weight_norm_hooks

    for m in module.modules():
        for hook in weight_norm_hooks(m):
            with torch.no_grad():
                setattr(m, hook.name, hook.compute_weight(m).detach())
