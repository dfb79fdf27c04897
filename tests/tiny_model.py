"""Build tiny genuine ESPnet experiment directories (random weights) for fast tests.

The files are exactly what espnet2.bin.asr_train / lm_train write: config.yaml from
the task's own argument parser, weights as a state-dict .pth. Random weights give
meaningless hypotheses, which is fine for loading, splitting and parity checks.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile
import torch
import yaml

from asr_compress.quiet import import_quietly

TOKENS = ["<blank>", "<unk>", "<space>"] + list("ABCDEFGHIJKLMNOPQRSTUVWXYZ'") + ["<sos/eos>"]


def _dump(task, argv, out_dir: Path, seed: int) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    args = task.get_parser().parse_args(argv)
    torch.manual_seed(seed)
    model = task.build_model(args)
    for p in model.parameters():  # larger than default init so outputs react to every weight
        torch.nn.init.normal_(p, std=0.3) if p.dim() > 1 else None
    cfg = vars(args)
    cfg["token_list"] = list(TOKENS)
    with open(out_dir / "config.yaml", "w") as f:
        yaml.safe_dump(cfg, f)
    torch.save(model.state_dict(), out_dir / "valid.acc.ave.pth")
    return out_dir


def _common_args(out_dir: Path):
    """Token list file (written beside the exp dir, as ESPnet recipes keep it) and output dir."""
    tok = out_dir.parent / "tokens.txt"
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tok.write_text("\n".join(TOKENS) + "\n")
    return ["--token_list", str(tok), "--token_type", "char", "--output_dir", str(out_dir)]


# a frontend with weights, as an SSL frontend has (S3PRL and Hugging Face models cannot be downloaded
# here): ESPnet's FusedFrontends, an fbank followed by a learned linear projection
FUSED_FRONTEND = ["--frontend", "fused", "--frontend_conf", '{"align_method": "linear_projection", "proj_dim": 20, '
                  '"frontends": [{"frontend_type": "default", "n_fft": 256, "hop_length": 128, "n_mels": 20}]}']
FBANK_FRONTEND = ["--frontend_conf", "n_fft=256", "--frontend_conf", "hop_length=128", "--frontend_conf", "n_mels=20"]



def build_tiny_ssl(out_dir: Path, layers: int = 4, seed: int = 3) -> Path:
    """A tiny ESPnet SSL model (HuBERT task, Transformer encoder of `layers` blocks, random weights) as
    `espnet2.bin.ssl_train` writes it: config.yaml beside the weights, which is how
    ESPnetSSLFrontend loads a local `.pth`. Returns the weights file."""
    SSLTask = import_quietly("espnet2.tasks.ssl").SSLTask
    out_dir.mkdir(parents=True, exist_ok=True)
    units = [str(i) for i in range(8)]  # HuBERT's pseudo-label classes, unused at inference
    (out_dir / "units.txt").write_text("\n".join(units) + "\n")
    args = SSLTask.get_parser().parse_args([
        "--token_list", str(out_dir / "units.txt"), "--output_dir", str(out_dir),
        "--frontend", "default", *FBANK_FRONTEND, "--preencoder", "none",
        "--encoder", "transformer", "--encoder_conf", "output_size=32", "--encoder_conf", "attention_heads=2",
        "--encoder_conf", "linear_units=48", "--encoder_conf", f"num_blocks={layers}", "--encoder_conf", "input_layer=conv2d",
    ])
    args.loss = [{"name": "hubert", "conf": {"num_classes": len(units), "final_dim": 8}}]  # a list: no CLI form
    torch.manual_seed(seed)
    model = SSLTask.build_model(args)
    cfg = vars(args)
    cfg["token_list"] = units
    with open(out_dir / "config.yaml", "w") as f:
        yaml.safe_dump(cfg, f)
    torch.save(model.state_dict(), out_dir / "model.pth")
    return out_dir / "model.pth"


def espnet_ssl_frontend(weights: Path, multilayer: bool = True, layer: int = -1) -> list:
    """ASR arguments for ESPnet's SSL frontend around `weights` (build_tiny_ssl): a learned weighted sum
    over every layer, as ESPnet's SSL-frontend recipes use, or the one `layer`."""
    conf = {"frontend_conf": {"path_or_url": str(weights)}, "multilayer_feature": multilayer, "layer": layer}
    return ["--frontend", "espnet_ssl", "--frontend_conf", json.dumps(conf)]


