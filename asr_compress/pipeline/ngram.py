"""ESPnet's token n-gram scorer (KenLM), with the same scores and less Python per step.

ESPnet's recipes can decode with a KenLM n-gram over the model's token units
(`asr.sh --use_ngram true`; `Speech2Text(ngram_file=..., ngram_weight=...)`), scored by
`espnet.nets.scorers.ngram.NgramFullScorer`: log10 probabilities of every token after
the hypothesis, added with `ngram_weight` like any other scorer. That class writes
each of the vocabulary's scores into a tensor one element at a time; here they are
collected in a list and made a tensor once, and the vector of a KenLM state already
seen in this utterance (hypotheses that share their last tokens share it) is reused.
The numbers are ESPnet's: same KenLM calls, same states, same log10 scale, so an
`ngram_weight` tuned with ESPnet's decoder carries over unchanged. That includes one quirk:
ESPnet renames only a token `<eos>` to KenLM's `</s>`, so with ESPnet2's `<sos/eos>` token the
end of a sentence is scored as KenLM's `<unk>` (a constant: -4.4 in the recipe's stage 17 n-gram).
"""
from __future__ import annotations

from pathlib import Path
from typing import List

from asr_compress.errors import ModelLoadError


def load_ngram_scorer(path: Path, token_list: List[str]):
    """The scorer for `path` (KenLM binary or ARPA over `token_list`'s units)."""
    try:
        import kenlm  # ESPnet's scorer imports it too: say what is missing before it does
    except ImportError as e:
        raise ModelLoadError(
            f"{path}: model.ngram_file needs the kenlm module ({e}); install the project's ngram extra "
            "(uv pip install -e '.[ngram]', as setup.sh does), or leave model.ngram_file unset (null)"
        ) from e
    import torch
    from espnet.nets.scorers.ngram import NgramFullScorer

    class CachedNgramFullScorer(NgramFullScorer):
        def __init__(self, ngram_model, token_list):
            super().__init__(ngram_model, token_list)
            self._cache = {}

        def init_state(self, x):
            self._cache = {}  # per utterance: KenLM state after the last token -> scores
            return super().init_state(x)

        def score(self, y, state, x):
            out_state = kenlm.State()
            last = self.chardict[y[-1]] if y.shape[0] > 1 else "<s>"
            self.lm.BaseScore(state, last, out_state)
            cached = self._cache.get(out_state)
            if cached is None:
                base, tmp = self.lm.BaseScore, self.tmpkenlmstate
                cached = torch.tensor([base(out_state, tok, tmp) for tok in self.chardict], dtype=x.dtype)
                self._cache[out_state] = cached
            return cached.to(y.device), out_state

    from asr_compress.quiet import c_output_silenced

    try:
        with c_output_silenced():  # KenLM's own "Reading ..." and progress bar, written from C++
            scorer = CachedNgramFullScorer(str(path), token_list)
    except (OSError, RuntimeError, ValueError) as e:  # KenLM raises OSError for unreadable or bad files
        raise ModelLoadError(f"{path}: KenLM cannot read it as an n-gram model (model.ngram_file): {e}") from e
    # KenLM scores a unit it does not know as <unk> and says nothing: an n-gram over another
    # model's units (the default model's, when only model.exp_dir is overridden) would steer the
    # search with noise. Half is a loose bar: a model's own n-gram knows nearly all its units
    # (the shipped one 297 of 300: <blank>, <unk> and <sos/eos> are never in the text).
    units = [t for t in token_list if t not in ("<blank>", "<unk>", "<sos/eos>")]
    known = sum(t in scorer.lm for t in units)
    if known < len(units) / 2:
        raise ModelLoadError(
            f"{path}: only {known} of the ASR's {len(units)} units are in this n-gram's vocabulary "
            "(model.ngram_file): it was built over other units; build one over this model's units "
            "(ESPnet's asr.sh --use_ngram true) or set model.ngram_file=null")
    return scorer
