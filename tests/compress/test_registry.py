"""Registry, config validation and `applicable`: every bad input fails with one line naming
the component, the parameter and the valid range or choices, before anything changes."""
import dataclasses
import subprocess
import sys

import pytest
import torch
from omegaconf import OmegaConf

from asr_compress.compress import (
    METHOD_CONFIGS,
    METHOD_PRESETS,
    CompressionReport,
    MethodConfig,
    NoneConfig,
    applicable,
    component_stats,
    compress_,
    make_config,
)
from asr_compress.compress.registry import resolve
from asr_compress.errors import AsrCompressError, CompressionConfigError

# (component, method config as Hydra would hand it over, regex the one-line message must match)
BAD = [
    ("decoder", {"name": "prune_unstructured", "sparsity": 1.0}, r"^decoder: prune_unstructured sparsity=1\.0 .*valid: 0 <= sparsity < 1$"),
    ("lm", {"name": "prune_unstructured", "sparsity": -0.1}, r"^lm: prune_unstructured sparsity=-0\.1 .*0 <= sparsity < 1$"),
    ("encoder", {"name": "prune_unstructured", "scope": "row"}, r"^encoder: prune_unstructured scope='row' .*valid: one of layer, global$"),
    ("encoder", {"name": "lowrank", "rank": 0}, r"^encoder: lowrank rank=0 .*valid: an integer >= 1"),
    ("ctc", {"name": "lowrank", "rank": -3}, r"^ctc: lowrank rank=-3 .*valid: an integer >= 1"),
    ("decoder", {"name": "lowrank", "energy": 1.5}, r"^decoder: lowrank energy=1\.5 .*valid: 0 < energy < 1"),
    ("lm", {"name": "prune_nm", "n": 4, "m": 4}, r"^lm: prune_nm n=4 .*valid: 1 <= n < m \(m=4\)$"),
    ("lm", {"name": "prune_structured", "heads_fraction": 1.0}, r"^lm: prune_structured heads_fraction=1\.0 .*0 <= heads_fraction < 1$"),
    ("encoder", {"name": "int4_weight", "group_size": 0}, r"^encoder: int4_weight group_size=0 .*valid: an integer >= 2, or -1"),
    ("ctc", {"name": "int8_weight", "int8pack_kernel": True}, r"^ctc: int8_weight int8pack_kernel=True .*valid: false, or true with group_size=-1 and symmetric=true \(got group_size=128, symmetric=True\)$"),
    ("encoder", {"name": "layer_drop", "keep_every": -1}, r"^encoder: layer_drop keep_every=-1 .*valid: an integer >= 0"),
    ("encoder", {"name": "layer_drop", "keep_every": 0}, r"^encoder: layer_drop keep_every=0 .*valid: keep_every >= 2 or a non-empty drop list"),
    ("ctc", {"name": "layer_drop", "keep_every": 2}, r"^ctc: layer_drop does not apply \(ctc has no layer stack.*\); valid components: frontend, encoder, decoder, lm$"),
    ("frontend", {"name": "prune_structured"}, r"^frontend: prune_structured does not apply \(heads and channels are pruned .*not in a frontend\); valid components: encoder, decoder, lm$"),
    ("ctc", {"name": "prune_structured"}, r"^ctc: prune_structured does not apply .*valid components: encoder, decoder, lm$"),
    ("ctc", {"name": "prune_lowrank_int8"}, r"^ctc: prune_structured does not apply .*valid components: encoder, decoder, lm \[in prune_lowrank_int8 steps\[0\]\]$"),
    ("encoder", {"name": "int9_dynamic"}, r"^encoder: unknown method name='int9_dynamic'; valid choices: none, int8_dynamic, .*prune_lowrank_int8, layer_drop_distill$"),
    ("encoder", {"name": "prune_unstructured", "sparsity_level": 0.5}, r"^encoder: prune_unstructured has no parameter 'sparsity_level'; valid parameters: targets, ignore, sparsity, scope$"),
    ("decoder", {"name": "sequence", "steps": [{"name": "lowrank", "rank": 0}]}, r"^decoder: sequence steps\[0\]: lowrank rank=0 .*valid: an integer >= 1"),
    ("decoder", {"name": "sequence", "steps": [{"name": "quantise"}]}, r"^decoder: sequence steps\[0\].name='quantise' .*valid: one of none, int8_dynamic"),
    ("lm", {"name": "sequence", "steps": ["int8_dynamic"]}, r"^lm: sequence steps\[0\]='int8_dynamic' .*valid: a mapping \{name: <method>"),
    ("encoder", {"name": "sequence"}, r"^encoder: sequence steps=\[\] .*valid: a non-empty list"),
    ("encoder", {"name": "distill"}, r"^encoder: distill steps=\[\] .*valid: a non-empty list .*methods in: layer_drop, prune_structured"),
    ("decoder", {"name": "distill", "steps": [{"name": "int8_dynamic"}]}, r"^decoder: distill steps\[0\]\.name='int8_dynamic' .*quantize after distilling"),
    ("lm", {"name": "distill", "steps": [{"name": "layer_drop"}], "updates": 0}, r"^lm: distill updates=0 .*valid: an integer >= 1$"),
    ("encoder", {"name": "layer_drop_distill", "lr": 0.0}, r"^encoder: layer_drop_distill lr=0\.0 .*valid: 0 < lr <= 0\.1$"),
    ("ctc", {"name": "layer_drop_distill"}, r"^ctc: layer_drop does not apply .* \[in layer_drop_distill steps\[0\]\]$"),
    ("frontend", {"name": "distill", "steps": [{"name": "lowrank", "rank": 2}]}, r"^frontend: distill does not apply \(the teacher outputs .* not for a frontend\); valid components: encoder, ctc, decoder, lm$"),
    ("encoder", {"name": "fp16", "targets": "Linear"}, r"^encoder: fp16 targets='Linear' .*valid: a list of non-empty strings"),
]


