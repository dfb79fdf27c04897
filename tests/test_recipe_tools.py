"""The default-model recipe's data helpers: sentence selection and the Opus transfer route."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

LOCAL = Path(__file__).resolve().parents[1] / "recipes" / "default_model" / "local"


def _copy_run_sh(tmp_path):
    """run.sh and its option parser in an empty work area, so a stage runs on made-up data."""
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "parse_options.sh").write_text((LOCAL / "parse_options.sh").read_text())
    (tmp_path / "run.sh").write_text((LOCAL.parent / "run.sh").read_text())


def test_read_sentences_takes_n_after_skip(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(LOCAL))
    from synth_corpus import read_sentences

    pool = tmp_path / "pool.txt"
    pool.write_text("a\n\nb\nc\nd\ne\n")  # blank lines do not count
    assert read_sentences([f"{pool}:2"]) == ["a", "b"]
    assert read_sentences([f"{pool}:2:2"]) == ["c", "d"]  # --extra: the next sentences
    assert read_sentences([f"{pool}::3"]) == ["d", "e"]
    assert read_sentences([str(pool)]) == ["a", "b", "c", "d", "e"]


def test_wide_voices_never_include_the_unseen_test_voices(monkeypatch):
    monkeypatch.syspath_prepend(str(LOCAL))
    import random

    from synth_corpus import ESPEAK_VARIANTS_WIDE, UNSEEN, train_voice

    rng = random.Random(0)
    voices = {train_voice(rng, wide=True) for _ in range(5000)}
    assert not voices & set(UNSEEN)
    assert not any("gbcwmd" in v or "ked" in v for v in voices)
    # the unseen test voices' variants are kept out too, and only real variant names are used
    assert not {"f5", "m8", "male8", "Steph", "Mr_Serious"} & set(ESPEAK_VARIANTS_WIDE)
    assert len({v.split("+")[1] for v in voices if "+" in v}) > 60  # the wider set is used


def test_speed_perturb_resamples_or_leaves_alone(monkeypatch):
    monkeypatch.syspath_prepend(str(LOCAL))
    import random

    from audio import speed_perturb

    x = np.sin(np.arange(16000) * 0.05).astype(np.float32)
    assert speed_perturb(x, random.Random(0), p=0.0) is x  # off: the old sets stay bit-for-bit
    lengths = {len(speed_perturb(x, random.Random(s), p=1.0)) for s in range(20)}
    assert min(lengths) >= 16000 / 1.15 - 2 and max(lengths) <= 16000 / 0.85 + 2
    assert len(lengths) > 5  # a random factor per utterance


def _recipe(root: Path, rate=16000):
    """A recipe folder whose train and dev sets share an utterance id (as synth ids once did)."""
    rng = np.random.default_rng(0)
    for part, n in (("train", 2), ("dev", 1)):
        d = root / "dump" / "raw" / part
        d.mkdir(parents=True)
        wav = root / "data" / part
        wav.mkdir(parents=True)
        ids = [f"utt{i}" for i in range(n)]
        for i, utt in enumerate(ids):
            x = 0.1 * np.sin(np.arange(rate // 2 + 800 * i) * (0.05 + 0.02 * i)) + 0.01 * rng.standard_normal(rate // 2 + 800 * i)
            sf.write(wav / f"{utt}.wav", x.astype(np.float32), rate, subtype="PCM_16")
        (d / "wav.scp").write_text("".join(f"{u} data/{part}/{u}.wav\n" for u in ids))
        for f in ("text", "utt2spk", "utt2voice", "utt2group"):
            (d / f).write_text("".join(f"{u} {part} {f}\n" for u in ids))


def _opus_pack(cwd, *args):
    return subprocess.run([sys.executable, str(LOCAL / "opus_pack.py"), *args], cwd=cwd,
                          capture_output=True, text=True)


def test_opus_pack_round_trip_keeps_sets_apart(tmp_path):
    src, dst = tmp_path / "here", tmp_path / "there"
    _recipe(src)
    r = _opus_pack(src, "pack", "--out", str(tmp_path / "opus"), "--max_mb", "0.004", "--nj", "1")
    assert r.returncode == 0, r.stderr
    packs = sorted((tmp_path / "opus").glob("pack*"))
    assert len(packs) >= 2  # the size cap split the audio
    dst.mkdir()
    r = _opus_pack(dst, "unpack", *map(str, packs), "--meta", str(tmp_path / "opus" / "meta"), "--nj", "1")
    assert r.returncode == 0, r.stderr
    for part in ("train", "dev"):
        scp = dict(l.split() for l in (dst / "dump/raw" / part / "wav.scp").read_text().splitlines())
        assert scp["utt0"] == f"audio/{part}/utt0.wav"  # same id in both sets, two files
        for utt, path in scp.items():
            x, rate = sf.read(dst / path)
            ref, _ = sf.read(src / "data" / part / f"{utt}.wav")
            assert rate == 16000 and len(x) == len(ref)
            assert np.corrcoef(x, ref)[0, 1] > 0.9  # lossy, but the same signal
        assert (dst / "dump/raw" / part / "text").read_text() == (src / "dump/raw" / part / "text").read_text()


def test_opus_pack_rejects_other_rates(tmp_path):
    _recipe(tmp_path / "here", rate=8000)
    r = _opus_pack(tmp_path / "here", "pack", "--out", str(tmp_path / "opus"), "--nj", "1")
    assert r.returncode != 0
    assert "8000 Hz, expected 16000" in r.stderr and "utt0.wav" in r.stderr


def _run_stage4(tmp_path, *options):
    """Stage 4 over one-line made-up data sets (two lines in synth_train); the train ids it kept."""
    sets = ["synth_train", "synth_extra", "synth_wide", "synth_digits", "synth_engines", "synth_piper", "real_lj_train",
            "real_lj_aug", "real_lj_more", "real_digits_train", "synth_dev", "real_lj_dev", "real_digits_dev"]
    for name in sets:
        d = tmp_path / "data" / name
        d.mkdir(parents=True)
        for f in ("wav.scp", "text", "utt2spk", "utt2voice", "utt2group"):
            (d / f).write_text(f"{name}-1 x\n" + (f"{name}-2 x\n" if name == "synth_train" else ""))
    r = subprocess.run(["bash", "run.sh", "--stage", "4", "--stop_stage", "4", *options],
                       cwd=tmp_path, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable})
    assert r.returncode == 0, r.stderr  # extra=0 once aborted stage 4 under `set -e`
    return (tmp_path / "dump/raw/train/text").read_text().splitlines()


@pytest.mark.parametrize("extra, wide, digits, lj_more, n_train",
                         [("0", "0", "0", "0", 5), ("2", "0", "0", "0", 6), ("2", "2", "0", "0", 7),
                          ("0", "2", "0", "0", 6), ("2", "2", "500", "0", 8), ("2", "2", "500", "3", 9)])
def test_run_sh_combines_extra_synthesis_only_when_asked(tmp_path, extra, wide, digits, lj_more, n_train):
    _copy_run_sh(tmp_path)
    train = _run_stage4(tmp_path, "--extra", extra, "--wide", wide, "--digits", digits, "--lj_more", lj_more)
    assert len(train) == n_train and any(l.startswith("synth_extra") for l in train) == (extra != "0")
    assert any(l.startswith("synth_wide") for l in train) == (wide != "0")
    assert any(l.startswith("synth_digits") for l in train) == (digits != "0")
    assert any(l.startswith("real_lj_more") for l in train) == (lj_more != "0")
    assert len((tmp_path / "dump/raw/dev/text").read_text().splitlines()) == 3


@pytest.mark.parametrize("option, name", [("--engines", "synth_engines"), ("--piper", "synth_piper")])
@pytest.mark.parametrize("n", ["0", "2"])
def test_run_sh_adds_the_other_engines_and_piper_sets_only_when_asked(tmp_path, option, name, n):
    _copy_run_sh(tmp_path)
    train = _run_stage4(tmp_path, option, n)
    assert any(l.startswith(name) for l in train) == (n != "0")
    assert len(train) == (6 if n != "0" else 5)


def _training_argv(tmp_path, stage, *options):
    """The command line a training stage builds, one word per item (a fake interpreter records it)."""
    _copy_run_sh(tmp_path)
    fake = tmp_path / "fake_python"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$(dirname "$0")/argv"\n')
    fake.chmod(0o755)
    r = subprocess.run(["bash", "run.sh", "--stage", stage, "--stop_stage", stage, *options],
                       cwd=tmp_path, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "PYTHON": str(fake)})
    assert r.returncode == 0, r.stderr
    return (tmp_path / "argv").read_text().splitlines()


def test_run_sh_passes_asr_args_to_training_after_the_config(tmp_path):
    # --asr_args overrides the config (ESPnet: later arguments win), so a CPU fine-tuning run needs
    # no near-copy of the config
    argv = _training_argv(tmp_path, "9", "--asr_init", "init.pth",
                          "--asr_args", "--optim_conf lr=0.0002 --num_iters_per_epoch 600")
    assert argv[argv.index("--init_param") + 1] == "init.pth"
    tail = argv[argv.index("--config") + 2:]  # after "--config FILE": the overrides, word-split
    assert tail == ["--optim_conf", "lr=0.0002", "--num_iters_per_epoch", "600"]


def test_pocketsphinx_testdata_becomes_a_real_new_speakers_set(tmp_path, monkeypatch):
    # Debian's listing formats: "<s> words </s> (id)"; librivox ids are file stems, cards' numbers
    monkeypatch.syspath_prepend(str(LOCAL))
    from prepare_real import pocketsphinx_rows

    (tmp_path / "librivox").mkdir()
    (tmp_path / "cards").mkdir()
    (tmp_path / "librivox/transcription").write_text(
        "<s> he was not an ill disposed young man </s> (sense_01-0880)\n")
    (tmp_path / "cards/cards.transcription").write_text(
        "<s> ten of clubs  </s> (001)\n<s> five five  </s> (004)\n")
    rows = pocketsphinx_rows(tmp_path)
    assert [r[0] for r in rows] == ["librivox_austen-sense_01-0880", "cards-001", "cards-004"]
    assert [r[2] for r in rows] == ["HE WAS NOT AN ILL DISPOSED YOUNG MAN", "TEN OF CLUBS", "FIVE FIVE"]
    assert rows[1][1] == str((tmp_path / "cards/001.wav").resolve())
    assert [r[3] for r in rows] == ["librivox_austen", "cards", "cards"] and {r[5] for r in rows} == {"real"}


def test_lj_more_copies_are_new_perturbed_and_reproducible(tmp_path, monkeypatch):
    # the extra LJ copies weight real speech up: new ids, other audio than the source (speed
    # 0.9-1.1, so another length), the same audio when re-run with the same seed
    monkeypatch.syspath_prepend(str(LOCAL))
    from prepare_real import lj_more_rows

    lj, an4 = tmp_path / "lj", tmp_path / "an4"
    for d in (lj / "wavs", an4 / "noise", an4 / "rirs"):
        d.mkdir(parents=True)
    t = np.arange(16000) / 16000
    for i in ("LJ001-0001", "LJ001-0002"):
        sf.write(lj / "wavs" / f"{i}.flac", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 22050)
    sf.write(an4 / "noise" / "n.wav", (0.1 * np.random.default_rng(0).standard_normal(8000)).astype(np.float32), 16000)
    sf.write(an4 / "rirs" / "r.wav", np.exp(-np.arange(800) / 100).astype(np.float32), 16000)
    meta = {"LJ001-0001": "A B", "LJ001-0002": "C D"}
    ids = sorted(meta)
    rows = lj_more_rows(ids, 2, lj, tmp_path / "a", an4, meta, seed=3)
    assert [r[0] for r in rows] == ["ljspeech-more1-LJ001-0001", "ljspeech-more1-LJ001-0002",
                                    "ljspeech-more2-LJ001-0001", "ljspeech-more2-LJ001-0002"]
    assert [r[2] for r in rows] == ["A B", "C D", "A B", "C D"] and all(r[5] == "real" for r in rows)
    src = round(16000 * 16000 / 22050)  # the source at 16 kHz
    lengths = [len(sf.read(r[1])[0]) for r in rows]
    assert all(src / 1.1 - 2 <= n <= src / 0.9 + 2 for n in lengths) and len(set(lengths)) > 1
    again = lj_more_rows(ids, 2, lj, tmp_path / "b", an4, meta, seed=3)
    for r, q in zip(rows, again):
        assert np.array_equal(sf.read(r[1])[0], sf.read(q[1])[0])
    assert lj_more_rows(ids, 0, lj, tmp_path / "c", an4, meta, seed=3) == []


def test_stage5_bpe_from_copies_the_packaged_units(tmp_path):
    # continuing from shipped weights needs the shipped units: a sentencepiece retrained on the
    # grown training text gives other ones, and the output layer would silently mean other tokens
    root = LOCAL.parents[2]
    _copy_run_sh(tmp_path)
    shipped = root / "models" / "default" / "asr"
    r = subprocess.run(["bash", "run.sh", "--stage", "5", "--stop_stage", "5", "--bpe_from", str(shipped)],
                       cwd=tmp_path, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable})
    assert r.returncode == 0, r.stderr
    out = tmp_path / "data" / "token_list" / "bpe_unigram300"
    assert (out / "bpe.model").read_bytes() == (shipped / "bpe.model").read_bytes()
    units = yaml.safe_load((shipped / "config.yaml").read_text())["token_list"]
    assert (out / "tokens.txt").read_text().splitlines() == units
    assert not (out / "train.txt").exists()  # sentencepiece did not run


def _shipped_repo(tmp_path, lm_bpe=b"units"):
    # a repository with a shipped model (the LM and the ASR weights a run starts from), in git
    repo = tmp_path / "repo"
    for d in ("asr", "lm"):
        (repo / "models/default" / d).mkdir(parents=True)
    (repo / "models/default/lm/bpe.model").write_bytes(lm_bpe)
    (repo / "models/default/lm/valid.loss.ave.pth").write_bytes(b"lm weights")
    (repo / "models/default/asr/valid.acc.ave.pth").write_bytes(b"old asr weights")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "shipped"], check=True)
    sha = subprocess.run(git + ["log", "-1", "--format=%h"], capture_output=True, text=True).stdout.strip()
    recipe = repo / "recipes/default_model"
    exp = recipe / "exp/asr_new"
    (exp / "snapshot").mkdir(parents=True)
    torch.save({"w": torch.tensor([0.1, 2.0]), "steps": torch.tensor([3])}, exp / "snapshot/valid.acc.ave.pth")
    (exp / "snapshot/info.txt").write_text("valid.acc.ave.pth: average of epochs [3, 4]\n")
    cfg = {"token_list": ["<blank>", "a"], "bpemodel": "data/bpe.model",
           "normalize_conf": {"stats_file": "exp/stats.npz"},
           "init_param": ["../../models/default/asr/valid.acc.ave.pth"]}
    (exp / "config.yaml").write_text(yaml.safe_dump(cfg))
    (recipe / "data").mkdir()
    (recipe / "data/bpe.model").write_bytes(b"units")
    (recipe / "exp/stats.npz").write_bytes(b"stats")
    return repo, recipe, sha


def _package(recipe, repo, *extra):
    return subprocess.run([sys.executable, str(LOCAL / "package.py"), "--repo_root", str(repo),
                           "--asr_exp", "exp/asr_new", "--bpemodel", "data/bpe.model",
                           "--stats", "exp/stats.npz", *extra],
                          cwd=recipe, capture_output=True, text=True)


def test_package_without_lm_exp_keeps_the_shipped_lm_and_names_the_start_commit(tmp_path):
    # an ASR-only round ships the new acoustic weights beside the LM already shipped; the
    # provenance names the commit of the weights it started from, since they get overwritten
    repo, recipe, sha = _shipped_repo(tmp_path)
    r = _package(recipe, repo)
    assert r.returncode == 0, r.stderr
    root = repo / "models/default"
    # stored in float16 (integer buffers kept), and it says so; ESPnet's load_state_dict casts back
    new = torch.load(root / "asr/valid.acc.ave.pth", weights_only=True)
    assert new["w"].dtype == torch.float16 and new["w"].tolist() == [torch.tensor(0.1).half().item(), 2.0]
    assert new["steps"].dtype == torch.int64 and new["steps"].tolist() == [3]
    assert (root / "lm/valid.loss.ave.pth").read_bytes() == b"lm weights"
    meta = yaml.safe_load((root / "meta.yaml").read_text())
    assert meta["files"] == {"asr_model_file": "models/default/asr/valid.acc.ave.pth",
                             "lm_file": "models/default/lm/valid.loss.ave.pth"}
    cfg = yaml.safe_load((root / "asr/config.yaml").read_text())
    assert cfg["bpemodel"] == "models/default/asr/bpe.model"
    assert cfg["normalize_conf"]["stats_file"] == "models/default/asr/feats_stats.npz"
    prov = (root / "asr/PROVENANCE.txt").read_text()
    assert "average of epochs [3, 4]" in prov and f"(as shipped at commit {sha})" in prov
    assert "stored as float16" in prov


def test_package_weights_dtype_float32_ships_the_average_bit_for_bit(tmp_path):
    repo, recipe, _ = _shipped_repo(tmp_path)
    r = _package(recipe, repo, "--weights_dtype", "float32")
    assert r.returncode == 0, r.stderr
    new = torch.load(repo / "models/default/asr/valid.acc.ave.pth", weights_only=True)
    assert new["w"].dtype == torch.float32 and new["w"].tolist() == torch.tensor([0.1, 2.0]).tolist()
    shipped = (repo / "models/default/asr/valid.acc.ave.pth").read_bytes()
    assert shipped == (recipe / "exp/asr_new/snapshot/valid.acc.ave.pth").read_bytes()
    bad = _package(recipe, repo, "--weights_dtype", "int8")
    assert bad.returncode != 0 and "--weights_dtype" in bad.stderr and "float16" in bad.stderr


def test_package_without_lm_exp_refuses_an_lm_with_other_units(tmp_path):
    repo, recipe, _ = _shipped_repo(tmp_path, lm_bpe=b"other units")
    r = _package(recipe, repo)
    assert r.returncode != 0 and "--lm_exp" in r.stderr and "differ" in r.stderr
    assert (repo / "models/default/asr/valid.acc.ave.pth").read_bytes() == b"old asr weights"


def test_random_espeak_speakers_are_fixed_per_index_and_vary(monkeypatch):
    monkeypatch.syspath_prepend(str(LOCAL))
    from espeak_variants import variant_name, variant_text

    assert variant_text(7) == variant_text(7)  # rv007 is the same speaker in every set
    texts = [variant_text(k) for k in range(200)]
    assert len(set(texts)) == 200
    genders = {t.split("gender ")[1].split()[0] for t in texts}
    assert genders == {"male", "female"}
    for k, t in enumerate(texts):
        lines = t.splitlines()
        assert lines[:2] == ["language variant", f"name {variant_name(k)}"]
        formants = [ln.split() for ln in lines if ln.startswith("formant ")]
        assert [int(f[1]) for f in formants] == list(range(9))  # all nine, in espeak's order
        assert all(70 <= int(f[2]) <= 135 for f in formants)  # scaled, never a toy effect
    female_scale = [int(t.split("formant 0 ")[1].split()[0]) for t in texts if "gender female" in t]
    male_scale = [int(t.split("formant 0 ")[1].split()[0]) for t in texts if "gender male" in t]
    assert min(female_scale) > max(male_scale) - 3  # shorter vocal tracts for the female ones


def test_make_variants_keeps_espeak_under_its_voice_list_limit(tmp_path, monkeypatch):
    """espeak-ng lists at most 349 voice files and then cannot find even `en`: the copy keeps
    the English languages and the random variants only."""
    monkeypatch.syspath_prepend(str(LOCAL))
    import espeak_variants

    system = tmp_path / "system" / "espeak-ng-data"
    for f in ["lang/gmw/en", "lang/gmw/en-US", "lang/gmw/de", "lang/roa/fr", "voices/!v/m3",
              "voices/mb/mb-en1", "en_dict", "phontab"]:
        (system / f).parent.mkdir(parents=True, exist_ok=True)
        (system / f).write_text("x")
    monkeypatch.setattr(espeak_variants, "system_data_dir", lambda: system)
    root = espeak_variants.make_variants(tmp_path / "rv", range(3))
    data = root / "espeak-ng-data"
    files = sorted(str(p.relative_to(data)) for p in data.rglob("*") if p.is_file())
    assert files == ["en_dict", "lang/gmw/en", "lang/gmw/en-US", "phontab",
                     "voices/!v/rv000", "voices/!v/rv001", "voices/!v/rv002"]
    espeak_variants.make_variants(root, range(200, 202))  # a second range joins the same copy
    assert (data / "voices" / "!v" / "rv201").read_text() == espeak_variants.variant_text(201)
    with pytest.raises(ValueError, match="351 voice and language files, espeak-ng lists only 349"):
        espeak_variants.make_variants(root, range(1000, 1344))  # 7 files + 344 new
    assert not (data / "voices" / "!v" / "rv1000").exists()  # refused before writing


def test_var_voices_draw_random_speakers_and_never_the_unseen_ones(monkeypatch):
    monkeypatch.syspath_prepend(str(LOCAL))
    import random

    from synth_corpus import UNSEEN, var_voice

    rng = random.Random(0)
    voices = [var_voice(rng, range(0, 200)) for _ in range(3000)]
    assert not set(voices) & set(UNSEEN)
    rv = [v for v in voices if "+rv" in v]
    assert 0.55 < len(rv) / len(voices) < 0.65
    assert {int(v.split("+rv")[1]) for v in rv} <= set(range(200))  # the novel dev range (200+) stays out
    assert not any("gbcwmd" in v or "ked" in v for v in voices)


@pytest.mark.parametrize("bad", ["0:x", "5:5", "200", "-1:3"])
def test_bad_random_speaker_range_is_named(bad):
    proc = subprocess.run([sys.executable, str(LOCAL / "synth_corpus.py"), "--voices", "train_var",
                           f"--rv={bad}", "--out", "unused", "--text", "unused"],
                          capture_output=True, text=True, env={"PYTHONPATH": str(LOCAL)})
    assert proc.returncode == 2
    assert "--rv" in proc.stderr and "expected A:B with 0 <= A < B" in proc.stderr


def test_engine_voices_are_new_and_keep_the_held_out_and_unseen_ones_apart(monkeypatch):
    monkeypatch.syspath_prepend(str(LOCAL))
    from synth_corpus import ENGINES_TRAIN, FESTIVAL_TRAIN, FLITE, NOVEL_ENGINES, SEEN_TEST, UNSEEN

    older = {f"flite:{v}" for v in FLITE} | {f"festival:{v}" for v in FESTIVAL_TRAIN} | set(SEEN_TEST)
    assert not set(ENGINES_TRAIN) & (older | set(UNSEEN) | set(NOVEL_ENGINES))
    assert not any("ked" in v or "gbcwmd" in v for v in ENGINES_TRAIN + NOVEL_ENGINES)
    # the held-out MBROLA database is held out through both front-ends
    assert not any("us3" in v for v in ENGINES_TRAIN)
    # every new engine has a held-out voice for the dev gate
    assert {v.split(":")[0] for v in NOVEL_ENGINES} == {"pico", "rhvoice", "festival"}


def test_tts_drives_pico_and_rhvoice_with_rate_and_pitch(monkeypatch):
    monkeypatch.syspath_prepend(str(LOCAL))
    import random

    import synth_corpus

    calls = []
    monkeypatch.setattr(synth_corpus.subprocess, "run", lambda cmd, **kw: calls.append((cmd, kw)))
    synth_corpus.tts("pico:en-US", "hello there", random.Random(0), "/tmp/a.wav")
    synth_corpus.tts("rhvoice:bdl", "hello there", random.Random(0), "/tmp/b.wav")
    (pico, pico_kw), (rh, rh_kw) = calls
    assert pico[:5] == ["pico2wave", "-l", "en-US", "-w", "/tmp/a.wav"]
    assert pico[5].startswith("<speed level='") and "hello there</pitch></speed>" in pico[5]
    assert pico_kw["input"] is None
    assert rh[:3] == ["RHVoice-test", "-p", "bdl"] and rh[-2:] == ["-o", "/tmp/b.wav"]
    assert 80 <= int(rh[rh.index("-r") + 1]) <= 125 and 85 <= int(rh[rh.index("-t") + 1]) <= 120
    assert rh_kw["input"] == "hello there\n"
    with pytest.raises(ValueError, match="unknown engine 'mimic'.*choices: flite, espeak"):
        synth_corpus.tts("mimic:ap", "hello", random.Random(0), "/tmp/c.wav")


def test_tts_drives_piper_in_process_with_rate_and_prosody(tmp_path, monkeypatch):
    # no Piper here: a fake voice records what tts() asks of it; wave's header must be written
    import random
    monkeypatch.syspath_prepend(str(LOCAL))
    import synth_corpus
    asked = []

    class FakeVoice:
        def synthesize_wav(self, text, w, syn_config):
            asked.append((text, syn_config))
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(22050), w.writeframes(b"\0\0" * 100)

    monkeypatch.setattr(synth_corpus, "piper_voice", lambda name: (FakeVoice(), dict))
    synth_corpus.tts("piper:joe", "hello there", random.Random(0), str(tmp_path / "a.wav"))
    (text, cfg), = asked
    assert text == "hello there" and 0.8 <= cfg["length_scale"] <= 1.25
    assert 0.45 <= cfg["noise_scale"] <= 0.85 and 0.6 <= cfg["noise_w_scale"] <= 1.0
    assert synth_corpus.load16k(str(tmp_path / "a.wav")).shape[0] > 0  # a readable 22.05 kHz file


def test_piper_voice_names_the_choices_and_the_missing_package(monkeypatch):
    monkeypatch.syspath_prepend(str(LOCAL))
    import synth_corpus
    synth_corpus.piper_voice.cache_clear()
    with pytest.raises(ValueError, match="piper voice 'amy': choices \\['joe'\\]"):
        synth_corpus.piper_voice("amy")
    monkeypatch.setitem(sys.modules, "piper", None)  # as if piper-tts were not installed
    with pytest.raises(SystemExit, match="'piper' is missing.*uv pip install -e '.\\[piper\\]'"):
        synth_corpus.piper_voice("joe")
    synth_corpus.piper_voice.cache_clear()


def test_run_sh_stage2_sets_draw_disjoint_sentences_from_each_pool(tmp_path):
    # a fake interpreter (echo) prints each synthesis command instead of running it
    _copy_run_sh(tmp_path)
    r = subprocess.run(["bash", "run.sh", "--stage", "2", "--stop_stage", "2", "--extra", "2", "--wide", "4",
                        "--var", "2", "--engines", "3", "--piper", "1", "--accent", "2"], cwd=tmp_path,
                       capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "PYTHON": "/bin/echo"})
    assert r.returncode == 0, r.stderr
    spans = {}  # pool -> [(first, end), ...] in set order
    for line in r.stdout.splitlines():
        if "--text " not in line:
            continue  # the stage's log line
        for spec in line.split("--text ")[1].split():
            pool, n, *skip = Path(spec).name.split(":")
            if pool.startswith("pool_") and pool != "pool_digits.txt":  # not the dev sets
                start = int(skip[0]) if skip else 0
                spans.setdefault(pool, []).append((start, start + int(n)))
    assert set(spans) == {"pool_lj.txt", "pool_nltk.txt", "pool_wordnet.txt"}
    for pool, s in spans.items():
        assert len(s) == 7  # train, extra, wide, var, engines, piper, accent
        assert all(a[1] == b[0] for a, b in zip(s, s[1:])), (pool, s)  # each starts where the last ended


def test_run_sh_stage2_dev_sets_take_disjoint_validation_lines(tmp_path):
    # synth_dev, synth_dev_novel, synth_dev_engines and synth_dev_wordnet each read their own lines
    # of valid.txt; dev_wordnet's are its WordNet part (lines 501-800, stage 1's order); valid.txt
    # has no more, so synth_dev_piper re-reads synth_dev_engines' lines in its own voice
    _copy_run_sh(tmp_path)
    r = subprocess.run(["bash", "run.sh", "--stage", "2", "--stop_stage", "2", "--var", "1", "--engines", "1",
                        "--piper", "1", "--accent", "1", "--dev_wordnet", "true"], cwd=tmp_path,
                       capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "PYTHON": "/bin/echo"})
    assert r.returncode == 0, r.stderr
    spans = {}
    for line in r.stdout.splitlines():
        if "valid.txt:" in line:
            n, *skip = line.split("valid.txt:")[1].split()[0].split(":")
            start = int(skip[0]) if skip else 0
            spans[line.split("--out ")[1].split()[0]] = range(start, start + int(n))
    assert spans == {"data/synth_dev": range(0, 200), "data/synth_dev_novel": range(200, 350),
                     "data/synth_dev_engines": range(350, 500), "data/synth_dev_piper": range(350, 500),
                     "data/synth_dev_accent": range(200, 350), "data/synth_dev_wordnet": range(500, 800)}
    accents = [l for l in r.stdout.splitlines() if "--voices novel_accent" in l or "--voices train_accent" in l]
    ra = [l.split("--ra ")[1].split()[0] for l in accents]
    assert ra == ["0:150", "1000:1040"]  # training's accents and the dev set's are disjoint
    wordnet = [l for l in r.stdout.splitlines() if "synth_dev_wordnet" in l][0]
    assert "--voices train " in wordnet and "--snr 15 25" in wordnet  # training voices, the test's noise


def test_wordnet_glosses_skip_synsets_of_held_out_examples(tmp_path, monkeypatch):
    # a definition of a word a test sentence exemplifies would tell the LM that word's company
    monkeypatch.syspath_prepend(str(LOCAL))
    import prepare_text

    for pos in ("noun", "verb", "adj", "adv"):
        (tmp_path / f"data.{pos}").write_text("  licence header line\n" + (
            '01 03 n 01 ibuprofen 0 000 | a medicine for pain; sold as tablets; '
            '"daily use of ibuprofen can irritate the stomach"\n'
            '02 03 n 01 aspirin 0 000 | the acetylated salicylic acid; '
            '"aspirin relieves headaches quickly"\n' if pos == "noun" else ""))
    monkeypatch.setattr(prepare_text, "WORDNET", tmp_path)
    held = {"DAILY USE OF IBUPROFEN CAN IRRITATE THE STOMACH"}
    def parts(held):
        return [g.strip() for g in prepare_text.wordnet_glosses(held) if g.strip()]

    assert parts(held) == ["the acetylated salicylic acid"]  # the quoted example is not a gloss
    assert parts(set()) == ["a medicine for pain", "sold as tablets", "the acetylated salicylic acid"]


def _stage6(tmp_path, glosses):
    _copy_run_sh(tmp_path)
    text = tmp_path / "data/local/text"
    text.mkdir(parents=True)
    (text / "lm_train.txt").write_text("A B\nC D\n")
    (text / "lm_glosses.txt").write_text("E F\nG\nH\nI\nJ\n")
    (text / "valid.txt").write_text("G H\n")
    return subprocess.run(["bash", "run.sh", "--stage", "6", "--stop_stage", "6", "--glosses", glosses],
                          cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": "/bin/true"})


@pytest.mark.parametrize("glosses, added", [("false", []), ("true", ["E F", "G", "H", "I", "J"]),
                                            ("1", ["E F", "G", "H", "I", "J"]), ("4", ["E F", "J"])])
def test_run_sh_stage6_adds_the_glosses_to_the_lm_text_only_when_asked(tmp_path, glosses, added):
    r = _stage6(tmp_path, glosses)
    assert r.returncode == 0, r.stderr
    lines = (tmp_path / "dump/lm/train.txt").read_text().splitlines()
    assert lines[:2] == ["lm000001 A B", "lm000002 C D"]  # ids unique across both files
    assert lines[2:] == [f"lm{i + 3:06d} {t}" for i, t in enumerate(added)]  # every Nth, from the first


@pytest.mark.parametrize("option, bad, expected", [("--ngram_order", "1", "a whole number >= 2"),
                                                   ("--ngram_order", "six", "a whole number >= 2"),
                                                   ("--ngram_glosses", "yes", "true or false"),
                                                   ("--ngram_package", "no", "true or false")])
def test_run_sh_refuses_a_bad_ngram_option_before_any_stage(tmp_path, option, bad, expected):
    _copy_run_sh(tmp_path)
    r = subprocess.run(["bash", "run.sh", "--stage", "17", "--stop_stage", "17", option, bad], cwd=tmp_path,
                       capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "PYTHON": "/bin/echo"})
    assert r.returncode == 2 and r.stderr == f"run.sh {option} {bad}: expected {expected}\n"
    assert not (tmp_path / "exp").exists()  # stage 17 did not start


@pytest.mark.parametrize("package", ["true", "false"])
def test_run_sh_stage17_packages_the_ngram_beside_the_shipped_model_unless_told_not_to(tmp_path, package):
    # fake tokenizer (copies --input to --output), lmplz (stdin to stdout), build_binary (copies)
    recipe = tmp_path / "repo/recipes/default_model"
    recipe.mkdir(parents=True)
    _copy_run_sh(recipe)
    text = recipe / "data/local/text"
    text.mkdir(parents=True)
    (text / "lm_train.txt").write_text("A B\n")
    (text / "lm_glosses.txt").write_text("C\n")
    kenlm = tmp_path / "kenlm"
    kenlm.mkdir()
    scripts = {kenlm / "lmplz": "cat", kenlm / "build_binary": 'for a; do i=$o; o=$a; done; cp "$i" "$o"',
               tmp_path / "python": 'while [ $# -gt 0 ]; do case "$1" in --input) i=$2;; --output) o=$2;; esac; '
                                    'shift; done; cp "$i" "$o"'}
    for path, body in scripts.items():
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    r = subprocess.run(["bash", "run.sh", "--stage", "17", "--stop_stage", "17", "--kenlm_bin", str(kenlm),
                        "--ngram_package", package], cwd=recipe, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "PYTHON": str(tmp_path / "python")})
    assert r.returncode == 0, r.stderr
    assert (recipe / "exp/ngram/4gram.bin").read_text() == "A B\nC\n"  # the LM text and the glosses
    shipped = tmp_path / "repo/models/default/ngram"
    if package == "true":
        assert (shipped / "4gram.bin").read_text() == "A B\nC\n"
        assert "lmplz -o 4" in (shipped / "PROVENANCE.txt").read_text()
        assert "packaged: models/default/ngram/4gram.bin" in r.stdout
    else:
        assert not shipped.exists()  # a candidate for stage 16 leaves the shipped n-gram alone
        assert "use it: asr-compress model.ngram_file=recipes/default_model/exp/ngram/4gram.bin" in r.stdout


def test_run_sh_stage16_gates_an_ngram_at_its_weights_with_the_shipped_setting(tmp_path):
    ngram = tmp_path / "6gram.bin"
    ngram.write_bytes(b"kenlm")
    _, calls = _run_stage16(tmp_path, "--gate_ngram", str(ngram), "--gate_ngram_weight", "0.3,0.6")
    shipped, cand = [c for c in calls if c.startswith("asr-compress")]
    assert "decode." not in shipped  # the shipped setting, conf/decode/default_model.yaml's
    assert _grid(cand) == {"decode.ngram_weight": [0.3, 0.6]}


@pytest.mark.parametrize("option, bad", [("--piper", "x"), ("--engines", "-1"), ("--extra", "2.5"),
                                         ("--lj_more", "")])
def test_run_sh_refuses_a_count_that_is_not_a_whole_number_before_any_stage(tmp_path, option, bad):
    # bash's [ x -gt 0 ] only warns and is false: --piper x once ran stage 2 without the set
    _copy_run_sh(tmp_path)
    r = subprocess.run(["bash", "run.sh", "--stage", "2", "--stop_stage", "2", option, bad], cwd=tmp_path,
                       capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "PYTHON": "/bin/echo"})
    assert r.returncode == 2 and r.stdout == ""  # the fake interpreter echoed nothing: no stage ran
    assert f"run.sh {option} {bad}: expected a whole number >= 0" in r.stderr


@pytest.mark.parametrize("bad", ["yes", "0", "-2", ""])
def test_run_sh_refuses_a_glosses_value_before_any_stage(tmp_path, bad):
    r = _stage6(tmp_path, bad)
    assert r.returncode == 2
    assert f"--glosses {bad}: expected false, true or N >= 1" in r.stderr
    assert not (tmp_path / "dump").exists()


def test_run_sh_passes_lm_args_to_lm_training_after_the_config(tmp_path):
    argv = _training_argv(tmp_path, "7", "--lm_init", "lm.pth", "--lm_args", "--optim_conf lr=0.0005 --max_epoch 6")
    assert argv[argv.index("--init_param") + 1] == "lm.pth"
    assert argv[argv.index("--config") + 2:] == ["--optim_conf", "lr=0.0005", "--max_epoch", "6"]


def _fake_tools(tmp_path):
    """A fake interpreter and asr-compress that append their command lines to tmp_path/calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("python", "asr-compress"):
        (bin_dir / name).write_text(f'#!/bin/sh\necho "$(basename "$0") $*" >> "{tmp_path}/calls"\n')
        (bin_dir / name).chmod(0o755)
    return bin_dir / "python"


