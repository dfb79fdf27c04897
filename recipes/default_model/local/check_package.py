"""Stage 13: load models/default with ESPnet's own Speech2Text from the repo root and decode
a few shipped test utterances, with and without the LM (a smoke test, not the scoring).

    cd REPO && python recipes/default_model/local/check_package.py --n 20
"""
import argparse
import time
from pathlib import Path

import soundfile as sf
import yaml
from espnet2.bin.asr_inference import Speech2Text


def wer(refs, hyps):
    import jiwer
    return jiwer.wer(refs, hyps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--testset", type=Path, default=Path("testsets/synth_test"))
    ap.add_argument("--decode_conf", type=Path,
                    default=Path(__file__).resolve().parent.parent / "conf/decode.yaml")
    a = ap.parse_args()
    dec = yaml.safe_load(open(a.decode_conf))
    text = dict(l.split(" ", 1) for l in (a.testset / "text").read_text().splitlines())
    wavs = dict(l.split(" ", 1) for l in (a.testset / "wav.scp").read_text().splitlines())
    utts = sorted(text)[:: max(1, len(text) // a.n)][: a.n]
    for use_lm in (True, False):
        kw = dict(dec)
        if use_lm:
            kw.update(lm_train_config="models/default/lm/config.yaml",
                      lm_file="models/default/lm/valid.loss.ave.pth")
        else:
            kw["lm_weight"] = 0.0
        s2t = Speech2Text(asr_train_config="models/default/asr/config.yaml",
                          asr_model_file="models/default/asr/valid.acc.ave.pth",
                          device="cpu", **kw)
        refs, hyps, t0 = [], [], time.time()
        for u in utts:
            x, fs = sf.read(a.testset / wavs[u].strip())
            hyp = s2t(x)[0][0]
            refs.append(text[u].strip()); hyps.append(hyp)
            print(f"{u}\n  REF: {refs[-1]}\n  HYP: {hyp}")
        n_params = sum(p.numel() for p in s2t.asr_model.parameters())
        print(f"lm={use_lm} utts={len(utts)} WER={wer(refs, hyps):.3f} "
              f"time={time.time() - t0:.1f}s asr_params={n_params / 1e6:.2f}M")


if __name__ == "__main__":
    main()
