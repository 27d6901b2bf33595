"""ElectraClassifier: heads, problem types, config round trip, fit, saving, mixed precision."""

import inspect

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from conftest import TINY, dense_rows, make_inputs
from electra_tf import ElectraEncoder
from electra_tf.optimization.layerwise_decay_adamw import LayerwiseDecayAdamW
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
from electra_tf.tasks.electra_classifier import (
    ElectraClassifier,
    classification_keras_metrics,
    classification_loss,
)

CASES = [  # (problem_type, num_classes)
    ("single_label", 3),
    ("multi_label", 4),
    ("regression", 1),
]


def labels_for(problem_type, num_classes, batch_size, seed=0):
    rng = np.random.default_rng(seed)
    if problem_type == "single_label":
        return rng.integers(0, num_classes, batch_size).astype(np.int32)
    if problem_type == "multi_label":
        return rng.integers(0, 2, (batch_size, num_classes)).astype(np.float32)
    return rng.normal(size=batch_size).astype(np.float32)


@pytest.mark.parametrize("head", ["electra", "huggingface"])
@pytest.mark.parametrize("problem_type, num_classes", CASES)
def test_logits_shape_and_dtype(head, problem_type, num_classes, inputs):
    classifier = ElectraClassifier(
        ElectraEncoder(**TINY), num_classes, head=head, problem_type=problem_type
    )
    logits = classifier(inputs)
    assert logits.shape == (3, num_classes) and logits.dtype == tf.float32
    # Inference is deterministic (dropout off); training mode is not.
    np.testing.assert_array_equal(logits, classifier(inputs, training=False))
    # Padding-free dense layers (what the exported task model runs): same logits.
    np.testing.assert_allclose(classifier(inputs, remove_padding=True), logits, atol=1e-5)


def test_heads_have_the_documented_layers():
    electra = ElectraClassifier(ElectraEncoder(**TINY), 2)
    huggingface = ElectraClassifier(ElectraEncoder(**TINY), 2, head="huggingface")
    assert electra.dense is None and electra.logits.name == "logits"
    assert [w.shape for w in electra.logits.weights] == [(8, 2), (2,)]
    assert [w.shape for w in huggingface.dense.weights] == [(8, 8), (8,)]
    # The encoder's weights plus the head's, nothing else.
    encoder_count = len(electra.encoder.weights)
    assert len(electra.weights) == encoder_count + 2
    assert len(huggingface.weights) == encoder_count + 4


def test_electra_head_is_dropout_then_linear_on_cls(inputs):
    classifier = ElectraClassifier(ElectraEncoder(**TINY), 2)
    cls = classifier.encoder(inputs)["pooled_output"]
    expected = cls @ classifier.logits.kernel + classifier.logits.bias
    np.testing.assert_allclose(classifier(inputs), expected, atol=1e-6)


def test_sentence_pairs_from_the_tokenizer():
    tokenizer = ElectraTokenizer()
    features = tokenizer.pack(
        [tokenizer.tokenize(["A fine film.", "Dull."]),
         tokenizer.tokenize(["I agree.", "Not at all."])],
        max_seq_length=12,
    )
    assert features["input_type_ids"].numpy().max() == 1
    encoder = ElectraEncoder(**{**TINY, "vocab_size": tokenizer.vocab_size,
                                "max_sequence_length": 12})
    assert ElectraClassifier(encoder, 2)(features).shape == (2, 2)


def test_get_config_mirrors_init_and_round_trips(inputs):
    classifier = ElectraClassifier(
        ElectraEncoder(**TINY), 4, head="huggingface", problem_type="multi_label",
        dropout_rate=0.2, remove_padding_in_training=False,
    )
    config = classifier.get_config()
    assert config["remove_padding_in_training"] is False
    init_args = set(inspect.signature(ElectraClassifier.__init__).parameters) - {"self", "kwargs"}
    assert set(config) - init_args == {"name", "trainable", "dtype"}
    assert init_args <= set(config)
    clone = ElectraClassifier.from_config(config)
    assert clone.get_config() == config
    clone.set_weights(classifier.get_weights())
    np.testing.assert_allclose(clone(inputs), classifier(inputs), atol=1e-6)


def test_save_pretrained_round_trip(tmp_path, inputs):
    classifier = ElectraClassifier(ElectraEncoder(**TINY), 3, head="huggingface")
    classifier.save_pretrained(str(tmp_path / "model"))
    loaded = ElectraClassifier.from_pretrained(str(tmp_path / "model"))
    assert loaded.head == "huggingface" and loaded.num_classes == 3
    np.testing.assert_allclose(loaded(inputs), classifier(inputs), atol=1e-6)


