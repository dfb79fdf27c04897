"""Small real ESPnet components, rebuilt from a fixed seed for every call (fresh, so tests can mutate them).

A uniquely named helper module rather than conftest.py: `from conftest import ...` would pick up
whichever conftest pytest imported last once other test folders have their own.
"""
from __future__ import annotations

import torch

# tiny models on a shared 2-core machine: extra intra-op threads only add contention
torch.set_num_threads(1)

VOCAB = 30
D = 32  # encoder output / decoder attention size


def build(component: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if component == "frontend":
        from espnet2.asr.frontend.default import DefaultFrontend

        m = DefaultFrontend(fs=16000, n_fft=128, hop_length=64, n_mels=20)
    elif component == "fused_frontend":  # a frontend with weights (as SSL frontends have): fbank + projection
        from espnet2.asr.frontend.fused import FusedFrontends

        m = FusedFrontends(frontends=[{"frontend_type": "default", "n_fft": 128, "hop_length": 64, "n_mels": 20}],
                           align_method="linear_projection", proj_dim=D, fs=16000)
    elif component == "encoder":
        from espnet2.asr.encoder.conformer_encoder import ConformerEncoder

        m = ConformerEncoder(input_size=20, output_size=D, attention_heads=4, linear_units=64, num_blocks=2,
                             cnn_module_kernel=7, macaron_style=True, use_cnn_module=True)
    elif component == "conformer_relpos":  # the current ESPnet2 recipe setting (not the legacy default)
        from espnet2.asr.encoder.conformer_encoder import ConformerEncoder

        m = ConformerEncoder(input_size=20, output_size=D, attention_heads=4, linear_units=64, num_blocks=2,
                             cnn_module_kernel=7, pos_enc_layer_type="rel_pos", selfattention_layer_type="rel_selfattn")
    elif component == "transformer_encoder":
        from espnet2.asr.encoder.transformer_encoder import TransformerEncoder

        m = TransformerEncoder(input_size=20, output_size=D, attention_heads=4, linear_units=64, num_blocks=3)
    elif component in ("e_branchformer", "branchformer"):  # attention beside a cgMLP branch, merged
        from espnet2.asr.encoder.branchformer_encoder import BranchformerEncoder
        from espnet2.asr.encoder.e_branchformer_encoder import EBranchformerEncoder

        common = dict(input_size=20, output_size=D, attention_heads=4, num_blocks=2, cgmlp_linear_units=64,
                      cgmlp_conv_kernel=7, use_linear_after_conv=True)
        m = (EBranchformerEncoder(linear_units=64, use_ffn=True, macaron_ffn=True, **common)
             if component == "e_branchformer" else BranchformerEncoder(**common))
    elif component == "ctc":
        from espnet2.asr.ctc import CTC

        m = CTC(VOCAB, D)
    elif component == "decoder":
        from espnet2.asr.decoder.transformer_decoder import TransformerDecoder

        m = TransformerDecoder(vocab_size=VOCAB, encoder_output_size=D, attention_heads=4, linear_units=64,
                               num_blocks=2)
    elif component == "lm":
        from espnet2.lm.transformer_lm import TransformerLM

        m = TransformerLM(VOCAB, embed_unit=D, att_unit=D, head=4, unit=64, layer=2)
    elif component == "rnn_lm":
        from espnet2.lm.seq_rnn_lm import SequentialRNNLM

        m = SequentialRNNLM(VOCAB, unit=D, nlayers=1, rnn_type="lstm")
    else:
        raise KeyError(component)
    return m.eval()


def run(component: str, m: torch.nn.Module) -> torch.Tensor:
    """Output of the component's real entry method on fixed inputs (the path beam search uses)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        if component in ("frontend", "fused_frontend"):
            return m(torch.randn(2, 1600, generator=g), torch.tensor([1600, 1200]))[0]
        if component in ("encoder", "conformer_relpos", "transformer_encoder", "e_branchformer", "branchformer"):
            return m(torch.randn(2, 40, 20, generator=g), torch.tensor([40, 33]))[0]
        if component == "ctc":
            return m.log_softmax(torch.randn(2, 9, D, generator=g))
        ys = torch.randint(1, VOCAB, (3, 5), generator=g)
        if component == "decoder":
            return m.batch_score(ys, [None] * 3, torch.randn(3, 9, D, generator=g))[0]
        if component == "lm":
            return m.batch_score(ys, [None] * 3, None)[0]
        if component == "rnn_lm":
            return m.batch_score(ys, [None] * 3, None)[0]
    raise KeyError(component)


def calibration(n: int = 3):
    """Calibration data shaped for the parts `build` makes (random: these parts are untrained too)."""
    from asr_compress.pipeline.calibration import Calibration

    g = torch.Generator().manual_seed(2)
    c = Calibration(sos_eos=VOCAB - 1, source="random")
    for i in range(n):
        frames = 40 - 3 * i
        c.feats.append(torch.randn(1, frames, 20, generator=g))
        c.feats_lengths.append(torch.tensor([frames]))
        c.encoded.append(torch.randn(1, 9, D, generator=g))
        c.tokens.append(torch.randint(1, VOCAB - 1, (4 + i,), generator=g).tolist())
    return c


def sqnr(ref: torch.Tensor, out: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio in dB."""
    return float(20 * torch.log10(ref.norm() / (ref - out).norm().clamp_min(1e-12)))
