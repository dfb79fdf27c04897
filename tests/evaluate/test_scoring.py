import pytest

from asr_compress.evaluate.scoring import TextNormalizer, corpus_scores, utterance_errors


def test_normaliser_follows_the_token_list_case_and_keeps_apostrophes():
    upper = TextNormalizer.for_tokens(["<blank>", "<unk>", "▁THE", "DON'T", "A", "<sos/eos>"])
    assert upper.case == "upper" and not upper.keep_punctuation
    assert upper('"Don\'t  stop," she said.') == "DON'T STOP SHE SAID"
    lower = TextNormalizer.for_tokens(["<blank>", "▁the", "s", "<sos/eos>"])
    assert lower("Hello, World!") == "hello world"
    punct = TextNormalizer.for_tokens(["<blank>", "a", "B", ",", "."])
    assert punct.case == "keep" and punct.keep_punctuation and punct("Hi, there.") == "Hi, there."


def test_word_errors_and_corpus_wer():
    a = utterance_errors("THE CAT SAT ON THE MAT", "THE CAT SAT ON MAT MAT TOO")
    assert (a["substitutions"], a["deletions"], a["insertions"], a["n_ref_words"]) == (1, 0, 1, 6)
    b = utterance_errors("HELLO WORLD", "HELLO WORLD")
    c = utterance_errors("", "NOISE")
    assert c["insertions"] == 1 and c["n_ref_words"] == 0
    s = corpus_scores([a, b, c])
    assert s["n_words"] == 8 and s["wer"] == pytest.approx(3 / 8) and s["sentence_errors"] == 2
    assert s["cer"] == pytest.approx((a["char_errors"] + c["char_errors"]) / (a["n_ref_chars"] + b["n_ref_chars"]))
