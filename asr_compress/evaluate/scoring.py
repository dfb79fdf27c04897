"""WER and CER through jiwer, with text normalisation matched to the model's tokens.

References and hypotheses are normalised the same way before scoring: case
folded to the case of the model's token list (most ESPnet English models use
upper case), punctuation removed unless the token list contains it, apostrophes
kept (they are part of words such as DON'T), whitespace collapsed.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Dict, Iterable, List

import jiwer


@dataclass
class TextNormalizer:
    # "upper", "lower" or "keep": the case the model's tokens are written in
    case: str = "upper"
    # keep punctuation only if the model can emit it
    keep_punctuation: bool = False

    @classmethod
    def for_tokens(cls, token_list: Iterable[str]) -> "TextNormalizer":
        letters = "".join(ch for tok in token_list if not (tok.startswith("<") and tok.endswith(">")) for ch in tok if ch.isalpha())
        has_upper = any(c.isupper() for c in letters)
        has_lower = any(c.islower() for c in letters)
        case = "upper" if has_upper and not has_lower else "lower" if has_lower and not has_upper else "keep"
        punct = set(".,?!;:\"")
        keep = any(ch in punct for tok in token_list if not tok.startswith("<") for ch in tok)
        return cls(case=case, keep_punctuation=keep)

    def __call__(self, text: str) -> str:
        text = unicodedata.normalize("NFKC", text)
        if self.case == "upper":
            text = text.upper()
        elif self.case == "lower":
            text = text.lower()
        if not self.keep_punctuation:
            text = text.replace("▁", " ")
            text = re.sub(r"[^\w\s']", " ", text)
            text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)  # quotes, not apostrophes
        return re.sub(r"\s+", " ", text).strip()


def utterance_errors(ref: str, hyp: str) -> Dict[str, int]:
    """Word and character error counts for one normalised pair."""
    out: Dict[str, int] = {}
    if ref:
        w = jiwer.process_words(ref, hyp)
        out.update(hits=w.hits, substitutions=w.substitutions, deletions=w.deletions, insertions=w.insertions)
        c = jiwer.process_characters(ref, hyp)
        out.update(char_errors=c.substitutions + c.deletions + c.insertions, n_ref_chars=len(ref))
    else:  # an empty reference: every hypothesis word is an insertion
        n = len(hyp.split())
        out.update(hits=0, substitutions=0, deletions=0, insertions=n, char_errors=len(hyp), n_ref_chars=0)
    out["n_ref_words"] = len(ref.split())
    return out


def corpus_scores(rows: List[Dict]) -> Dict[str, float]:
    """Corpus WER/CER = total errors / total reference words (chars), as ESPnet's sclite tables."""
    tot = {k: sum(r[k] for r in rows) for k in ("hits", "substitutions", "deletions", "insertions", "char_errors", "n_ref_words", "n_ref_chars")}
    errs = tot["substitutions"] + tot["deletions"] + tot["insertions"]
    return {
        "wer": errs / tot["n_ref_words"] if tot["n_ref_words"] else float("nan"),
        "cer": tot["char_errors"] / tot["n_ref_chars"] if tot["n_ref_chars"] else float("nan"),
        "n_utterances": len(rows),
        "n_words": tot["n_ref_words"],
        "n_chars": tot["n_ref_chars"],
        "hits": tot["hits"],
        "substitutions": tot["substitutions"],
        "deletions": tot["deletions"],
        "insertions": tot["insertions"],
        "sentence_errors": sum(1 for r in rows if r["substitutions"] + r["deletions"] + r["insertions"] > 0),
    }


def group_scores(rows: List[Dict]) -> Dict[str, Dict[str, float]]:
    """WER/CER per utterance group (e.g. seen/unseen voice), when the test set labels them."""
    groups = sorted({r["group"] for r in rows if r.get("group")})
    return {g: corpus_scores([r for r in rows if r.get("group") == g]) for g in groups}
