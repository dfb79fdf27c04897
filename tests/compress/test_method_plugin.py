"""Methods from other packages (compress/plugins.py), with the shipped example examples/method_plugin.

A plugin is "installed" here by writing its module and a dist-info directory (METADATA and
entry_points.txt, as pip writes them) into a directory on PYTHONPATH: importlib.metadata finds it
exactly as it finds a pip-installed package, without a build in every test run.
"""
import importlib
import json
import sys
from pathlib import Path

import pytest
import torch

from support import run_cli, tiny_overrides

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "method_plugin"
MODULE = "asr_compress_weight_cluster"


def fake_install(site: Path, dist: str, entry_points: dict, modules: dict) -> Path:
    """Write `modules` (name -> source) and a dist-info for `dist` with asr_compress.methods `entry_points`."""
    site.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (site / f"{name}.py").write_text(source)
    info = site / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(
        "[asr_compress.methods]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    return site


def _example_entry_points() -> dict:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    return dict(project["entry-points"]["asr_compress.methods"])


@pytest.fixture
def example_site(tmp_path):
    return fake_install(tmp_path / "site", "asr-compress-weight-cluster", _example_entry_points(),
                        {MODULE: (EXAMPLE / f"{MODULE}.py").read_text()})


@pytest.fixture
def example(monkeypatch):
    """The example module imported in this process, registered into copies of the registry's tables."""
    from asr_compress.compress import registry

    for table in ("_METHODS", "METHOD_CONFIGS", "METHOD_PRESETS"):
        monkeypatch.setattr(registry, table, dict(getattr(registry, table)))
    monkeypatch.syspath_prepend(str(EXAMPLE))
    yield importlib.import_module(MODULE)
    sys.modules.pop(MODULE, None)


def test_cluster_reconstructs_a_matrix_with_k_distinct_values_exactly(example):
    w = torch.tensor([[0.0, 0.0, 1.0], [1.0, 5.0, 5.0]])
    assert torch.equal(example.cluster(w, 3, iters=5), w)
    two = example.cluster(w, 2, iters=5)
    assert two.unique().numel() == 2 and torch.equal(two[1, 1:], w[1, 1:])  # 5 keeps its own value


def test_weight_cluster_leaves_at_most_2_to_the_bits_values_per_matrix(example, make):
    from asr_compress.compress import compress_, make_config
    from compress_parts import run, sqnr

    ref = run("encoder", make("encoder"))
    db = {}
    for bits in (1, 4):
        m = make("encoder")
        report = compress_(m, make_config("weight_cluster", bits=bits), "encoder")
        linears = [mod for mod in m.modules() if isinstance(mod, torch.nn.Linear)]
        assert linears and all(mod.weight.unique().numel() <= 2 ** bits for mod in linears)
        assert report.kernel == "simulated" and report.method["bits"] == bits
        db[bits] = sqnr(ref, run("encoder", m))
    # about 6 dB per bit, as for any uniform-ish quantizer: observed 5.5 dB at 1 bit, 23.6 dB at 4
    assert db[1] < 10 and db[4] > 20


def test_weight_cluster_refuses_a_bad_parameter_and_a_component_without_weights(example, make):
    from asr_compress.compress import applicable, make_config
    from asr_compress.errors import CompressionConfigError

    with pytest.raises(CompressionConfigError, match=r"weight_cluster bits=9 is invalid; valid: an integer 1 <= bits <= 8"):
        make_config("weight_cluster", bits=9)
    with pytest.raises(CompressionConfigError, match="frontend: weight_cluster does not apply to this model's frontend"):
        applicable("frontend", make_config("weight_cluster"), make("frontend"))  # fbank: no weights
    applicable("frontend", make_config("weight_cluster"), make("fused_frontend"))


def test_an_installed_plugin_method_runs_from_the_cli_and_is_recorded(tiny, tmp_path, example_site):
    res = run_cli(["encoder=weight_cluster", "encoder.bits=3", f"hydra.run.dir={tmp_path / 'run'}",
                   *tiny_overrides(tiny, "eval.flops_utterances=0", "eval.warmup=0")], tmp_path,
                  env={"PYTHONPATH": str(example_site)})
    assert res.returncode == 0, res.stderr[-2000:]
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    enc = m["components"]["encoder"]
    assert enc["method"]["name"] == "weight_cluster" and enc["method"]["bits"] == 3 and enc["kernel"] == "simulated"
    assert m["environment"]["method_plugins"] == "weight_cluster from asr-compress-weight-cluster 0.1.0"


@pytest.mark.parametrize("override,needle", [
    ("encoder.bitz=3", "bitz"),  # the plugin's config is a Hydra schema: typos fail at compose time
    ("encoder.bits=9", "encoder: weight_cluster bits=9 is invalid; valid: an integer 1 <= bits <= 8"),
])
def test_a_plugin_methods_bad_parameters_fail_like_a_built_in_methods(tiny, tmp_path, example_site, override, needle):
    res = run_cli(["encoder=weight_cluster", override, *tiny_overrides(tiny)], tmp_path,
                  env={"PYTHONPATH": str(example_site)})
    assert res.returncode != 0 and needle in res.stderr


@pytest.mark.parametrize("source,needle", [
    ("raise ImportError('No module named torch_kmeans')",
     "method plugin broken = 'broken_method' (entry point group asr_compress.methods, installed by broken-plugin "
     "0.1.0) failed to load: ImportError: No module named torch_kmeans; valid: fix that module, or uninstall broken-plugin"),
    ("from asr_compress.compress.registry import NoneConfig, register_method\n"
     "from dataclasses import dataclass\n"
     "@dataclass\nclass Int8(NoneConfig):\n    name: str = 'int8_dynamic'\n"
     "register_method(Int8, components=('encoder',))(lambda m, c, comp: None)\n",
     "failed to load: RuntimeError: method name 'int8_dynamic' of Int8 is empty or already registered"),
    ("X = 1\n", "registered no method; valid: a module that calls @register_method"),
])
def test_a_plugin_that_cannot_load_stops_with_one_line(tiny, tmp_path, source, needle):
    site = fake_install(tmp_path / "site", "broken-plugin", {"broken": "broken_method"}, {"broken_method": source})
    res = run_cli(tiny_overrides(tiny), tmp_path, env={"PYTHONPATH": str(site)})
    assert res.returncode == 2 and needle in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_the_code_digest_covers_an_installed_plugins_source(example_site, tmp_path):
    # resume=true compares it: a plugin edited in place keeps its version, so only its source tells
    import subprocess

    def digest(site):
        code = "import asr_compress.compress; from asr_compress.evaluate.environment import code_sha256; print(code_sha256())"
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                             env={"PATH": "/usr/bin:/bin", **({"PYTHONPATH": str(site)} if site else {})})
        assert res.returncode == 0, res.stderr[-2000:]
        return res.stdout.strip().splitlines()[-1]

    with_plugin = digest(example_site)
    source = example_site / f"{MODULE}.py"
    source.write_text(source.read_text() + "\n# edited in place, version unchanged\n")
    assert len({digest(None), with_plugin, digest(example_site)}) == 3
