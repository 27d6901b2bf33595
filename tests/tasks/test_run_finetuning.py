"""The fine-tuning job: encoder directory + labelled files in, classifier + results out."""

import json

import numpy as np
import pytest

from electra_tf import ElectraClassifier, ElectraDiscriminator
from electra_tf.tasks.run_finetuning import FinetuningConfig, format_summary, run_finetuning

WORDS = ["good", "great", "fine", "bad", "awful", "dull", "film", "plot", "the", "a", "."]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS


def write_data(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(24):
        label = int(rng.integers(0, 2))
        word = rng.choice(WORDS[:3] if label else WORDS[3:6])
        rows.append(f"{label}\tthe film was {word} .")
    (tmp_path / "train.tsv").write_text("label\ttext\n" + "\n".join(rows) + "\n")
    (tmp_path / "dev.tsv").write_text("label\ttext\n" + "\n".join(rows[:8]) + "\n")
    return str(tmp_path / "train.tsv"), str(tmp_path / "dev.tsv")


@pytest.fixture
def huggingface_encoder(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.ElectraConfig(
        vocab_size=len(VOCAB), embedding_size=8, hidden_size=8, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=16, max_position_embeddings=16)
    path = tmp_path / "encoder"
    transformers.ElectraModel(config).save_pretrained(str(path))
    (path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    return str(path)


def test_finetunes_from_a_huggingface_directory(tmp_path, huggingface_encoder):
    train, dev = write_data(tmp_path)
    config = FinetuningConfig(encoder=huggingface_encoder, train=train, dev=dev,
                              output_dir=str(tmp_path / "out"), head="huggingface",
                              max_seq_length=12, batch_size=8, epochs=2, learning_rate=1e-3)
    summary = run_finetuning(config)
    assert summary["train_examples"] == 24 and len(summary["history"]["loss"]) == 2
    assert set(summary["dev"]) == {"accuracy", "f1", "matthews_correlation"}
    with open(tmp_path / "out" / "results.json") as f:
        assert json.load(f)["dev"] == summary["dev"]
    classifier = ElectraClassifier.from_pretrained(str(tmp_path / "out" / "model"))
    assert classifier.head == "huggingface" and classifier.num_classes == 2
    again = ElectraClassifier.from_huggingface(str(tmp_path / "out" / "model_hf"))
    np.testing.assert_array_equal(again.logits.kernel, classifier.logits.kernel)
    assert "dev accuracy" in format_summary(summary)


def test_finetunes_an_electra_tf_discriminator_with_its_vocab_mismatch_caught(tmp_path):
    train, _ = write_data(tmp_path)
    discriminator = ElectraDiscriminator.from_preset("tiny", num_layers=1)
    discriminator.save_pretrained(str(tmp_path / "disc"))
    config = FinetuningConfig(encoder=str(tmp_path / "disc"), train=train,
                              output_dir=str(tmp_path / "out"), max_seq_length=12,
                              batch_size=8, epochs=1)
    summary = run_finetuning(config)  # the packaged 30,522-token vocabulary fits "tiny"
    assert "dev" not in summary
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    with pytest.raises(ValueError, match="vocabulary has 16 tokens but the encoder 30522"):
        run_finetuning(FinetuningConfig(encoder=str(tmp_path / "disc"), train=train,
                                        vocab_path=str(tmp_path / "vocab.txt")))


def test_config_validation():
    with pytest.raises(ValueError, match="needs `train`"):
        FinetuningConfig(encoder="x")
    with pytest.raises(ValueError, match="`epochs` must be >= 1; received 0"):
        FinetuningConfig(encoder="x", train="y", epochs=0)