def build_tiny_s3prl_hubert(path: Path, layers: int = 3, seed: int = 4) -> Path:
    """A tiny HuBERT checkpoint (random weights) in the format of S3PRL's `hubert_local` upstream
    (the converted fairseq checkpoint: task and model configs, weights, label dictionaries), which
    ESPnet's S3prlFrontend loads with `upstream: hubert_local, path_or_url: <file>`. Its convolutions
    downsample by 320, as S3PRL's HuBERT expert assumes. Returns the file."""
    import dataclasses

    from asr_compress.pipeline.s3prl_compat import patch_torchaudio

    patch_torchaudio()
    from s3prl.upstream.hubert.hubert_model import HubertConfig, HubertModel, HubertPretrainingConfig

    task = HubertPretrainingConfig(label_rate=50.0)
    cfg = HubertConfig(label_rate=50.0, encoder_layers=layers, encoder_embed_dim=32, encoder_ffn_embed_dim=48,
                       encoder_attention_heads=2, conv_feature_layers="[(16,10,5),(16,8,4),(16,4,4),(16,2,2),(16,2,2)]",
                       conv_pos=8, conv_pos_groups=2, final_dim=8)
    torch.manual_seed(seed)
    labels = [list(range(10))]
    model = HubertModel(cfg, task, labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"task_cfg": dataclasses.asdict(task), "model_cfg": dataclasses.asdict(cfg),
                "model_weight": model.state_dict(), "dictionaries_symbols": labels}, path)
    return path


def s3prl_frontend(checkpoint: Path, multilayer: bool = True, layer: int = -1) -> list:
    """ASR arguments for ESPnet's S3PRL frontend around a `hubert_local` checkpoint (build_tiny_s3prl_hubert):
    S3PRL's featurizer over every hidden state, as ESPnet's LibriSpeech SSL recipes use, or the one `layer`."""
    conf = {"frontend_conf": {"upstream": "hubert_local", "path_or_url": str(checkpoint)},
            "multilayer_feature": multilayer, "layer": layer}
    return ["--frontend", "s3prl", "--frontend_conf", json.dumps(conf)]

CONFORMER = ["--encoder", "conformer", "--encoder_conf", "output_size=32", "--encoder_conf", "attention_heads=2",
             "--encoder_conf", "linear_units=48", "--encoder_conf", "num_blocks=2", "--encoder_conf", "cnn_module_kernel=5",
             "--encoder_conf", "input_layer=conv2d"]
# the encoder of ESPnet's strongest LibriSpeech recipe (egs2/librispeech/asr1, train_asr_e_branchformer.yaml),
# shrunk: E-Branchformer blocks with macaron feed-forward modules and relative positions
E_BRANCHFORMER = ["--encoder", "e_branchformer", "--encoder_conf", "output_size=32", "--encoder_conf", "attention_heads=2",
                  "--encoder_conf", "attention_layer_type=rel_selfattn", "--encoder_conf", "pos_enc_layer_type=rel_pos",
                  "--encoder_conf", "rel_pos_type=latest", "--encoder_conf", "cgmlp_linear_units=64",
                  "--encoder_conf", "cgmlp_conv_kernel=5", "--encoder_conf", "use_linear_after_conv=false",
                  "--encoder_conf", "gate_activation=identity", "--encoder_conf", "num_blocks=2",
                  "--encoder_conf", "input_layer=conv2d", "--encoder_conf", "layer_drop_rate=0.0",
                  "--encoder_conf", "linear_units=48", "--encoder_conf", "positionwise_layer_type=linear",
                  "--encoder_conf", "use_ffn=true", "--encoder_conf", "macaron_ffn=true", "--encoder_conf", "merge_conv_kernel=5"]
TRANSFORMER_DECODER = ["--decoder", "transformer", "--decoder_conf", "attention_heads=2", "--decoder_conf", "linear_units=48",
                       "--decoder_conf", "num_blocks=2"]
# the attention decoder of older ESPnet recipes: LSTM layers with location-free attention, scored one
# hypothesis at a time (it has no batch_score, so the non-batch BeamSearch decodes, as in ESPnet)
RNN_DECODER = ["--decoder", "rnn", "--decoder_conf", "hidden_size=32", "--decoder_conf", "num_layers=1"]
# a CTC-only model (no attention decoder): ESPnet decodes it with the CTC prefix scorer alone
CTC_ONLY = ["--decoder", "none", "--model_conf", "ctc_weight=1.0"]
# a transducer (RNN-T): LSTM prediction network and joint network, shaped as librispeech_100's
# train_asr_transducer_conformer_e15_linear1024.yaml, with the auxiliary CTC head its training keeps
TRANSDUCER = ["--decoder", "transducer", "--decoder_conf", "rnn_type=lstm", "--decoder_conf", "num_layers=1",
              "--decoder_conf", "hidden_size=32", "--joint_net_conf", "joint_space_size=24"]


def build_tiny_asr(out_dir: Path, seed: int = 0, frontend=FBANK_FRONTEND, encoder=CONFORMER,
                   decoder=TRANSFORMER_DECODER) -> Path:
    ASRTask = import_quietly("espnet2.tasks.asr").ASRTask
    if decoder is TRANSDUCER:  # built with warp-transducer's loss, which PyPI does not have
        from asr_compress.pipeline.transducer import stand_in_rnnt_loss

        stand_in_rnnt_loss()
    argv = [
        *_common_args(out_dir),
        *frontend,
        *encoder,
        "--model_conf", "ctc_weight=0.3",
        *decoder,  # after ctc_weight: CTC_ONLY sets its own
        "--specaug", "none", "--normalize", "utterance_mvn",
    ]
    return _dump(ASRTask, argv, out_dir, seed)