def _run_stage16(tmp_path, *options):
    """Stage 16 with fake tools in a made-up repository (shipped model, dev sets, candidate
    directories cand_asr and cand_lm): the recipe folder and the recorded command lines."""
    recipe = tmp_path / "repo/recipes/default_model"
    recipe.mkdir(parents=True)
    _copy_run_sh(recipe)
    for name, n in (("dump/raw/dev", 4), ("data/synth_dev_novel", 3)):
        (recipe / name).mkdir(parents=True)
        (recipe / name / "wav.scp").write_text("".join(f"u{i} a/u{i}.wav\n" for i in range(n)))
        (recipe / name / "text").write_text("".join(f"u{i} W{i}\n" for i in range(n)))
    for d in ("cand_asr", "cand_lm", "repo/models/default/asr", "repo/models/default/lm"):
        (tmp_path / d).mkdir(parents=True)
        (tmp_path / d / "config.yaml").write_text("x: 1\n")
    r = subprocess.run(["bash", "run.sh", "--stage", "16", "--stop_stage", "16", *options],
                       cwd=recipe, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "PYTHON": str(_fake_tools(tmp_path))})
    assert r.returncode == 0, r.stderr
    return recipe, (tmp_path / "calls").read_text().splitlines()


@pytest.mark.parametrize("grid", ["false", "true"])
def test_run_sh_stage16_decodes_shipped_then_candidate_on_the_dev_half_and_named_sets(tmp_path, grid):
    cand = tmp_path / "cand_lm"
    recipe, calls = _run_stage16(tmp_path, "--gate_lm", str(cand), "--gate_sets", "synth_dev_novel",
                                 "--gate_grid", grid)
    half = (recipe / "exp/gate/dev/data/wav.scp").read_text().splitlines()
    assert half == [f"u0 {recipe}/a/u0.wav", f"u2 {recipe}/a/u2.wav"]  # stage 14's half, absolute
    assert (recipe / "exp/gate/dev/data/text").read_text() == "u0 W0\nu2 W2\n"
    assert len((recipe / "exp/gate/synth_dev_novel/data/wav.scp").read_text().splitlines()) == 3
    decodes = [c for c in calls if c.startswith("asr-compress")]
    assert [("lm_exp_dir=" in c, c.split("hydra.sweep.dir=")[1]) for c in decodes] == [
        (False, "recipes/default_model/exp/gate/dev/shipped"), (True, "recipes/default_model/exp/gate/dev/candidate"),
        (False, "recipes/default_model/exp/gate/synth_dev_novel/shipped"),
        (True, "recipes/default_model/exp/gate/synth_dev_novel/candidate")]
    assert f"model.lm_exp_dir={cand}" in decodes[1]
    assert all(("decode.lm_weight=" in c) == (grid == "true") for c in decodes)
    assert calls[-1].endswith("recipes/default_model/exp/gate/synth_dev_novel/candidate")
    assert "local/gate.py --out recipes/default_model/exp/gate/GATE.md" in calls[-1]


