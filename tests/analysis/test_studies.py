import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore

from asr_compress.analysis.studies import CONF_DIR, expand_study, main


def test_one_at_a_time_is_baseline_plus_each_component_alone():
    runs = expand_study("one_at_a_time", ["int8_dynamic"])
    assert runs == [[], ["encoder=int8_dynamic"], ["decoder=int8_dynamic"], ["ctc=int8_dynamic"], ["lm=int8_dynamic"]]
    two = expand_study("one_at_a_time", ["int8_dynamic", "prune_unstructured"], components=["encoder", "lm"])
    assert two == [[], ["encoder=int8_dynamic"], ["encoder=prune_unstructured"], ["lm=int8_dynamic"],
                   ["lm=prune_unstructured"]]


def test_factorial_is_the_full_grid():
    runs = expand_study("factorial")
    assert len(runs) == 16 and runs[0] == [] and len({tuple(r) for r in runs}) == 16
    assert runs[-1] == ["encoder=int8_dynamic", "decoder=int8_dynamic", "ctc=int8_dynamic", "lm=int8_dynamic"]
    small = expand_study("factorial", ["int8_dynamic", "prune_unstructured"], components=["encoder", "lm"])
    assert len(small) == 9 and ["encoder=prune_unstructured", "lm=int8_dynamic"] in small


def test_unknown_study_names_the_known_ones(capsys):
    with pytest.raises(FileNotFoundError, match="factorial"):
        expand_study("nope")
    assert main(["nope"]) == 2
    assert main(["one_at_a_time"]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == ["", "encoder=int8_dynamic"]


@dataclass
class _StrictSchema:  # like the main config's: no `study` field, unknown keys are errors
    encoder: Any = "none"
    decoder: Any = "none"
    ctc: Any = "none"
    lm: Any = "none"


def test_presets_compose_with_hydra(tmp_path):
    ConfigStore.instance().store(name="strict_schema_for_study_test", node=_StrictSchema)
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR / "study", conf / "study")
    (conf / "config.yaml").write_text("defaults:\n  - strict_schema_for_study_test\n  - study: null\n  - _self_\n")
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        fact = compose("config", overrides=["study=factorial"], return_hydra_config=True)
    assert fact.hydra.mode.name == "MULTIRUN"
    grid = {k: str(v).split(",") for k, v in fact.hydra.sweeper.params.items()}
    assert grid == {c: ["none", "int8_dynamic"] for c in ("encoder", "decoder", "ctc", "lm")}
    assert [[f"{k}={v[1]}" for k, v in grid.items()]] == [expand_study("factorial")[-1]]


def test_recipe_script_is_valid_bash():
    script = Path(__file__).resolve().parents[2] / "recipes" / "factorial_study" / "run.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
