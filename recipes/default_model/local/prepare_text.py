"""Stage 1: build the sentence pools (LM text, synthesis text, test sentences), all normalised.

    python local/prepare_text.py --shared ../../../shared/data --out data/local/text

Test sentences come from WordNet 3.0 example sentences (Debian `wordnet-base`, WordNet 3.0
licence, permissive); they and the held-out LJ Speech sentences are removed from every
training text (exact match and containment), so LM and ASR never see them.
"""
import argparse
import csv
import random
import re
import zipfile
from pathlib import Path

from textnorm import normalize

WORDNET = Path("/usr/share/wordnet")


def lj_split(shared: Path):
    """Fixed split of the 385 LJ Speech recordings: last 100 ids -> eval, 25 before -> dev."""
    ids = sorted(r[0] for r in csv.reader(open(shared / "ljspeech_part1/metadata.csv"),
                                          delimiter="|", quoting=csv.QUOTE_NONE))
    return ids[:-125], ids[-125:-100], ids[-100:]


def synset_glosses():
    """Each synset's gloss (its definitions and quoted examples), in WordNet's file order."""
    for pos in ("noun", "verb", "adj", "adv"):
        for line in open(WORDNET / f"data.{pos}", encoding="latin-1"):
            if not line.startswith("  "):  # lines of two spaces: the licence header
                yield line.split(" | ", 1)[-1]


def wordnet_examples():
    return [e for gloss in synset_glosses() for e in re.findall(r'"([^"]{15,})"', gloss)]


def wordnet_glosses(held_out: set[str]):
    """WordNet's definitions (the gloss text outside the quoted examples), split at ';'.

    A wider vocabulary for the LM than the examples alone (1.2M words: technical and rare words
    the test sentences are full of). A synset whose examples include a held-out sentence (test
    or validation, given normalised) is skipped whole, so that no definition of a word the
    held-out sentences exemplify reaches the LM.
    """
    out = []
    for gloss in synset_glosses():
        if not any(normalize(e) in held_out for e in re.findall(r'"([^"]*)"', gloss)):
            out += re.sub(r'"[^"]*"', " ", gloss).split(";")
    return out


def nltk_sentences(zpath: Path):
    out = []
    with zipfile.ZipFile(zpath) as z:
        for name in sorted(z.namelist()):
            if not name.endswith(".txt") or "README" in name:
                continue
            text = z.read(name).decode("latin-1").replace("\n", " ")
            out += re.split(r"(?<=[.!?])\s+", text)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n_test", type=int, default=170)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    a.out.mkdir(parents=True, exist_ok=True)

    def clean(sents, lo, hi):
        seen, res = set(), []
        for s in sents:
            n = normalize(s)
            if lo <= len(n.split()) <= hi and n not in seen:
                seen.add(n)
                res.append(n)
        return res

    # test sentences: WordNet examples of 5-14 words, fixed seed
    wn = clean(wordnet_examples(), 4, 20)
    rng.shuffle(wn)
    test = [s for s in wn if 5 <= len(s.split()) <= 14][: a.n_test]
    test_set = set(test)
    wn_train = [s for s in wn if s not in test_set]

    # LJ Speech: held-out eval/dev recordings' sentences are excluded from all training text
    tr_ids, dev_ids, ev_ids = lj_split(a.shared)
    rows = list(csv.reader(open(a.shared / "ljspeech_part1/metadata_all_13100.csv"),
                           delimiter="|", quoting=csv.QUOTE_NONE))
    lj = {r[0]: normalize(r[2]) for r in rows}
    held = {lj[i] for i in dev_ids + ev_ids}
    lj_train = clean([lj[k] for k in sorted(lj) if k not in set(dev_ids + ev_ids)], 3, 40)
    nltk = clean(nltk_sentences(a.shared / "text/state_union.zip")
                 + nltk_sentences(a.shared / "text/inaugural.zip"), 4, 35)

    banned = test_set | held

    def ok(s):
        return s not in banned and not any(t in s for t in test_set)

    pools = {"lj": [s for s in lj_train if ok(s)], "nltk": [s for s in nltk if ok(s)],
             "wordnet": [s for s in wn_train if ok(s)]}
    digits = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"]
    pools["digits"] = [" ".join(rng.choice(digits) for _ in range(rng.randint(2, 8)))
                       for _ in range(3000)]
    for v in pools.values():
        rng.shuffle(v)
    # validation text (LM valid and synthetic ASR dev) is disjoint from training text
    valid = pools["lj"][:300] + pools["nltk"][:200] + pools["wordnet"][:300]
    for k, n in (("lj", 300), ("nltk", 200), ("wordnet", 300)):
        pools[k] = pools[k][n:]
    for k, v in pools.items():
        (a.out / f"pool_{k}.txt").write_text("\n".join(v) + "\n")
    (a.out / "valid.txt").write_text("\n".join(valid) + "\n")
    lm_train = [s for v in pools.values() for s in v]
    (a.out / "lm_train.txt").write_text("\n".join(lm_train) + "\n")
    (a.out / "test_sentences.txt").write_text("\n".join(test) + "\n")
    # run.sh --glosses true adds these to the LM text only (not to synthesis or BPE text); built
    # last and without the random stream, so every file above is the same with or without them
    glosses = [s for s in clean(wordnet_glosses(test_set | set(valid)), 3, 40) if ok(s)]
    (a.out / "lm_glosses.txt").write_text("\n".join(glosses) + "\n")
    print({k: len(v) for k, v in pools.items()}, "valid", len(valid), "test", len(test),
          "lm_train words", sum(len(s.split()) for s in lm_train),
          "glosses", len(glosses), "words", sum(len(s.split()) for s in glosses))


if __name__ == "__main__":
    main()
