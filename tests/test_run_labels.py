"""Run labels: a model or test set given by its folder alone is named after that folder, never as the default."""
import pytest

from asr_compress.config import PROJECT_ROOT, data_label, model_label


@pytest.mark.parametrize("args,label", [
    (("mine", None, "exp/asr_train_x", None), "mine"),                      # an explicit name wins
    ((None, None, "models/default/asr", None), "default"),                   # the shipped model
    ((None, None, str(PROJECT_ROOT / "models" / "default" / "asr"), None), "default"),
    ((None, None, "exp/asr_train_asr_conformer_raw_en_bpe5000_sp/", None), "asr_train_asr_conformer_raw_en_bpe5000_sp"),
    ((None, "pyf98/librispeech_conformer", None, None), "pyf98_librispeech_conformer"),
    ((None, None, None, "/m/exp/asr_train_e_branchformer/config.yaml"), "asr_train_e_branchformer"),
    ((None, None, "/m/my model (v2)", None), "my_model_v2"),                 # usable as a folder name
])
def test_model_label(args, label):
    assert model_label(*args) == label


def test_data_label_is_the_folder_as_given_not_a_symlinks_target(tmp_path):
    (tmp_path / "corpus_copy").mkdir()
    (tmp_path / "test_clean").symlink_to(tmp_path / "corpus_copy")
    assert data_label(None, str(tmp_path / "test_clean")) == "test_clean"
    assert data_label("dev", str(tmp_path / "test_clean")) == "dev"
    assert data_label(None, "testsets/synth_test") == "synth_test"
