"""ElectraTokenClassifier: shapes, masked loss, fit, serialization, transformers parity."""

import json

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from conftest import TINY, make_inputs
from electra_tf import ElectraEncoder, ElectraTokenClassifier
from electra_tf.tasks.electra_token_classifier import (
    IGNORE_LABEL,
    masked_token_accuracy,
    masked_token_loss,
)

TOLERANCE = 1e-4  # the acceptance bound on logits


@pytest.fixture(scope="module")
def tagger():
    keras.utils.set_random_seed(0)
    return ElectraTokenClassifier(ElectraEncoder(**TINY), num_classes=5)


def test_logits_are_per_token_float32_also_under_mixed_precision(tagger):
    inputs = make_inputs(3, 9, TINY["vocab_size"])
    assert tagger(inputs).shape == (3, 9, 5) and tagger(inputs).dtype == tf.float32
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        mixed = ElectraTokenClassifier(ElectraEncoder(**TINY), num_classes=5)
        assert mixed(inputs).dtype == tf.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_masked_loss_equals_cross_entropy_over_kept_positions_only():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, 3)).astype(np.float32)
    labels = np.array([[IGNORE_LABEL, 2, 0, IGNORE_LABEL], [IGNORE_LABEL, 1, IGNORE_LABEL,
                                                             IGNORE_LABEL]])
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    kept = [(0, 1), (0, 2), (1, 1)]
    expected = -np.mean([log_softmax[b, t, labels[b, t]] for b, t in kept])
    assert float(masked_token_loss(labels, logits)) == pytest.approx(expected, rel=1e-6)
    # What ignored positions hold does not matter.
    changed = logits.copy()
    changed[0, 0] = changed[1, 3] = 100.0
    assert float(masked_token_loss(labels, changed)) == pytest.approx(expected, rel=1e-6)
    assert float(masked_token_loss(np.full((1, 2), IGNORE_LABEL), logits[:1, :2])) == 0.0
    predictions = logits.argmax(-1)
    assert float(masked_token_accuracy(labels, logits)) == pytest.approx(
        np.mean([predictions[b, t] == labels[b, t] for b, t in kept]))


def test_fit_learns_a_per_token_rule():
    keras.utils.set_random_seed(1)
    model = ElectraTokenClassifier(ElectraEncoder(**TINY), num_classes=3)
    inputs = make_inputs(8, 6, TINY["vocab_size"], seed=1)
    labels = inputs["input_word_ids"] % 3
    labels[inputs["input_mask"] == 0] = IGNORE_LABEL
    labels[:, 0] = IGNORE_LABEL  # [CLS]
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    data = tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(4)
    history = model.fit(data, epochs=15, verbose=0).history
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["accuracy"][-1] > 0.8


def test_config_round_trip_and_save_pretrained(tagger, tmp_path):
    clone = ElectraTokenClassifier.from_config(tagger.get_config())
    assert (clone.num_classes, clone.dropout_rate) == (5, 0.1)
    tagger.save_pretrained(str(tmp_path / "tagger"))
    again = ElectraTokenClassifier.from_pretrained(str(tmp_path / "tagger"))
    inputs = make_inputs(2, 7, TINY["vocab_size"])
    np.testing.assert_array_equal(again(inputs), tagger(inputs))
    with pytest.raises(ValueError, match="already exists"):
        tagger.save_pretrained(str(tmp_path / "tagger"))


def test_num_labels_is_a_deprecated_name_of_num_classes(tagger):
    with pytest.deprecated_call(match="num_classes"):
        old = ElectraTokenClassifier(ElectraEncoder(**TINY), num_labels=4)
    with pytest.deprecated_call():
        assert old.num_labels == old.num_classes == 4
    # A config saved by an earlier version (num_labels) still loads.
    config = {**tagger.get_config(), "num_labels": 5}
    del config["num_classes"]
    assert ElectraTokenClassifier.from_config(config).num_classes == 5


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(num_classes=1), "num_classes=1"), (dict(num_classes=2.0), "num_classes=2.0"),
     (dict(num_classes=3, dropout_rate=1.0), r"\[0, 1\)"),
     (dict(num_classes=3, unknown=1), "unknown")],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        ElectraTokenClassifier(ElectraEncoder(**TINY), **kwargs)
    with pytest.raises(ValueError, match="must be an ElectraEncoder; received str"):
        ElectraTokenClassifier("encoder", 3)


# --- transformers ------------------------------------------------------------------------


def _torch_logits(model, inputs):
    import torch

    with torch.no_grad():
        return model(
            input_ids=torch.tensor(inputs["input_word_ids"], dtype=torch.long),
            attention_mask=torch.tensor(inputs["input_mask"], dtype=torch.long),
            token_type_ids=torch.tensor(inputs["input_type_ids"], dtype=torch.long),
        ).logits.numpy()


@pytest.mark.parametrize("embedding_size", [12, 16], ids=["projection", "no_projection"])
def test_from_huggingface_logits_parity(embedding_size, tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    config = transformers.ElectraConfig(
        vocab_size=53, embedding_size=embedding_size, hidden_size=16, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=24, max_position_embeddings=20,
        hidden_act="gelu", id2label=dict(enumerate(labels)), classifier_dropout=0.2)
    reference = transformers.ElectraForTokenClassification(config)
    generator = torch.Generator().manual_seed(embedding_size)
    with torch.no_grad():  # non-trivial values everywhere, biases and LayerNorm included
        for parameter in reference.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
    reference.eval().save_pretrained(str(tmp_path / "hf"))

    tagger = ElectraTokenClassifier.from_huggingface(str(tmp_path / "hf"))
    assert (tagger.num_classes, tagger.dropout_rate) == (5, 0.2)
    inputs = make_inputs(3, 10, 53)  # padding and two segments
    difference = np.max(np.abs(tagger(inputs).numpy() - _torch_logits(reference, inputs)))
    assert difference <= TOLERANCE, difference

    # ... and back: transformers loads what we write, with the same logits and names.
    tagger.save_huggingface(str(tmp_path / "ours"), label_names=labels)
    with open(tmp_path / "ours" / "config.json") as f:
        written = json.load(f)
    assert written["architectures"] == ["ElectraForTokenClassification"]
    assert written["id2label"]["1"] == "B-PER"
    again = transformers.ElectraForTokenClassification.from_pretrained(
        str(tmp_path / "ours")).eval()
    np.testing.assert_allclose(_torch_logits(again, inputs), tagger(inputs), atol=TOLERANCE)


def test_huggingface_errors(tagger, tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.ElectraConfig(
        vocab_size=40, embedding_size=8, hidden_size=8, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=16, max_position_embeddings=16)
    transformers.ElectraModel(config).save_pretrained(str(tmp_path / "bare"))
    with pytest.raises(ValueError, match=r"no token-classification head: missing keys "
                                         r"\['classifier.weight'"):
        ElectraTokenClassifier.from_huggingface(str(tmp_path / "bare"))
    transformers.ElectraForSequenceClassification(config).save_pretrained(str(tmp_path / "seq"))
    with pytest.raises(ValueError, match="no token-classification head"):
        ElectraTokenClassifier.from_huggingface(str(tmp_path / "seq"))
    with pytest.raises(ValueError, match="5 distinct names"):
        tagger.save_huggingface(str(tmp_path / "out"), label_names=["O", "B-X"])
    assert not (tmp_path / "out").exists()