@pytest.mark.parametrize("component,config,message", BAD, ids=[f"{c}-{d['name']}-{i}" for i, (c, d, _) in enumerate(BAD)])
def test_bad_input_fails_with_one_line(component, config, message):
    with pytest.raises(CompressionConfigError, match=message) as info:
        applicable(component, config)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, AsrCompressError)


def test_bad_hydra_override_fails_in_applicable():
    node = OmegaConf.structured(METHOD_CONFIGS["prune_unstructured"])
    node.sparsity = 1.2  # `decoder.sparsity=1.2` on the command line: Hydra checks the type, we check the range
    with pytest.raises(CompressionConfigError, match=r"^decoder: prune_unstructured sparsity=1\.2"):
        applicable("decoder", node)


def test_config_changed_after_construction_is_revalidated():
    cfg = make_config("prune_unstructured", sparsity=0.5)
    cfg.sparsity = 1.0
    with pytest.raises(CompressionConfigError, match=r"^lm: prune_unstructured sparsity=1\.0"):
        applicable("lm", cfg)


def test_construction_error_without_component_names_method_and_range():
    with pytest.raises(CompressionConfigError, match=r"^prune_unstructured sparsity=1\.0 is invalid; valid: 0 <= sparsity < 1$"):
        METHOD_CONFIGS["prune_unstructured"](sparsity=1.0)
    with pytest.raises(CompressionConfigError, match=r"^ctc: prune_unstructured sparsity=1\.0"):
        make_config("prune_unstructured", component="ctc", sparsity=1.0)