def _grid(call):
    """The decode.* overrides of a recorded asr-compress command line, as {key: [values]}."""
    words = [w.split("=", 1) for w in call.split() if w.startswith("decode.")]
    return {k: [float(v) for v in vals.split(",")] for k, vals in words}


@pytest.mark.parametrize("candidate", [["--gate_lm"], ["--gate_asr"], ["--gate_asr", "--gate_lm"]])
def test_run_sh_stage16_grid_skips_the_lm_weight_0_cells_of_an_lm_only_candidate(tmp_path, candidate):
    # an LM-only candidate's lm_weight=0 cells would decode the shipped ASR without an LM again:
    # the shipped side's are the same, and gate.py is told to take them
    options = [w for opt in candidate for w in (opt, str(tmp_path / ("cand_lm" if opt == "--gate_lm" else "cand_asr")))]
    _, calls = _run_stage16(tmp_path, *options, "--gate_sets", "synth_dev_novel", "--gate_grid", "true")
    decodes = [c for c in calls if c.startswith("asr-compress")]
    full = {"decode.lm_weight": [0, 0.3, 0.5, 0.7], "decode.penalty": [0.5, 1, 1.5, 2], "decode.ngram_weight": [0, 0.3]}
    lm_only = candidate == ["--gate_lm"]
    for shipped, cand in (decodes[0:2], decodes[2:4]):
        assert "sweep.dir=recipes/default_model/exp/gate/" in shipped and shipped.endswith("/shipped")
        assert _grid(shipped) == full
        assert _grid(cand) == ({**full, "decode.lm_weight": [0.3, 0.5, 0.7]} if lm_only else full)
        assert "decode=generic" in cand.split()
    assert ("gate.py --out recipes/default_model/exp/gate/GATE.md --lm-only-candidate " in calls[-1]) == lm_only