@pytest.mark.parametrize("problem_type, num_classes", CASES)
def test_compile_auto_and_fit_on_tf_data(problem_type, num_classes):
    keras.utils.set_random_seed(0)
    classifier = ElectraClassifier(
        ElectraEncoder(**TINY), num_classes, problem_type=problem_type, dropout_rate=0.0
    )
    classifier.compile(optimizer=keras.optimizers.Adam(1e-2))  # loss and metrics: "auto"
    assert type(classifier.loss) is type(classification_loss(problem_type))
    x = make_inputs(batch_size=8, seq_length=6, vocab_size=TINY["vocab_size"])
    y = labels_for(problem_type, num_classes, 8)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    history = classifier.fit(data, epochs=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    metric = classification_keras_metrics(problem_type)[0].name
    assert metric in history.history
    assert classifier.predict(data, verbose=0).shape == (8, num_classes)


def _dense_rows(classifier, run):
    """Rows the first block's QKV layer sees in each call `run` makes."""
    return dense_rows(classifier.encoder.transformer_layers[0].qkv_dense, run)


def test_training_steps_run_on_real_tokens_and_give_the_padded_step():
    x = make_inputs(batch_size=3, seq_length=6, vocab_size=TINY["vocab_size"])  # 12 of 18 real
    y = np.array([0, 1, 0])
    models = {}
    for remove_padding in (True, False):
        keras.utils.set_random_seed(0)
        models[remove_padding] = ElectraClassifier(  # TINY has dropout 0: the same step
            ElectraEncoder(**TINY), 2, dropout_rate=0.0, remove_padding_in_training=remove_padding)
        models[remove_padding].compile(optimizer=keras.optimizers.Adam(1e-2),
                                       run_eagerly=True)  # the rows' count, not a traced None
    models[False].set_weights(models[True].get_weights())
    rows = {key: _dense_rows(model, lambda: model.train_on_batch(x, y))
            for key, model in models.items()}
    assert rows == {True: [12], False: [18]}
    for got, want in zip(models[True].get_weights(), models[False].get_weights()):
        np.testing.assert_allclose(got, want, atol=1e-5)
    # Inference keeps the padding unless asked, as before.
    assert _dense_rows(models[True], lambda: models[True](x)) == [18]
    assert _dense_rows(models[True], lambda: models[True](x, remove_padding=True)) == [12]


def test_xla_training_steps_keep_the_padding():
    classifier = ElectraClassifier(ElectraEncoder(**TINY), 2)
    classifier.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=True)
    x = make_inputs(batch_size=4, seq_length=6, vocab_size=TINY["vocab_size"])
    rows = _dense_rows(classifier, lambda: classifier.train_on_batch(x, np.array([0, 1, 0, 1])))
    assert set(rows) == {24}  # traced with the static padded shape (XLA compiles no other)


def test_compile_auto_optimizer_is_layerwise_decay_adamw():
    classifier = ElectraClassifier(ElectraEncoder(**TINY), 2)
    classifier.compile()
    assert isinstance(classifier.optimizer, LayerwiseDecayAdamW)
    assert classifier.optimizer.num_layers == TINY["num_layers"]


def test_mixed_precision_fit_keeps_float32_logits():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        classifier = ElectraClassifier(ElectraEncoder(**TINY), 2, head="huggingface")
        classifier.compile()
        assert isinstance(classifier.optimizer, keras.mixed_precision.LossScaleOptimizer)
        x = make_inputs(batch_size=4, seq_length=6, vocab_size=TINY["vocab_size"])
        data = tf.data.Dataset.from_tensor_slices((x, np.array([0, 1, 0, 1]))).batch(2)
        history = classifier.fit(data, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        assert classifier(x).dtype == tf.float32
        assert classifier.logits.kernel.dtype == tf.float32  # variables stay float32
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_classes=1), "num_classes` must be an integer >= 2 .* received num_classes=1"),
        (dict(num_classes=0, problem_type="regression"), ">= 1"),
        (dict(num_classes=2.0), "num_classes=2.0"),
        (dict(num_classes=2, head="bert"), "head=.bert."),
        (dict(num_classes=2, problem_type="binary"), "problem_type='binary'"),
        (dict(num_classes=2, dropout_rate=1.0), r"\[0, 1\)"),
        (dict(num_classes=2, remove_padding_in_training="no"), "True or False; received 'no'"),
    ],
)
def test_bad_arguments_say_what_was_received(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ElectraClassifier(ElectraEncoder(**TINY), **kwargs)


def test_encoder_must_be_an_electra_encoder():
    with pytest.raises(ValueError, match="received Dense"):
        ElectraClassifier(keras.layers.Dense(2), 2)
