"""Transducer (RNN-T) models of espnet2's ASR task: loaded without warp-transducer, decoded by ESPnet's
BeamSearchTransducer, the decoder component holding the prediction and joint networks, no CTC
component. Token parity with ESPnet's own CLI is in test_parity.py."""
import contextlib
import copy
import sys

import pytest
import torch
from omegaconf import OmegaConf

import tiny_model as tm
from support import compose, tiny_overrides
from asr_compress.compress import METHOD_CONFIGS, applicable, applicable_methods, make_config
from asr_compress.config import DataConfig, DecodeConfig, ModelConfig
from asr_compress.errors import AsrCompressError, CompressionConfigError, ModelLoadError
from asr_compress.evaluate.data import load_test_set, read_audio
from asr_compress.evaluate.decode import count_compute
from asr_compress.evaluate.timing import Clock, time_breakdown
from asr_compress.pipeline import load_pipeline
from asr_compress.pipeline.transducer import task_of
from asr_compress.report.write import write_report
from asr_compress.run import run_experiment

DECODE = DecodeConfig(beam_size=3, lm_weight=0.5)


@pytest.fixture(scope="module", params=["asr", "asr_transducer"])
def rnnt(request, tiny, tmp_path_factory):
    """A transducer of espnet2's ASR task (asr_train, decoder: transducer) with the Transformer LM, or
    of its transducer task (asr_transducer_train) with an LSTM LM, the only kind its search takes:
    (exp dir, LM exp dir, pipeline, audio)."""
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "asr":
        exp, lm = tm.build_tiny_asr(root / "exp", decoder=tm.TRANSDUCER), tiny["lm"]
    else:
        exp, lm = tm.build_tiny_asr_transducer(root / "exp", seed=3), tm.build_tiny_rnn_lm(root / "lm")
    p = load_pipeline(ModelConfig(name="rnnt", exp_dir=str(exp), lm_exp_dir=str(lm)))
    utts = load_test_set(DataConfig(name="t", dir=str(tiny["data"])))
    return exp, lm, p, [read_audio(u.audio, p.sample_rate) for u in utts]


def test_the_decoder_component_holds_the_joint_network_and_there_is_no_ctc(rnnt):
    _, _, p, _ = rnnt
    assert p.transducer and list(p.components()) == ["frontend", "encoder", "decoder", "lm"]
    dec = p.component("decoder")
    assert dec.joint_network is p.asr_model.joint_network  # ESPnet's code reads it there
    # the auxiliary head training kept, never read by the search (the transducer task names it ctc_lin)
    assert getattr(p.asr_model, "ctc", None) is not None or p.asr_model.ctc_lin is not None
    with pytest.raises(AsrCompressError, match=r"^component 'ctc' is not used by this transducer model's search "
                                               r".*; valid: frontend, encoder, decoder, lm$"):
        p.component("ctc")


def test_the_loss_stand_in_refuses_to_train():
    loss = sys.modules["warprnnt_pytorch"].RNNTLoss(blank=0)
    if not getattr(sys.modules["warprnnt_pytorch"], "__asr_compress_stand_in__", False):
        pytest.skip("warp-transducer itself is installed")
    with pytest.raises(RuntimeError, match="training it needs ESPnet's warp-transducer"):
        loss(torch.zeros(1))


def test_every_decoder_method_cuts_the_joint_network_in_a_copy_and_decodes(rnnt):
    _, _, p, audio = rnnt
    joint = p.decoder.joint_network
    before = joint.lin_out.weight.clone()
    names = [n for n in applicable_methods("decoder", list(METHOD_CONFIGS), p.decoder) if n != "lowrank"]
    assert {"int8_dynamic", "fp16", "int8_weight", "prune_unstructured"} <= set(names)
    for name in names:
        q = p.copy(cut=["decoder"])
        report = q.compress_("decoder", make_config(name))
        assert any("joint_network.lin_out" in n for n in report.notes), (name, report.notes)
        assert q.asr_model.joint_network is q.decoder.joint_network is not joint
        for a in audio:  # token ids as ESPnet writes them: no blank (0), no sos/eos (the last)
            assert all(0 < i < len(q.token_list) - 1 for i in q.recognize(a, DECODE)[2]), name
        # the search scores with the cut joint network, one vector at a time as ESPnet calls it
        x, y = torch.randn(32), torch.randn(32)
        assert not torch.equal(q.search(DECODE).inner.joint_network(x, y), joint(x, y)), name
    assert joint.lin_out.weight.equal(before) and type(joint.lin_out) is torch.nn.Linear  # the original is untouched