def test_run_sh_stage16_gates_an_ngram_with_the_shipped_model_on_the_full_grid(tmp_path):
    ngram = tmp_path / "6gram.bin"
    ngram.write_bytes(b"kenlm")
    _, calls = _run_stage16(tmp_path, "--gate_ngram", str(ngram), "--gate_ngram_weight", "0.3,0.6", "--gate_grid", "true")
    shipped, cand = [c for c in calls if c.startswith("asr-compress")]
    assert "model.ngram_file" not in shipped and f"model.ngram_file={ngram}" in cand.split()
    assert "model.exp_dir=" in cand and "model.lm_exp_dir=" in cand  # the shipped ASR and LM, named
    # the n-gram scores in the LM weight 0 cells too: they are the candidate's own, not lent; its
    # weights take the place of the grid's (the shipped side sweeps the shipped n-gram's)
    assert _grid(shipped)["decode.ngram_weight"] == [0, 0.3]
    assert _grid(cand) == {"decode.lm_weight": [0, 0.3, 0.5, 0.7], "decode.penalty": [0.5, 1, 1.5, 2],
                           "decode.ngram_weight": [0.3, 0.6]}
    assert "--lm-only-candidate" not in calls[-1]


@pytest.mark.parametrize("option, bad, message", [
    ("--gate_asr", "nope", "--gate_asr/--gate_lm: {}/nope has no config.yaml"),
    ("--gate_ngram", "nope.bin", "--gate_ngram: {}/nope.bin is not a file"),
])
def test_run_sh_stage16_names_a_candidate_that_is_not_there(tmp_path, option, bad, message):
    _copy_run_sh(tmp_path)
    r = subprocess.run(["bash", "run.sh", "--stage", "16", "--stop_stage", "16", option, str(tmp_path / bad)],
                       cwd=tmp_path, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "PYTHON": str(_fake_tools(tmp_path))})
    assert r.returncode == 2 and message.format(tmp_path) in r.stderr
    assert not (tmp_path / "calls").exists()  # nothing decoded


