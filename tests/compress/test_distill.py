"""distill: a compressed component trained back towards its own uncompressed outputs."""
import copy

import pytest
import torch

from asr_compress.compress import applicable_methods, component_stats, compress_, make_config, needs_calibration
from asr_compress.compress.distill import _mean_loss, _targets
from asr_compress.errors import CompressionConfigError
from compress_parts import VOCAB, build, calibration, run

STEPS = {"encoder": [{"name": "layer_drop", "keep_every": 0, "drop": [0]}],
         "ctc": [{"name": "lowrank", "rank": 8}],
         "decoder": [{"name": "layer_drop", "keep_every": 0, "drop": [0]}],
         "lm": [{"name": "prune_structured", "heads_fraction": 0.5, "channels_fraction": 0.5}]}


@pytest.mark.parametrize("component", list(STEPS))
def test_distilled_student_is_closer_to_the_teacher_than_the_cut_alone(component):
    calib = calibration()
    teacher = build(component)
    cut_only = build(component)
    compress_(cut_only, make_config("sequence", steps=STEPS[component]), component)
    student = build(component)
    report = compress_(student, make_config("distill", steps=STEPS[component], updates=60, lr=3e-3), component,
                       calibration=calib)
    targets = _targets(component, teacher, calib)
    before, after = _mean_loss(component, cut_only, targets, calib), _mean_loss(component, student, targets, calib)
    assert after < 0.6 * before, (before, after)
    assert report.kernel == "real" and f"{before:.4f} -> {after:.4f}" in report.notes[-1]
    assert run(component, student).isfinite().all()  # the path beam search uses still runs


def test_pruned_weights_stay_pruned():
    m = build("decoder")
    report = compress_(m, make_config("distill", steps=[{"name": "prune_unstructured", "sparsity": 0.5}], updates=20,
                                      lr=1e-2), "decoder", calibration=calibration())
    stats = component_stats(m, report)
    assert stats["sparsity"] >= 0.45


def test_same_config_and_data_give_the_same_weights():
    a, b = build("lm"), build("lm")
    for m in (a, b):
        compress_(m, make_config("layer_drop_distill", updates=10), "lm", calibration=calibration())
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    c = build("lm")
    compress_(c, make_config("layer_drop_distill", updates=10, seed=1), "lm", calibration=calibration())
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values()))


def test_quantize_after_distilling_in_a_sequence():
    m = build("decoder")
    report = compress_(m, make_config("sequence", steps=[{"name": "distill", "steps": [{"name": "layer_drop"}],
                                                           "updates": 5}, {"name": "int8_dynamic"}]),
                       "decoder", calibration=calibration())
    assert report.kernel == "real" and any("distilled 5 updates" in n for n in report.notes)
    assert any(isinstance(x, torch.ao.nn.quantized.dynamic.Linear) for x in m.modules())
    assert len(m.decoders) == 1


def test_without_calibration_it_refuses_and_changes_nothing():
    m = build("encoder")
    before = copy.deepcopy(m.state_dict())
    with pytest.raises(CompressionConfigError, match=r"^encoder: layer_drop_distill learns from data and was given no "
                                                     r"calibration utterances; valid: set calibration.dir"):
        compress_(m, make_config("layer_drop_distill"), "encoder")
    assert m.state_dict().keys() == before.keys()
    with pytest.raises(CompressionConfigError, match=r"^lm: sequence learns from data"):
        compress_(build("lm"), make_config("sequence", steps=[{"name": "distill", "steps": [{"name": "layer_drop"}]}]), "lm")


def test_which_configs_need_calibration():
    assert needs_calibration(make_config("layer_drop_distill"))
    assert needs_calibration({"name": "sequence", "steps": [{"name": "distill", "steps": [{"name": "lowrank"}]}]})
    assert not needs_calibration({"name": "sequence", "steps": [{"name": "lowrank"}, {"name": "int8_dynamic"}]})
    assert not needs_calibration(make_config("layer_drop"))
    # sweeps that try every method have no calibration data to give
    assert "layer_drop_distill" not in applicable_methods("encoder") and "layer_drop" in applicable_methods("encoder")


class _CountingLM(torch.nn.Module):
    """An LM with ESPnet's batch_score(ys, states, xs) -> (logp, states) that draws tokens 1, 2, ... and
    <sos/eos> after `stop` of them: what `sample_text` reads from it is known."""

    def __init__(self, vocab: int, stop: int):
        super().__init__()
        self.vocab, self.stop = vocab, stop
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def batch_score(self, ys, states, xs):
        nxt = ys.size(1) if ys.size(1) <= self.stop else self.vocab - 1
        logp = torch.full((ys.size(0), self.vocab), -1e4)
        logp[:, nxt] = 0.0
        return logp, states