def test_unknown_target_names_valid_examples_and_changes_nothing(make):
    m = make("encoder")
    before = {k: v.clone() for k, v in m.state_dict().items()}
    with pytest.raises(CompressionConfigError, match=r"^encoder: int8_dynamic targets entry 'FeedForwad' matches no submodule; valid examples: type names Linear, MultiHeadedAttention, PositionwiseFeedForward.*; names embed, encoders, after_norm, embed\.out\.0; regex 're:embed\\\..\*'$"):
        compress_(m, make_config("int8_dynamic", targets=["FeedForwad"]), "encoder")
    with pytest.raises(CompressionConfigError, match=r"^encoder: fp16 ignore entry 're:decoders\\\..\*' matches no submodule"):
        compress_(m, make_config("fp16", ignore=["re:decoders\\..*"]), "encoder")
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


def test_every_method_is_a_hydra_compatible_dataclass():
    for name, cls in METHOD_CONFIGS.items():
        assert issubclass(cls, MethodConfig) and cls.name == name
        node = OmegaConf.structured(cls)  # fails on Union / Literal / untyped fields
        assert node.name == name
        if name not in ("sequence", "distill"):  # no default steps: they are required
            applicable("decoder", node)
    for name, preset in METHOD_PRESETS.items():
        node = OmegaConf.structured(preset)
        assert node.name == name
        applicable("decoder", node)
    node = OmegaConf.structured(METHOD_PRESETS["prune_lowrank_int8"])
    node.steps[1].energy = 0.8  # a preset is overridable like any config
    applicable("decoder", node)


def test_report_records_full_resolved_method(make):
    m = make("ctc")
    report = compress_(m, {"name": "prune_nm"}, "ctc")
    assert report.method == {"name": "prune_nm", "targets": [], "ignore": [], "n": 2, "m": 4}
    stats = component_stats(m, report)
    assert set(stats) == {"method", "params", "nonzero_params", "sparsity", "size_bytes", "weight_memory_bytes", "kernel",
                          "notes"}
    assert stats["sparsity"] == pytest.approx(0.5 * 30 * 32 / (30 * 32 + 30))


def test_none_is_identity(make):
    m = make("decoder")
    before = {k: v.clone() for k, v in m.state_dict().items()}
    report = compress_(m, NoneConfig(), "decoder")
    assert isinstance(report, CompressionReport) and report.kernel == "none"
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert dataclasses.asdict(NoneConfig()) == {"name": "none", "targets": [], "ignore": []}


def test_import_does_not_import_espnet():
    code = "import sys, asr_compress.compress; print(any(m == 'espnet' or m.startswith(('espnet.', 'espnet2')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_hydra_group_compose_and_override():
    """What the config owner does: every method and preset into a component group, then CLI overrides."""
    from dataclasses import dataclass, field
    from typing import Any

    from hydra import compose, initialize
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    group = "_test_compress_decoder"
    for name, cls in METHOD_CONFIGS.items():
        cs.store(group=group, name=name, node=cls)
    for name, preset in METHOD_PRESETS.items():
        cs.store(group=group, name=name, node=preset)

    @dataclass
    class Main:
        defaults: list = field(default_factory=lambda: ["_self_", {group: "none"}])
        _test_compress_decoder: Any = None

    cs.store(name="_test_compress_main", node=Main)
    with initialize(version_base=None, config_path=None):
        cfg = compose("_test_compress_main", overrides=[f"{group}=prune_unstructured", f"{group}.sparsity=0.7"])
        node = cfg[group]
        assert make_config("prune_unstructured", sparsity=0.7) == resolve("decoder", node)
        cfg = compose("_test_compress_main", overrides=[f"{group}=prune_lowrank_int8", f"{group}.steps.1.energy=0.8"])
        assert resolve("decoder", cfg[group]).steps[1]["energy"] == 0.8
        with pytest.raises(Exception, match="sparsity"):  # a typo'd or mistyped field fails at compose time
            compose("_test_compress_main", overrides=[f"{group}=lowrank", f"{group}.sparsity=0.7"])
        cfg = compose("_test_compress_main", overrides=[f"{group}=lowrank", f"{group}.rank=0"])
        with pytest.raises(CompressionConfigError, match=r"^decoder: lowrank rank=0"):
            applicable("decoder", cfg[group])