def test_a_copy_that_keeps_the_decoder_shares_its_joint_network(rnnt):
    _, _, p, _ = rnnt
    q = p.copy(cut=["encoder"])
    assert q.decoder is p.decoder and q.asr_model.joint_network is p.decoder.joint_network
    # a decoder set in its place brings its own joint network, which the model then reads
    r = p.copy(cut=["encoder"])
    new = copy.deepcopy(p.decoder)
    r.set_component("decoder", new)
    assert r.asr_model.decoder is new and r.asr_model.joint_network is new.joint_network is not p.decoder.joint_network


def test_time_and_flops_of_the_joint_network_count_as_decoder(rnnt):
    _, _, p, audio = rnnt
    search = p.search(DecodeConfig(beam_size=3, lm_weight=0.0))
    joint = p.decoder.joint_network
    with _calls(joint) as joint_calls, time_breakdown(p, search, Clock()) as bd:
        search(x=p.encode(audio[0]))
    assert joint_calls and bd.seconds["decoder"] > 0 and "ctc" not in bd.seconds
    with _calls(joint) as joint_calls:
        c = count_compute(p, audio[:1], DecodeConfig(beam_size=3, lm_weight=0.0), Clock(), p.sample_rate)
    # every joint call (one encoder frame, one prediction-network state) in the decoder's count
    per_call = 2 * sum(m.in_features * m.out_features for m in (joint.lin_enc, joint.lin_dec, joint.lin_out))
    assert c["decoder_flops_per_token"] * c["output_tokens"] >= len(joint_calls) * per_call > 0


@contextlib.contextmanager
def _calls(module):
    """A list that gets one entry per call of `module` while the block runs."""
    calls = []
    hook = module.register_forward_hook(lambda *a: calls.append(1))
    try:
        yield calls
    finally:
        hook.remove()


def test_distilling_the_decoder_is_refused_in_one_line(rnnt):
    _, _, p, _ = rnnt
    cfg = make_config("distill", steps=[{"name": "prune_unstructured"}])
    with pytest.raises(CompressionConfigError, match=r"^decoder: distill teaches an attention decoder .* "
                                                     r"\((TransducerDecoder|RNNDecoder) with its joint network\).*; valid: distill on encoder or lm"):
        applicable("decoder", cfg, p.decoder)


def test_an_ngram_is_refused_naming_the_parameter(rnnt, tiny, tmp_path):
    exp, _, p, _ = rnnt
    ngram = tm.build_tiny_ngram(tmp_path / "2gram.arpa", p.token_list)
    with pytest.raises(ModelLoadError, match=r"^model.ngram_file=.*is a transducer model.*; valid: model.ngram_file=null$"):
        load_pipeline(ModelConfig(name="rnnt", exp_dir=str(exp), ngram_file=str(ngram)))


def test_a_run_says_which_decoding_parameters_apply_and_scores_without_ctc(rnnt, tiny, tmp_path, capsys):
    exp, lm, _, _ = rnnt
    overrides = [o for o in tiny_overrides(tiny, "decoder=int8_dynamic", "eval.flops_utterances=1")
                 if not o.startswith(("model.exp_dir", "model.lm_exp_dir"))]
    cfg = compose([*overrides, f"model.exp_dir={exp}", f"model.lm_exp_dir={lm}"])
    m = run_experiment(cfg, tmp_path / "out")
    assert "the model is a transducer" in capsys.readouterr().err
    assert set(m["components"]) == {"frontend", "encoder", "decoder", "lm"}
    assert m["components"]["decoder"]["method"]["name"] == "int8_dynamic"
    assert m["time_breakdown_ms"]["ctc"] == 0 and m["time_breakdown_ms"]["decoder"] > 0
    assert m["n_utterances"] == 3 and m["search"] == "BeamSearchTransducer"
    (tmp_path / "out" / ".hydra").mkdir()
    OmegaConf.save(cfg, tmp_path / "out" / ".hydra" / "config.yaml")  # what Hydra writes beside it
    setup = [line for line in write_report(tmp_path / "out", n_resamples=20).read_text().splitlines()
             if line.startswith("- model:")]
    assert setup == ["- model: `tiny`, data: `tiny`, decoding: beam 5, LM weight 0.5, search_type default (ESPnet's "
                     "BeamSearchTransducer: the model is a transducer, which reads no CTC weight or penalty)"]


