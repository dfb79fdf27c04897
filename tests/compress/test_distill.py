"""distill: a compressed component trained back towards its own uncompressed outputs."""
import copy

import pytest
import torch

from asr_compress.compress import applicable_methods, component_stats, compress_, make_config, needs_calibration
from asr_compress.compress.distill import _mean_loss, _targets
from asr_compress.errors import CompressionConfigError
from compress_parts import build, calibration, run

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