def test_sampled_text_stops_at_eos_or_at_the_length_limit():
    from asr_compress.compress.distill import sample_text

    assert sample_text(_CountingLM(10, stop=3), sos_eos=9, n=5, max_len=8, seed=0, batch=2) == [[1, 2, 3]] * 5
    assert sample_text(_CountingLM(10, stop=6), sos_eos=9, n=2, max_len=4, seed=0) == [[1, 2, 3, 4]] * 2


def test_lm_samples_from_itself_reproducibly_and_says_so():
    from asr_compress.compress.distill import sample_text

    lm = build("lm")
    a, b = (sample_text(lm, VOCAB - 1, 7, 12, seed=3) for _ in range(2))
    assert a == b and len(a) == 7 and all(len(t) <= 12 and VOCAB - 1 not in t for t in a)
    assert sample_text(lm, VOCAB - 1, 7, 12, seed=4) != a
    report = compress_(build("lm"), make_config("layer_drop_distill", updates=5, samples=20), "lm",
                       calibration=calibration())
    assert "on 23 sequences from random + 20 sampled from the LM" in report.notes[-1]


def test_samples_teach_the_lm_text_the_hypotheses_do_not_cover():
    """Held-out text (sampled with another seed) is matched better after learning from samples."""
    from asr_compress.compress.distill import _Text, sample_text

    teacher = build("lm")
    held_out = _Text(sample_text(teacher, VOCAB - 1, 30, 12, seed=99), VOCAB - 1, "held out", torch.device("cpu"))
    targets = _targets("lm", teacher, held_out)
    losses = {}
    for samples in (0, 60):
        student = build("lm")
        compress_(student, make_config("layer_drop_distill", updates=120, lr=3e-3, samples=samples), "lm",
                  calibration=calibration())
        losses[samples] = _mean_loss("lm", student, targets, held_out)
    assert losses[60] < 0.8 * losses[0], losses


@pytest.mark.parametrize("component", ["encoder", "ctc", "decoder"])
def test_samples_are_refused_for_components_that_read_audio(component):
    with pytest.raises(CompressionConfigError, match=rf"^{component}: .*samples=10 is invalid; valid: 0 for "
                                                     rf"{component} \(only the LM"):
        compress_(build(component), make_config("distill", steps=STEPS[component], samples=10), component,
                  calibration=calibration())
    with pytest.raises(CompressionConfigError, match=r"samples=-1 is invalid; valid: an integer >= 0"):
        make_config("layer_drop_distill", samples=-1)
    with pytest.raises(CompressionConfigError, match=r"batch=0 is invalid; valid: an integer >= 1"):
        make_config("layer_drop_distill", batch=0)


@pytest.mark.parametrize("component", ["encoder", "ctc", "decoder"])
def test_a_batch_of_utterances_steps_on_the_mean_of_their_losses(component):
    from asr_compress.compress.distill import _backward, _loss

    teacher, calib = build(component), calibration(3)
    targets = _targets(component, teacher, calib)
    students = [build(component) for _ in range(2)]
    for st in students:
        compress_(st, make_config("sequence", steps=STEPS[component]), component)
    _backward(component, students[0], targets, calib, [2, 0, 1])  # accumulated one by one
    mean = sum(_loss(component, students[1], targets[i], calib, i) for i in (2, 0, 1)) / 3
    mean.backward()  # the mean of the three losses, in one graph
    grads = [(a.grad, b.grad) for a, b in zip(students[0].parameters(), students[1].parameters()) if a.grad is not None]
    assert grads and all(torch.allclose(a, b, atol=1e-6) for a, b in grads)
    report = compress_(build(component), make_config("distill", steps=STEPS[component], updates=3, batch=2),
                       component, calibration=calibration())
    assert "distilled 3 updates of 2 (lr 0.001) on 3 calibration utterances" in report.notes[-1]


def test_a_padded_batch_of_lm_text_has_the_loss_of_its_sequences_one_by_one():
    from asr_compress.compress.distill import _batch_loss, _loss

    teacher, student, calib = build("lm"), build("lm"), calibration(3)  # hypotheses of 4, 5 and 6 tokens
    compress_(student, make_config("layer_drop"), "lm")
    targets = _targets("lm", teacher, calib)
    lengths = [len(calib.tokens[i]) + 1 for i in range(3)]  # each with <sos>
    alone = sum(float(_loss("lm", student, targets[i], calib, i)) * lengths[i] for i in range(3)) / sum(lengths)
    assert float(_batch_loss("lm", student, targets, calib, [2, 0, 1])) == pytest.approx(alone, rel=1e-5)
    report = compress_(build("lm"), make_config("layer_drop_distill", updates=3, batch=2), "lm",
                       calibration=calibration())
    assert "distilled 3 updates of 2 (lr 0.001) on 3 calibration utterances" in report.notes[-1]
