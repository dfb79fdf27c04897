"""The GPU lease kit of the default-model recipe: lease_pack.py (here) and lease_train.sh (there).

The kit's whole route (pack here, install the wheels into a Python 3.12 environment holding only
the lent machine's packages, decode, train both models, average, return the files) was rehearsed
on CPU when it was written (recipe README, "A lease"); these tests keep its contracts: what is
packed stays within the budget and consistent, and bad inputs stop before any work.
"""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

LOCAL = Path(__file__).resolve().parents[1] / "recipes" / "default_model" / "local"
MIB = 1 << 20


def _work_area(root: Path, n_train=12, n_dev=3) -> Path:
    """A repository with a recipe folder holding what lease_pack.py reads after stages 4-6 and 8."""
    recipe = root / "recipes" / "default_model"
    rng = np.random.default_rng(0)
    for part, stats_part, n in (("train", "train", n_train), ("dev", "valid", n_dev)):
        d = recipe / "dump" / "raw" / part
        d.mkdir(parents=True)
        (recipe / "wav" / part).mkdir(parents=True)
        (recipe / "exp" / "asr_stats" / stats_part).mkdir(parents=True)
        ids = [f"{part}{i:02d}" for i in range(n)]
        for i, u in enumerate(ids):
            x = 0.1 * np.sin(np.arange(8000 + 400 * i) * 0.07) + 0.02 * rng.standard_normal(8000 + 400 * i)
            sf.write(recipe / "wav" / part / f"{u}.wav", x.astype(np.float32), 16000, subtype="PCM_16")
        (d / "wav.scp").write_text("".join(f"{u} wav/{part}/{u}.wav\n" for u in ids))
        for f in ("text", "utt2spk", "utt2voice", "utt2group"):
            (d / f).write_text("".join(f"{u} {f} of {u}\n" for u in ids))
        stats = recipe / "exp" / "asr_stats" / stats_part
        (stats / "speech_shape").write_text("".join(f"{u} {8000 + 400 * i}\n" for i, u in enumerate(ids)))
        (stats / "text_shape").write_text("".join(f"{u} 5\n" for u in ids))
    (recipe / "dump" / "lm").mkdir()
    for name in ("train", "valid"):
        (recipe / "dump" / "lm" / f"{name}.txt").write_text(f"lm0001 some {name} text\n")
        (recipe / "exp" / "lm_stats" / name).mkdir(parents=True)
        (recipe / "exp" / "lm_stats" / name / "text_shape").write_text("lm0001 3\n")
    (recipe / "data" / "token_list" / "bpe_unigram300").mkdir(parents=True)
    (recipe / "data" / "token_list" / "bpe_unigram300" / "tokens.txt").write_text("<blank>\n<unk>\n")
    (root / "models" / "default" / "asr").mkdir(parents=True)
    np.savez(root / "models" / "default" / "asr" / "feats_stats.npz", count=np.array(1))
    (recipe / "no_wheels.txt").write_text("# none: the tests download nothing\n")
    (root / "README.md").write_text("a tracked file travels too\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "README.md"], cwd=root, check=True)
    return recipe


def _pack(recipe, budget_mb, *extra):
    return subprocess.run([sys.executable, str(LOCAL / "lease_pack.py"), "--wheels", "no_wheels.txt",
                           "--budget_mb", str(budget_mb), "--nj", "1", *extra],
                          cwd=recipe, capture_output=True, text=True)


def _ids(path: Path) -> list:
    return [l.split()[0] for l in path.read_text().splitlines()]


def test_lease_pack_fills_the_budget_with_a_consistent_subset(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(LOCAL))
    from lease_pack import folder_bytes, travelling_bytes

    recipe = _work_area(tmp_path)
    big = _pack(recipe, 5)  # everything fits
    assert big.returncode == 0, big.stderr
    lease = recipe / "lease"
    assert len(list((lease / "opus/pack1/train").glob("*.opus"))) == 12
    train_opus = sum(p.stat().st_size for p in (lease / "opus/pack1/train").glob("*.opus"))
    travelling = (travelling_bytes(tmp_path, lease) + folder_bytes(lease)) / MIB
    # a budget that leaves out about half the training audio: a subset, the dev set still whole
    budget = travelling - 0.5 * train_opus / MIB
    small = _pack(recipe, round(budget, 4))
    assert small.returncode == 0, small.stderr
    train = sorted(p.stem for p in (lease / "opus/pack1/train").glob("*.opus"))
    assert 0 < len(train) < 12
    assert len(list((lease / "opus/pack1/dev").glob("*.opus"))) == 3
    meta = lease / "opus/meta/dump/raw/train"
    # every list and shape file names exactly the packed utterances, lines as in the work area
    assert sorted(_ids(meta / "wav.scp")) == train
    for f in ("text", "utt2spk", "utt2voice", "utt2group"):
        assert sorted(_ids(meta / f)) == train
        assert set((meta / f).read_text().splitlines()) <= set((recipe / "dump/raw/train" / f).read_text().splitlines())
    for shape in ("speech_shape", "text_shape"):
        assert sorted(_ids(lease / "tree/exp/asr_stats/train" / shape)) == train
    assert (meta / "wav.scp").read_text().splitlines()[0] == f"{train[0]} audio/train/{train[0]}.wav"
    # the shipped normalisation, the token list and the LM text travel at run.sh's paths
    assert (lease / "tree/exp/asr_stats/train/feats_stats.npz").read_bytes() == \
        (tmp_path / "models/default/asr/feats_stats.npz").read_bytes()
    assert (lease / "tree/data/token_list/bpe_unigram300/tokens.txt").exists()
    assert (lease / "tree/dump/lm/train.txt.gz").exists() and (lease / "tree/exp/lm_stats/valid/text_shape").exists()
    manifest = (lease / "MANIFEST.txt").read_text()
    assert f"train {len(train)} utterances" in manifest
    assert travelling_bytes(tmp_path, lease) + folder_bytes(lease) <= budget * MIB


def test_lease_pack_says_when_the_dev_set_does_not_fit(tmp_path):
    recipe = _work_area(tmp_path)
    got = _pack(recipe, 0.02)  # the lists, the LM text and a few tracked bytes fit; the audio not
    assert got.returncode != 0
    assert "no room for the dev set" in got.stderr or "no room for audio" in got.stderr


def test_lease_pack_names_what_is_missing_before_any_work(tmp_path):
    recipe = _work_area(tmp_path)
    (recipe / "exp/asr_stats/train/speech_shape").unlink()
    got = _pack(recipe, 5)
    assert got.returncode != 0
    assert "exp/asr_stats/train/speech_shape is missing" in got.stderr and "stages 4-6 and 8" in got.stderr
    assert not (recipe / "lease" / "opus").exists()


def _lease_train(recipe, *args):
    (recipe / "local").mkdir(exist_ok=True)
    (recipe / "local" / "parse_options.sh").write_text((LOCAL / "parse_options.sh").read_text())
    return subprocess.run(["bash", str(LOCAL / "lease_train.sh"), *args], cwd=recipe,
                          capture_output=True, text=True)


def test_lease_train_refuses_unknown_choices_and_a_missing_lease(tmp_path):
    got = _lease_train(tmp_path, "--lm", "fresh")
    assert got.returncode == 2 and "--lm fresh: expected continue, scratch or none" in got.stderr
    got = _lease_train(tmp_path, "--asr", "scratch")
    assert got.returncode == 2 and "--asr scratch: expected continue or none" in got.stderr
    got = _lease_train(tmp_path, "--asr", "none", "--lm", "none")
    assert got.returncode == 2 and "train nothing" in got.stderr
    got = _lease_train(tmp_path)
    assert got.returncode == 2 and "lease/MANIFEST.txt is missing" in got.stderr
    assert not (tmp_path / "exp").exists()  # nothing written before the checks


def test_lease_wheels_are_pinned_and_cover_the_validation_metric():
    lines = [l.split("#")[0].strip() for l in (LOCAL / "lease_wheels.txt").read_text().splitlines()]
    reqs = [l for l in lines if l]
    assert all("==" in r for r in reqs), reqs  # what was rehearsed is what travels
    names = {r.split("==")[0] for r in reqs}
    # the first lease lost minutes to editdistance; the rehearsal found decorator (librosa, lazily)
    assert {"espnet", "editdistance", "decorator", "soundfile", "librosa"} <= names


def test_lease_train_stops_before_any_work_when_torch_sees_no_gpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    (tmp_path / "lease" / "tree" / "dump").mkdir(parents=True)
    (tmp_path / "lease" / "MANIFEST.txt").write_text("train 1 utterances\n")
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "parse_options.sh").write_text((LOCAL / "parse_options.sh").read_text())
    got = subprocess.run(["bash", str(LOCAL / "lease_train.sh"), "--install", "false"], cwd=tmp_path,
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable})
    assert got.returncode == 3 and "torch sees no GPU here" in got.stderr
    assert not (tmp_path / "dump").exists()  # the lease was not unpacked: its minutes are not spent
