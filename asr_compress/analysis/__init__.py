"""Analysis of a sweep, read back from its run directories (pure numpy/pandas, no torch):

- `collect`: runs -> tidy tables, factors, baseline
- `attribution`: Moebius/Harsanyi terms, exact Shapley values, main effects, missing-cell handling
- `bootstrap`: paired bootstrap over utterances (CIs for runs, deltas, Shapley values)
- `utterances`: which utterances broke per cut, S/D/I shift, WER and Shapley values per voice group
- `studies`: expand a study preset into the override sets to run
"""

# what a bootstrap resample draws (bootstrap.paired_bootstrap's `by`); here, not in bootstrap.py, so
# that the report callback, which every asr-compress run instantiates, checks it without numpy/pandas
BOOTSTRAP_UNITS = ("utterance", "speaker")