def test_run_sh_stage16_refuses_to_gate_the_shipped_model_against_itself(tmp_path):
    _copy_run_sh(tmp_path)
    _fake_tools(tmp_path)
    # no candidate at all would decode the shipped model against itself
    r = subprocess.run(["bash", "run.sh", "--stage", "16", "--stop_stage", "16"], cwd=tmp_path,
                       capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "PYTHON": str(tmp_path / "bin" / "python")})
    assert r.returncode == 2 and "give --gate_asr and/or --gate_lm" in r.stderr
    assert not (tmp_path / "calls").exists()


def _sweep(path, runs, model=None):
    """A made-up asr-compress sweep: one metrics.json per (lm_weight, penalty, errors)."""
    import json

    model = model or {"name": path.name}
    for i, (w, p, e) in enumerate(runs):
        (path / str(i)).mkdir(parents=True)
        (path / str(i) / "metrics.json").write_text(json.dumps({
            "wer": e / 100, "substitutions": e, "deletions": 0, "insertions": 0, "n_words": 100,
            "n_utterances": 10, "decode": {"lm_weight": w, "penalty": p},
            "model": model, "data": {"name": "dev"}}))


def test_gate_table_compares_the_best_settings_in_words(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(LOCAL))
    from gate import gate_table, main

    _sweep(tmp_path / "dev/shipped", [(0.5, 1.0, 9)])
    _sweep(tmp_path / "dev/candidate", [(0.5, 1.0, 8), (0.7, 1.0, 6), (0.3, 0.0, 6)])  # tie -> smaller weight
    table = gate_table([("dev", tmp_path / "dev/shipped", tmp_path / "dev/candidate")])
    assert ("| dev | 10 / 100 | lm_weight 0.5, penalty 1 (1 tried): 9, 9.00% | "
            "lm_weight 0.3, penalty 0 (3 tried): 6, 6.00% | -3 |") in table
    _sweep(tmp_path / "novel/shipped", [(0.5, 1.0, 9)])
    with pytest.raises(SystemExit):  # pairs only
        main([str(tmp_path / "dev/shipped"), str(tmp_path / "dev/candidate"), str(tmp_path / "novel/shipped"),
              "--out", str(tmp_path / "GATE.md")])


