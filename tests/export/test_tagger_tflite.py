"""`electra-tf export TAGGER_DIR --format tflite`: per-token logits equal the Keras tagger's (fp32),
and int8 calibrates on plain texts or on the tagger's own CoNLL training file."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

import electra_tf
from electra_tf.cli.main import main
from electra_tf.export.tflite_export import run_tflite
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
from electra_tf.tasks.task_model_io import load_task_model, save_task_model

TAGS = ["O", "B-PER", "I-PER", "B-LOC"]
MAX_SEQ_LENGTH = 16
SENTENCES = [["Anna", "Smith", "visited", "Paris"], ["Bob", "flew", "to", "Rome", "today"],
             ["Zoë", "Müller", "lives", "in", "São", "Paulo"]]
TEXTS = [" ".join(words) for words in SENTENCES] + ["Nobody was there."]


@pytest.fixture(scope="module")
def tagger_dir(tmp_path_factory):
    keras.utils.set_random_seed(3)
    encoder = electra_tf.ElectraEncoder(vocab_size=30522, hidden_size=8, num_layers=1,
                                        num_heads=2, intermediate_size=16, embedding_size=4,
                                        max_sequence_length=32)
    tagger = electra_tf.ElectraTokenClassifier(encoder, num_classes=len(TAGS))
    # Freshly initialised logits are all ~0, which any file would match: scale them to O(1).
    tagger.logits.set_weights([50.0 * w for w in tagger.logits.get_weights()])
    root = tmp_path_factory.mktemp("tagger_tflite")
    save_task_model(tagger, str(root / "model"), "tag", ElectraTokenizer(), MAX_SEQ_LENGTH, TAGS)
    return root


def packed(model_dir):
    model, tokenizer, _ = load_task_model(model_dir, "tag")
    features = tokenizer.pack([tokenizer.tokenize(tf.constant(TEXTS))], MAX_SEQ_LENGTH)
    return model, {key: value.numpy() for key, value in features.items()}


def test_fp32_per_token_logits_match_keras(tagger_dir):
    out = tagger_dir / "tagger.tflite"
    assert main(["export", str(tagger_dir / "model"), str(out), "--format", "tflite"]) == 0
    model, features = packed(str(tagger_dir / "model"))
    expected = model(features, training=False).numpy()  # (4, 16, 4)
    logits = run_tflite(str(out), features)
    assert logits.shape == (len(TEXTS), MAX_SEQ_LENGTH, len(TAGS))  # task.json's length
    assert np.abs(expected).max() > 0.1  # real logits, not ~0
    np.testing.assert_allclose(logits, expected, atol=1e-4)


def test_int8_calibrates_on_texts_or_the_conll_training_file(tagger_dir):
    (tagger_dir / "texts.txt").write_text("\n".join(TEXTS[:3]) + "\n")
    tags = [["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "O", "O", "B-LOC", "O"],
            ["B-PER", "I-PER", "O", "O", "B-LOC", "I-PER"]]
    (tagger_dir / "train.conll").write_text("-DOCSTART- O\n\n" + "\n\n".join(
        "\n".join(f"{word} {tag}" for word, tag in zip(words, sentence_tags))
        for words, sentence_tags in zip(SENTENCES, tags)) + "\n")
    files = {}
    for name in ("texts.txt", "train.conll"):
        files[name] = tagger_dir / f"int8_{name}.tflite"
        assert main(["export", str(tagger_dir / "model"), str(files[name]), "--format", "tflite",
                     "--quantize", "int8", "--calibration-data", str(tagger_dir / name),
                     "--float-dense-layers", "0"]) == 0
    # The CoNLL file calibrates on its sentences, exactly as the same sentences as plain text.
    assert files["texts.txt"].read_bytes() == files["train.conll"].read_bytes()
    model, features = packed(str(tagger_dir / "model"))
    expected = model(features, training=False).numpy()
    logits = run_tflite(str(files["texts.txt"]), features)
    assert logits.shape == expected.shape
    real = features["input_mask"] == 1
    agree = (logits.argmax(-1) == expected.argmax(-1))[real].mean()
    assert agree >= 0.9, agree
    np.testing.assert_allclose(logits[real], expected[real], atol=0.1 * np.abs(expected).max())