def build_tiny_asr_transducer(out_dir: Path, seed: int = 0) -> Path:
    """A model of ESPnet's other transducer task, espnet2.bin.asr_transducer_train (its own Conformer
    encoder, RNN decoder and joint network, as librispeech_100's train_conformer-rnn_transducer.yaml,
    in the argument names of ESPnet 202511)."""
    task = import_quietly("espnet2.tasks.asr_transducer").ASRTransducerTask
    argv = [
        *_common_args(out_dir), *FBANK_FRONTEND,
        "--encoder_conf", json.dumps({"input_conf": {"block_type": "conv2d"}, "body_conf": [
            {"block_type": "conformer", "linear_size": 48, "hidden_size": 32, "heads": 2, "conv_mod_kernel_size": 3,
             "num_blocks": 2}]}),
        "--decoder", "rnn", "--decoder_conf", "rnn_type=lstm", "--decoder_conf", "num_layers=1",
        "--decoder_conf", "embed_size=16", "--decoder_conf", "hidden_size=32",
        "--joint_network_conf", "joint_space_size=24", "--model_conf", "auxiliary_ctc_weight=0.3",
        "--specaug", "none", "--normalize", "utterance_mvn",
    ]
    return _dump(task, argv, out_dir, seed)


def build_tiny_lm(out_dir: Path, seed: int = 1) -> Path:
    LMTask = import_quietly("espnet2.tasks.lm").LMTask
    argv = [
        *_common_args(out_dir),
        "--lm", "transformer", "--lm_conf", "att_unit=32", "--lm_conf", "head=2", "--lm_conf", "unit=48",
        "--lm_conf", "layer=2", "--lm_conf", "embed_unit=32", "--lm_conf", "pos_enc=null",
    ]
    return _dump(LMTask, argv, out_dir, seed)


def build_tiny_rnn_lm(out_dir: Path, seed: int = 1) -> Path:
    """An LSTM LM (seq_rnn): the only kind the transducer task's search scores with. With dropout, as
    trained ones have: a search that left it in training mode would not decode deterministically."""
    LMTask = import_quietly("espnet2.tasks.lm").LMTask
    argv = [*_common_args(out_dir), "--lm", "seq_rnn", "--lm_conf", "unit=32", "--lm_conf", "nlayers=1",
            "--lm_conf", "dropout_rate=0.5"]
    return _dump(LMTask, argv, out_dir, seed)


def build_tiny_data(out_dir: Path, n: int = 3, fs: int = 16000) -> Path:
    """A Kaldi data dir of short synthetic 'utterances' (chirps plus noise)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    refs = ["HELLO WORLD", "A CAT SAT", "DON'T STOP", "SPEECH IS FUN", "SMALL TEST"]
    wav_lines, text_lines, grp = [], [], []
    for i in range(n):
        t = np.arange(int(fs * (0.6 + 0.2 * i))) / fs
        x = 0.3 * np.sin(2 * np.pi * (200 + 300 * i) * t * (1 + t)) + 0.05 * rng.standard_normal(t.size)
        name = f"utt{i}.flac"
        soundfile.write(out_dir / name, x.astype(np.float32), fs)
        wav_lines.append(f"utt{i} {name}")
        text_lines.append(f"utt{i} {refs[i % len(refs)]}")
        grp.append(f"utt{i} {'seen' if i % 2 == 0 else 'unseen'}")
    (out_dir / "wav.scp").write_text("\n".join(wav_lines) + "\n")
    (out_dir / "text").write_text("\n".join(text_lines) + "\n")
    (out_dir / "utt2group").write_text("\n".join(grp) + "\n")
    return out_dir


def build_tiny_ngram(path: Path, token_list, seed: int = 2) -> Path:
    """A bigram ARPA over `token_list`'s units (as ESPnet's asr.sh --use_ngram builds one, but
    random): every unit and `</s>` after every unit and `<s>`, probabilities normalised per context.
    """
    rng = np.random.default_rng(seed)
    units = [t for t in token_list if t not in ("<blank>", "<unk>", "<sos/eos>")]
    words = ["<unk>", "<s>", "</s>", *units]
    contexts, nexts = ["<s>", *units], ["</s>", *units]
    uni = rng.dirichlet(np.ones(len(words)))
    lines = ["\\data\\", f"ngram 1={len(words)}", f"ngram 2={len(contexts) * len(nexts)}", "", "\\1-grams:"]
    for w, p in zip(words, uni):
        # KenLM wants <s> in the unigrams with probability 0 (log10 -99 is ARPA's way to say it)
        lines.append(f"{-99 if w == '<s>' else np.log10(p):.6f}\t{w}" + ("\t0" if w in contexts else ""))
    lines += ["", "\\2-grams:"]
    for c in contexts:
        for w, p in zip(nexts, rng.dirichlet(np.ones(len(nexts)))):
            lines.append(f"{np.log10(p):.6f}\t{c} {w}")
    lines += ["", "\\end\\", ""]
    path.write_text("\n".join(lines))
    return path