def test_gate_table_names_the_ngram_weight_of_an_ngram_candidate(tmp_path, monkeypatch):
    import json

    monkeypatch.syspath_prepend(str(LOCAL))
    from gate import gate_table

    _sweep(tmp_path / "dev/shipped", [(0.5, 1.0, 9)])
    _sweep(tmp_path / "dev/candidate", [(0.5, 1.0, 8), (0.5, 1.5, 7)], {"name": "default", "ngram_file": "/x/6gram.bin"})
    for i, w in enumerate((0.3, 0.6)):  # the n-gram weight each run decoded with
        f = tmp_path / "dev/candidate" / str(i) / "metrics.json"
        m = json.loads(f.read_text())
        m["decode"]["ngram_weight"] = w
        f.write_text(json.dumps(m))
    table = gate_table([("dev", tmp_path / "dev/shipped", tmp_path / "dev/candidate")])
    assert ("lm_weight 0.5, penalty 1 (1 tried): 9, 9.00% | "
            "lm_weight 0.5, penalty 1.5, ngram_weight 0.6 (2 tried): 7, 7.00% | -2 |") in table


def _lm_only_sweeps(tmp_path, shipped_runs, cand_runs, cand_asr="w1"):
    """A shipped and a candidate sweep whose models share the ASR files (weights hash cand_asr)."""
    asr = {"asr_config_sha256": "c1", "asr_weights_sha256": "w1"}
    _sweep(tmp_path / "dev/shipped", shipped_runs, {"name": "default", **asr, "lm_weights_sha256": "l1"})
    _sweep(tmp_path / "dev/candidate", cand_runs,
           {"name": "default", **asr, "asr_weights_sha256": cand_asr, "lm_weights_sha256": "l2"})
    return tmp_path / "dev/shipped", tmp_path / "dev/candidate"


