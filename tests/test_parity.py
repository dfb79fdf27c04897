"""ESPnet parity: with nothing compressed, our hypotheses are ESPnet's own.

Runs `python -m espnet2.bin.asr_inference` (ESPnet's decoding CLI) on the same model,
data and decoding parameters and compares the text it writes, token for token.
"""
import subprocess
import sys

import pytest

from asr_compress.config import DecodeConfig, ModelConfig
from asr_compress.evaluate.data import read_audio
from asr_compress.pipeline import load_pipeline


@pytest.mark.parametrize("ctc_weight,lm_weight", [(0.3, 0.5)])
def test_hypotheses_identical_to_espnet_asr_inference(tiny, tmp_path, ctc_weight, lm_weight):
    decode = DecodeConfig(beam_size=4, ctc_weight=ctc_weight, lm_weight=lm_weight, penalty=0.1)
    out = tmp_path / "espnet"
    cmd = [
        sys.executable, "-m", "espnet2.bin.asr_inference",
        "--output_dir", str(out), "--ngpu", "0", "--batch_size", "1",
        "--data_path_and_name_and_type", f"{tiny['data'] / 'wav.scp'},speech,sound",
        "--asr_train_config", str(tiny["asr"] / "config.yaml"),
        "--asr_model_file", str(tiny["asr"] / "valid.acc.ave.pth"),
        "--lm_train_config", str(tiny["lm"] / "config.yaml"),
        "--lm_file", str(tiny["lm"] / "valid.acc.ave.pth"),
        "--beam_size", str(decode.beam_size), "--ctc_weight", str(ctc_weight),
        "--lm_weight", str(lm_weight), "--penalty", str(decode.penalty), "--nbest", "1",
    ]
    # ESPnet reads wav.scp paths relative to the working directory
    subprocess.run(cmd, check=True, cwd=tiny["data"], capture_output=True, env={"OMP_NUM_THREADS": "1", "PATH": ""})
    espnet_tokens = {}
    for line in (out / "1best_recog" / "token").read_text().splitlines():
        uid, *toks = line.split()
        espnet_tokens[uid] = toks

    p = load_pipeline(ModelConfig(name="t", exp_dir=str(tiny["asr"]), lm_exp_dir=str(tiny["lm"])))
    ours = {}
    for line in (tiny["data"] / "wav.scp").read_text().splitlines():
        uid, path = line.split()
        _, tokens, _ = p.recognize(read_audio(tiny["data"] / path, 16000), decode)
        ours[uid] = tokens
    assert len(ours) == 3 and all(len(t) > 0 for t in ours.values())
    assert ours == espnet_tokens
