"""Text normalisation shared by every transcript of the recipe (training, LM and test sets).

    from textnorm import normalize; normalize("In 1863, Mr. Lincoln's ...")
    -> "IN EIGHTEEN SIXTY THREE MISTER LINCOLN'S ..."

Rules: uppercase; digits spelled out as words (years read as pairs); letters A-Z and the
apostrophe kept; every other character becomes a space; spaces collapsed.
asr_compress scoring normalises references and hypotheses the same way (uppercase, strip
punctuation except apostrophes, collapse spaces), so transcripts written with this function
score identically whether or not the scorer re-normalises them.
"""
import re

_ONES = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE",
         "TEN", "ELEVEN", "TWELVE", "THIRTEEN", "FOURTEEN", "FIFTEEN", "SIXTEEN",
         "SEVENTEEN", "EIGHTEEN", "NINETEEN"]
_TENS = ["", "", "TWENTY", "THIRTY", "FORTY", "FIFTY", "SIXTY", "SEVENTY", "EIGHTY", "NINETY"]
_ABBREV = {"MR.": "MISTER", "MRS.": "MISSUS", "DR.": "DOCTOR", "ST.": "SAINT", "NO.": "NUMBER",
           "&": " AND ", "%": " PERCENT "}


def _below_1000(n: int) -> str:
    words = []
    if n >= 100:
        words += [_ONES[n // 100], "HUNDRED"]
        n %= 100
    if n >= 20:
        words.append(_TENS[n // 10])
        n %= 10
        if n:
            words.append(_ONES[n])
    elif n or not words:
        words.append(_ONES[n])
    return " ".join(words)


def number_to_words(digits: str) -> str:
    """Spell a digit string: years 1100-1999 as pairs, numbers < 10^9 as a quantity,
    anything longer digit by digit."""
    if len(digits) > 1 and digits.startswith("0") or len(digits) > 9:
        return " ".join(_ONES[int(d)] for d in digits)
    n = int(digits)
    if 1100 <= n <= 1999 and n % 100 != 0:
        hi, lo = divmod(n, 100)
        return _below_1000(hi) + " " + ("OH " + _ONES[lo] if lo < 10 else _below_1000(lo))
    parts = []
    for value, name in ((10**6, "MILLION"), (1000, "THOUSAND")):
        if n >= value:
            parts.append(_below_1000(n // value) + " " + name)
            n %= value
    if n or not parts:
        parts.append(_below_1000(n))
    return " ".join(parts)


def normalize(text: str) -> str:
    text = text.upper()
    for k, v in _ABBREV.items():
        text = text.replace(k, v)
    text = re.sub(r"(\d),(\d{3})", r"\1\2", text)  # 1,000 -> 1000
    text = re.sub(r"\d+", lambda m: " " + number_to_words(m.group()) + " ", text)
    text = text.replace("\u2019", "'")
    text = re.sub(r"[^A-Z']+", " ", text)
    text = re.sub(r"(^|\s)'+|'+(\s|$)", " ", text)  # quotes, not apostrophes inside words
    return re.sub(r"\s+", " ", text).strip()


if __name__ == "__main__":
    import sys
    for line in sys.stdin:
        print(normalize(line))