SHIPPED_GRID = [(0.0, 0.0, 12), (0.0, 1.0, 7), (0.5, 0.0, 10), (0.5, 1.0, 9)]


@pytest.mark.parametrize("cand_runs, best", [
    ([(0.5, 0.0, 11), (0.5, 1.0, 8)], "lm_weight 0, penalty 1 (4 tried): 7, 7.00% | +0 |"),  # a lent cell wins
    ([(0.5, 0.0, 11), (0.5, 1.0, 7)], "lm_weight 0, penalty 1 (4 tried): 7, 7.00% | +0 |"),  # tie: smaller weight
    ([(0.5, 0.0, 11), (0.5, 1.0, 5)], "lm_weight 0.5, penalty 1 (4 tried): 5, 5.00% | -2 |"),  # its own
])
def test_gate_lm_only_candidate_takes_the_lm_weight_0_cells_from_the_shipped_side(tmp_path, monkeypatch,
                                                                                   cand_runs, best):
    monkeypatch.syspath_prepend(str(LOCAL))
    from gate import main

    shipped, cand = _lm_only_sweeps(tmp_path, SHIPPED_GRID, cand_runs)
    main([str(shipped), str(cand), "--lm-only-candidate", "--out", str(tmp_path / "GATE.md")])
    text = (tmp_path / "GATE.md").read_text()
    assert "| dev | 10 / 100 | lm_weight 0, penalty 1 (4 tried): 7, 7.00% | " + best in text
    assert text.endswith("\nlm_weight=0 cells: the shipped side's (LM-only candidate: same ASR, no LM).\n")
    # without the option the candidate's sweep stands alone, and GATE.md says nothing of lent cells
    main([str(shipped), str(cand), "--out", str(tmp_path / "GATE.md")])
    assert "(2 tried)" in (tmp_path / "GATE.md").read_text() and "lm_weight=0 cells" not in (tmp_path / "GATE.md").read_text()


@pytest.mark.parametrize("shipped_runs, cand_runs, cand_asr, message", [
    (SHIPPED_GRID, [(0.0, 1.0, 7), (0.5, 1.0, 8)], "w1", "has decode.lm_weight=0 runs of its own"),
    ([(0.5, 1.0, 9)], [(0.5, 1.0, 8)], "w1", "has no decode.lm_weight=0 run to lend"),
    (SHIPPED_GRID, [(0.5, 1.0, 8)], "w2", r"its ASR files are not .*shipped's \(asr_weights_sha256 not the same\)"),
])
def test_gate_lm_only_candidate_refuses_sweeps_it_cannot_complete(tmp_path, monkeypatch, shipped_runs, cand_runs,
                                                                   cand_asr, message):
    monkeypatch.syspath_prepend(str(LOCAL))
    from gate import gate_table

    shipped, cand = _lm_only_sweeps(tmp_path, shipped_runs, cand_runs, cand_asr)
    with pytest.raises(ValueError, match=message):
        gate_table([("dev", shipped, cand)], lm_only=True)


def test_gate_lm_only_candidate_refuses_runs_that_do_not_record_their_asr_files(tmp_path, monkeypatch):
    # without the hashes nothing shows that the two sides share the ASR
    monkeypatch.syspath_prepend(str(LOCAL))
    from gate import gate_table

    _sweep(tmp_path / "dev/shipped", SHIPPED_GRID)
    _sweep(tmp_path / "dev/candidate", [(0.5, 1.0, 8)])
    with pytest.raises(ValueError, match="asr_config_sha256, asr_weights_sha256 not the same"):
        gate_table([("dev", tmp_path / "dev/shipped", tmp_path / "dev/candidate")], lm_only=True)


def test_random_accents_are_fixed_per_index_vary_and_never_use_the_unseen_accents_table(monkeypatch):
    monkeypatch.syspath_prepend(str(LOCAL))
    from espeak_accents import CONSONANTS, SHIFTS, TABLES, accent_name, accent_text

    assert accent_text(3) == accent_text(3)  # en-x-ra003 is the same accent in every set
    texts = [accent_text(k) for k in range(300)]
    assert len(set(texts)) == 300
    assert "en-wm" not in TABLES and not any("en-wm" in t for t in texts)
    tables = {ln.split()[1] for t in texts for ln in t.splitlines() if ln.startswith("phonemes ")}
    assert tables == set(TABLES) - {""}  # every base table is drawn, and the default one (no line)
    assert any("phonemes" not in t for t in texts)
    allowed = {(v, r) for v, rs in SHIFTS.items() for r in rs} | {(p, r) for _, _, p, r in CONSONANTS}
    for k, t in enumerate(texts):
        lines = t.splitlines()
        assert lines[:2] == [f"name {accent_name(k)}", f"language {accent_name(k)}"]
        shifts = [ln.split()[1:] for ln in lines if ln.startswith("replace ")]
        assert all(flags in ("00", "02", "03") and (ph, repl) in allowed for flags, ph, repl in shifts)
        assert 1 <= sum(ph in SHIFTS for _, ph, _ in shifts) <= 4  # one to four vowel shifts


def test_make_accents_refuses_more_voices_than_espeak_lists(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(LOCAL))
    import espeak_accents

    with pytest.raises(FileNotFoundError, match="make the espeak-ng-data copy first"):
        espeak_accents.make_accents(tmp_path / "none", range(2))
    data = tmp_path / "ra" / "espeak-ng-data"
    (data / "lang" / "gmw").mkdir(parents=True)
    (data / "voices" / "!v").mkdir(parents=True)
    for k in range(300):
        (data / "voices" / "!v" / f"rv{k:03d}").write_text("x")
    espeak_accents.make_accents(tmp_path / "ra", range(40))
    assert (data / "lang" / "gmw" / "en-x-ra039").read_text() == espeak_accents.accent_text(39)
    with pytest.raises(ValueError, match="360 voice and language files, espeak-ng lists only 349.*smaller --ra/--rv range"):
        espeak_accents.make_accents(tmp_path / "ra", range(40, 60))
    assert not (data / "lang" / "gmw" / "en-x-ra040").exists()  # refused before writing


def test_accent_voices_pair_random_accents_with_random_speakers(monkeypatch):
    monkeypatch.syspath_prepend(str(LOCAL))
    import random

    from synth_corpus import UNSEEN, train_accent_voice

    rng = random.Random(0)
    voices = [train_accent_voice(rng, range(0, 150), range(0, 100)) for _ in range(3000)]
    acc = [v for v in voices if "en-x-ra" in v]
    assert 0.55 < len(acc) / len(voices) < 0.65
    assert {int(v.split("en-x-ra")[1][:3]) for v in acc} <= set(range(150))  # not the dev set's 1000+
    assert all("+rv" in v for v in acc)  # the data copy holds only the random variants
    assert not set(voices) & set(UNSEEN) and not any("gbcwmd" in v for v in voices)