@pytest.mark.parametrize("component,build_as,config,message", [
    ("lm", "rnn_lm", {"name": "layer_drop"}, r"^lm: layer_drop found no layer stack in SequentialRNNLM; valid: a module with one of encoders, decoders, encoder\.encoders"),
    ("lm", "rnn_lm", {"name": "prune_structured"}, r"^lm: prune_structured found no MultiHeadedAttention, PositionwiseFeedForward or ConvolutionalGatingMLP"),
    ("decoder", "decoder", {"name": "layer_drop", "keep_every": 0, "drop": [2]}, r"^decoder: layer_drop drop=\[2\] has out-of-range \[2\]; valid range: -2\.\.1 \(2 layers\)$"),
    ("encoder", "encoder", {"name": "lowrank", "rank": 4, "targets": ["re:decoders\\..*"]}, r"^encoder: lowrank targets entry 're:decoders\\\..\*' matches no submodule"),
    ("ctc", "ctc", {"name": "prune_nm", "m": 7}, r"^ctc: prune_nm m=7 divides the input size of no targeted Linear; valid: an m that divides"),
    ("decoder", "decoder", {"name": "sequence", "steps": [{"name": "layer_drop", "drop": [9]}]}, r"^decoder: layer_drop drop=\[9\] has out-of-range .* \[in sequence steps\[0\]\]$"),
])
def test_applicable_with_module_checks_structure_without_changing_it(make, component, build_as, config, message):
    m = make(build_as)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    applicable(component, config)  # the parameters alone are fine
    with pytest.raises(CompressionConfigError, match=message):
        applicable(component, config, m)
    assert m.state_dict().keys() == before.keys() and all(torch.equal(before[k], v) for k, v in m.state_dict().items())


def test_applicable_with_module_accepts_good_configs(make):
    for name in list(METHOD_CONFIGS) + list(METHOD_PRESETS):
        if name in ("sequence", "distill"):
            continue
        applicable("decoder", {"name": name}, make("decoder"))


def test_applicable_methods_per_component():
    from asr_compress.compress import applicable_methods, method_config

    assert "layer_drop" not in applicable_methods("ctc") and "layer_drop" in applicable_methods("encoder")
    assert applicable_methods("frontend") == []  # unknown until the model is loaded
    assert "prune_lowrank_int8" in applicable_methods("decoder") and "sequence" not in applicable_methods("decoder")
    assert applicable_methods("lm", ["int8_dynamic", "layer_drop"]) == ["int8_dynamic", "layer_drop"]
    assert method_config("prune_unstructured").sparsity == 0.5
    with pytest.raises(CompressionConfigError, match="unknown method 'int9'; valid: none, int8_dynamic"):
        method_config("int9")


def test_weight_methods_apply_to_a_frontend_with_weights_and_refuse_one_without(make):
    from asr_compress.compress import applicable, applicable_methods, compress_, make_config
    from compress_parts import run, sqnr

    fused, fbank = make("fused_frontend"), make("frontend")
    assert {"int8_dynamic", "fp16", "prune_unstructured", "lowrank"} <= set(applicable_methods("frontend", module=fused))
    assert applicable_methods("frontend", module=fbank) == []
    applicable("frontend", make_config("int8_dynamic"))  # by config alone: depends on the model
    with pytest.raises(CompressionConfigError, match=r"^frontend: int8_dynamic does not apply to this model's frontend: "
                       r"DefaultFrontend \(STFT \+ fixed mel filterbank\) has no weights; valid: frontend=none, or a "
                       r"model with an SSL frontend"):
        applicable("frontend", make_config("int8_dynamic"), fbank)
    ref = run("fused_frontend", make("fused_frontend"))
    report = compress_(fused, make_config("int8_dynamic"), "frontend")
    assert report.kernel == "real" and not isinstance(fused.projection_layers[0], torch.nn.Linear)
    assert sqnr(ref, run("fused_frontend", fused)) > 30  # int8 on one 20x32 projection: observed about 40 dB