def test_an_attention_model_records_its_search(tiny, tmp_path):
    m = run_experiment(compose(tiny_overrides(tiny, "data.limit=1", "eval.flops_utterances=0")), tmp_path / "out")
    assert m["search"] == "BatchBeamSearch"


def test_the_searches_and_lms_espnet_cannot_pair_are_refused_naming_the_way_out(rnnt, tiny):
    exp, _, p, audio = rnnt
    if task_of(vars(p.asr_args)) == "asr_transducer":
        with pytest.raises(AsrCompressError, match=r"^decode.transducer_search=nsc: not a search of "
                                                   r"espnet2.asr_transducer.beam_search_transducer, .*; valid: "
                                                   r"default, tsd, alsd, maes$"):
            p.search(DecodeConfig(transducer_search="nsc"))
        with_transformer = load_pipeline(ModelConfig(name="rnnt", exp_dir=str(exp), lm_exp_dir=str(tiny["lm"])))
        with pytest.raises(AsrCompressError, match=r"^decode.lm_weight=0.5: .* scores with an RNN LM only, and this one "
                                                   r"is a TransformerLM; valid: decode.lm_weight=0, "
                                                   r"model.lm_exp_dir=null, or an RNN LM \(lm: seq_rnn\)$"):
            with_transformer.search(DecodeConfig(lm_weight=0.5))
        return
    with pytest.raises(AsrCompressError, match=r"^decode.transducer_search=alsd: ESPnet's alsd search cannot score "
                                               r"with a Transformer LM .*; valid: decode.transducer_search=default, "
                                               r"or decode.lm_weight=0$"):
        p.search(DecodeConfig(beam_size=3, lm_weight=0.5, transducer_search="alsd"))
    search = p.search(DecodeConfig(beam_size=3, lm_weight=0.0, transducer_search="alsd"))
    assert search.inner.search_algorithm == search.inner.align_length_sync_decoding and not search.inner.use_lm
    assert all(0 < i < len(p.token_list) - 1 for i in p.best_text(search(x=p.encode(audio[0])))[2])


def test_the_lm_is_scored_and_timed_as_lm(rnnt):
    _, _, p, audio = rnnt
    search = p.search(DecodeConfig(beam_size=3, lm_weight=0.5))
    assert search.inner.use_lm and search.full_scorers["lm"] is p.lm
    with time_breakdown(p, search, Clock()) as bd:
        search(x=p.encode(audio[0]))
    assert bd.seconds["lm"] > 0


def test_layer_drop_cuts_the_encoder_stack(rnnt):
    # the transducer task's encoder keeps its blocks in MultiBlocks.blocks, with one block-dropping
    # probability per block for training
    _, _, p, audio = rnnt
    q = p.copy(cut=["encoder"])
    report = q.compress_("encoder", make_config("layer_drop", keep_every=0, drop=[0]))
    assert report.notes[0].startswith("kept 1 of 2 layers")
    blocks = getattr(q.encoder.encoders, "blocks", q.encoder.encoders)
    assert len(blocks) == 1 and len(getattr(q.encoder.encoders, "keep_probs", blocks)) == 1
    assert q.encode(audio[0]).shape == p.encode(audio[0]).shape
    assert not torch.equal(q.encode(audio[0]), p.encode(audio[0]))


def test_a_transducer_task_model_given_as_the_lm_is_named(tiny, tmp_path):
    # its config has no encoder choice (one Encoder class), but encoder_conf, which no LM config has
    exp = tm.build_tiny_asr_transducer(tmp_path / "asr_transducer")
    with pytest.raises(ModelLoadError, match=r"asr_transducer/config\.yaml: an ESPnet ASR config, where the LM "
                                             r"model's is expected"):
        load_pipeline(ModelConfig(name="t", exp_dir=str(tiny["asr"]), lm_exp_dir=str(exp)))


def test_cutting_the_ctc_of_a_transducer_is_refused_saying_why(rnnt, tiny, tmp_path):
    exp, _, _, _ = rnnt
    overrides = [o for o in tiny_overrides(tiny, "ctc=int8_dynamic") if not o.startswith("model.exp_dir")]
    with pytest.raises(AsrCompressError, match=r"^ctc=int8_dynamic: this model has no ctc that its search reads: a "
                                               r"transducer's search never reads its auxiliary CTC head "
                                               r"\(present: frontend, encoder, decoder, lm\)$"):
        run_experiment(compose([*overrides, f"model.exp_dir={exp}"]), tmp_path / "out")