def test_espeak_gets_the_data_copy_for_random_accents(monkeypatch):
    monkeypatch.syspath_prepend(str(LOCAL))
    import random

    import synth_corpus

    calls = []
    monkeypatch.setattr(synth_corpus.subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    synth_corpus.tts("espeak:en-x-ra004+rv010", "hello", random.Random(0), "/tmp/a.wav", espeak_root="/r")
    synth_corpus.tts("espeak:en-us+m3", "hello", random.Random(0), "/tmp/a.wav", espeak_root="/r")
    assert calls[0][:4] == ["espeak-ng", "--path=/r", "-v", "en-x-ra004+rv010"]
    assert calls[1][:3] == ["espeak-ng", "-v", "en-us+m3"]  # the system's voices, as before


def _average(recipe, repo, *args):
    return subprocess.run([sys.executable, str(LOCAL / "average_models.py"), "--repo_root", str(repo),
                           "--out", "exp/asr_soup", *args], cwd=recipe, capture_output=True, text=True)


def test_average_models_writes_a_packageable_float32_mean_and_names_its_inputs(tmp_path):
    # a float16 package averaged with a float32 snapshot: the mean is taken in float32, integer
    # buffers floor-averaged as ESPnet does, and stage 11's package.py packages the folder
    repo, recipe, sha = _shipped_repo(tmp_path)
    shipped = repo / "models/default/asr/valid.acc.ave.pth"
    torch.save({"w": torch.tensor([0.3, 4.0]).half(), "steps": torch.tensor([6])}, shipped)
    r = _average(recipe, repo, "--config", "exp/asr_new/config.yaml", "--stats", "exp/stats.npz",
                 "../../models/default/asr/valid.acc.ave.pth", "exp/asr_new/snapshot/valid.acc.ave.pth")
    assert r.returncode == 0, r.stderr
    soup = recipe / "exp/asr_soup"
    avg = torch.load(soup / "snapshot/valid.acc.ave.pth", weights_only=True)
    want = (torch.tensor([0.3, 4.0]).half().float() + torch.tensor([0.1, 2.0])) / 2
    assert avg["w"].dtype == torch.float32 and torch.equal(avg["w"], want)
    assert avg["steps"].tolist() == [4]  # floor((6 + 3) / 2)
    info = (soup / "snapshot/info.txt").read_text()
    assert "uniform average of 2 weight sets" in info and f"(as shipped at commit {sha})" in info
    assert "exp/asr_new/snapshot/valid.acc.ave.pth" in info
    assert (soup / "feats_stats.npz").read_bytes() == b"stats"
    p = subprocess.run([sys.executable, str(LOCAL / "package.py"), "--repo_root", str(repo),
                        "--asr_exp", "exp/asr_soup", "--bpemodel", "data/bpe.model",
                        "--stats", "exp/asr_soup/feats_stats.npz"], cwd=recipe, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "uniform average of 2" in (repo / "models/default/asr/PROVENANCE.txt").read_text()


@pytest.mark.parametrize("other, said", [
    ({"w": torch.tensor([1.0, 2.0, 3.0]), "steps": torch.tensor([1])}, "has shape (3,)"),
    ({"v": torch.tensor([1.0, 2.0]), "steps": torch.tensor([1])}, "hold different tensors"),
])
def test_average_models_refuses_weights_of_another_architecture(tmp_path, other, said):
    repo, recipe, _ = _shipped_repo(tmp_path)
    torch.save(other, recipe / "other.pth")
    r = _average(recipe, repo, "--config", "exp/asr_new/config.yaml", "--stats", "exp/stats.npz",
                 "exp/asr_new/snapshot/valid.acc.ave.pth", "other.pth")
    assert r.returncode != 0 and said in r.stderr and "other.pth" in r.stderr
    assert not (recipe / "exp/asr_soup/snapshot/valid.acc.ave.pth").exists()


def test_average_models_needs_two_existing_inputs(tmp_path):
    repo, recipe, _ = _shipped_repo(tmp_path)
    args = ["--config", "exp/asr_new/config.yaml", "--stats", "exp/stats.npz"]
    one = _average(recipe, repo, *args, "exp/asr_new/snapshot/valid.acc.ave.pth")
    assert one.returncode != 0 and "two or more" in one.stderr
    missing = _average(recipe, repo, *args, "exp/asr_new/snapshot/valid.acc.ave.pth", "nope.pth")
    assert missing.returncode != 0 and "nope.pth does not exist" in missing.stderr


def test_average_states_takes_a_generator_and_leaves_its_inputs_alone(monkeypatch):
    # stage 10 streams the epoch files through it, one loaded at a time
    monkeypatch.syspath_prepend(str(LOCAL))
    from snapshot_model import average_states

    states = [{"w": torch.tensor([1.0, 2.0]), "n": torch.tensor([1])},
              {"w": torch.tensor([2.0, 4.0]), "n": torch.tensor([2])},
              {"w": torch.tensor([3.0, 9.0]), "n": torch.tensor([2])}]
    avg = average_states(s for s in states)
    assert avg["w"].tolist() == [2.0, 5.0] and avg["n"].tolist() == [1]  # floor(5 / 3)
    assert states[0]["w"].tolist() == [1.0, 2.0]


def _tiny_lm_files(tmp_path, layers, grown_layers):
    """A trained-LM stand-in (random weights, ESPnet's `lm.` keys) and a config with more layers."""
    from espnet2.lm.transformer_lm import TransformerLM

    conf = dict(pos_enc=None, embed_unit=8, att_unit=16, head=2, unit=32, layer=layers, dropout_rate=0.1)
    torch.manual_seed(1)
    src = {f"lm.{k}": v for k, v in TransformerLM(20, **conf).state_dict().items()}
    torch.save(src, tmp_path / "lm.pth")
    (tmp_path / "grow.yaml").write_text(yaml.safe_dump({"lm": "transformer",
                                                        "lm_conf": dict(conf, layer=grown_layers)}))
    return src


def _grow(tmp_path, *extra):
    return subprocess.run([sys.executable, str(LOCAL / "grow_lm.py"), "--init", str(tmp_path / "lm.pth"),
                           "--config", str(tmp_path / "grow.yaml"), "--out", str(tmp_path / "grown.pth"),
                           *extra], capture_output=True, text=True)


def test_grow_lm_keeps_the_trained_layers_and_adds_identity_layers(tmp_path):
    from espnet2.lm.transformer_lm import TransformerLM

    src = _tiny_lm_files(tmp_path, layers=2, grown_layers=3)
    r = _grow(tmp_path)
    assert r.returncode == 0, r.stderr
    grown = torch.load(tmp_path / "grown.pth")
    assert all(torch.equal(grown[k], v) for k, v in src.items())  # every trained weight, unchanged
    new = {k: v for k, v in grown.items() if k.startswith("lm.encoder.encoders.2.")}
    assert len(new) == len([k for k in src if k.startswith("lm.encoder.encoders.1.")])
    zeroed = [k for k in new if "linear_out" in k or "w_2" in k]
    assert len(zeroed) == 4 and all(not new[k].any() for k in zeroed)
    assert new["lm.encoder.encoders.2.self_attn.linear_q.weight"].abs().sum() > 0  # the rest can learn
    # ESPnet's LM with the grown config loads the file strictly, and scores as the trained one does
    lm = TransformerLM(20, **yaml.safe_load((tmp_path / "grow.yaml").read_text())["lm_conf"])
    lm.load_state_dict({k[3:]: v for k, v in grown.items()})
    assert "scores as --init's (max diff 0.0e+00)" in r.stdout


def test_grow_lm_refuses_a_config_that_does_not_add_layers_or_changes_the_width(tmp_path):
    _tiny_lm_files(tmp_path, layers=2, grown_layers=2)
    r = _grow(tmp_path)
    assert r.returncode != 0 and "lm_conf.layer (2) must exceed the 2 layers" in r.stderr
    conf = yaml.safe_load((tmp_path / "grow.yaml").read_text())
    conf["lm_conf"].update(layer=3, unit=64)
    (tmp_path / "grow.yaml").write_text(yaml.safe_dump(conf))
    r = _grow(tmp_path)
    assert r.returncode != 0 and "feed_forward.w_1.weight of the config's LM is not in the --init" in r.stderr
    (tmp_path / "lm.pth").unlink()
    r = _grow(tmp_path)
    assert r.returncode != 0 and "lm.pth does not exist" in r.stderr
