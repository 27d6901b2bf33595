"""ElectraPretrainer and MaskedLMPretrainer on tiny models: losses, labels, gradients, tying, saving."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from conftest import TINY

from electra_tf.models import model_io
from electra_tf.models.presets import ElectraConfig, scaled_generator_config
from electra_tf.pretraining.electra_pretrainer import ElectraPretrainer
from electra_tf.pretraining.losses import global_mean
from electra_tf.pretraining.masked_lm_pretrainer import MaskedLMPretrainer

PAD, CLS, SEP, MASK = 0, 1, 2, 3
SPECIAL_IDS = (PAD, CLS, SEP, MASK)


def tiny_config(vocab_size=37):
    return ElectraConfig.from_dict({**TINY, "vocab_size": vocab_size})


def make_pretrainer(vocab_size=37, num_layers=2, **kwargs):
    """A tiny discriminator and a half-width generator sharing its embeddings."""
    config = dataclasses.replace(tiny_config(vocab_size), num_layers=num_layers)
    discriminator = config.build("discriminator")
    generator = scaled_generator_config(config, 0.5).build(
        "generator", embedding_layer=discriminator.encoder.embedding_layer
    )
    kwargs.setdefault("mask_token_id", MASK)
    kwargs.setdefault("special_token_ids", SPECIAL_IDS)
    return ElectraPretrainer(generator, discriminator, **kwargs)


def make_batch(batch_size=8, seq_length=16, vocab_size=37, seed=0, predictable=False):
    """[CLS] tokens [SEP] [PAD]..., every other row padded, two segments.

    predictable: each row counts up from a random token, so a masked token
    follows from its neighbours and the generator can learn it.
    """
    rng = np.random.default_rng(seed)
    first = len(SPECIAL_IDS)
    if predictable:
        starts = rng.integers(0, vocab_size - first, (batch_size, 1))
        ids = (first + (starts + np.arange(seq_length)) % (vocab_size - first)).astype(np.int32)
    else:
        ids = rng.integers(first, vocab_size, (batch_size, seq_length)).astype(np.int32)
    mask = np.ones_like(ids)
    lengths = [seq_length - 4 * (row % 2) for row in range(batch_size)]
    for row, length in enumerate(lengths):
        ids[row, 0] = CLS
        ids[row, length - 1] = SEP
        ids[row, length:] = PAD
        mask[row, length:] = 0
    type_ids = np.zeros_like(ids)
    type_ids[:, seq_length // 2:] = 1
    type_ids[mask == 0] = 0
    return {"input_word_ids": ids, "input_mask": mask, "input_type_ids": type_ids}


def repeat(batch):
    return tf.data.Dataset.from_tensors(batch).repeat()


def corrupted_ids(outputs):
    """The discriminator's input, rebuilt in numpy from the masked ids and the samples."""
    corrupted = outputs["masked"]["input_word_ids"].numpy().copy()
    positions = outputs["masked"]["masked_lm_positions"].numpy()
    weights = outputs["masked"]["masked_lm_weights"].numpy()
    sampled = outputs["sampled_ids"].numpy()
    for row, slot in zip(*np.nonzero(weights)):
        corrupted[row, positions[row, slot]] = sampled[row, slot]
    return corrupted


def assert_same_weights(model_a, model_b):
    """Equal model weights (`weights` also holds metric state, which is not saved)."""
    assert len(model_a.trainable_weights) == len(model_b.trainable_weights)
    metric_state = {v.ref() for metric in model_a.metrics for v in metric.variables}
    assert {v.ref() for v in model_a.non_trainable_weights} <= metric_state
    for a, b in zip(model_a.trainable_weights, model_b.trainable_weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)


class StepLogs(keras.callbacks.Callback):
    """Every step's logs (the pretrainers reset their metrics each step)."""

    def __init__(self):
        super().__init__()
        self.logs = []

    def on_train_batch_end(self, batch, logs=None):
        self.logs.append({key: float(value) for key, value in logs.items()})


def losses_per_step(model, batch, steps):
    """{metric: [value at step 1, ..., value at step `steps`]}."""
    step_logs = StepLogs()
    model.fit(repeat(batch), steps_per_epoch=steps, callbacks=[step_logs], verbose=0)
    return {key: [logs[key] for logs in step_logs.logs] for key in step_logs.logs[0]}


@pytest.fixture(scope="module")
def trained():
    """A one-layer pretrainer after 40 Adam steps on one batch, with its per-step logs.

    Shared by the tests below: tracing a train step costs seconds, a step milliseconds.
    A 12-token vocabulary (8 ordinary tokens) lets the generator learn within 40 steps.
    """
    keras.utils.set_random_seed(0)  # fixed initial weights: the thresholds below never flake
    pretrainer = make_pretrainer(vocab_size=12, num_layers=1, seed=1)
    pretrainer.compile(optimizer=keras.optimizers.Adam(1e-2))
    batch = make_batch(vocab_size=12, predictable=True)
    history = losses_per_step(pretrainer, batch, steps=40)
    return pretrainer, batch, history


def test_training_on_a_fixed_batch_lowers_the_losses(trained):
    pretrainer, _, history = trained
    assert int(pretrainer.optimizer.iterations) == 40
    for key, ratio in (("loss", 0.75), ("rtd_loss", 0.8), ("mlm_loss", 0.95)):
        first, last = np.mean(history[key][:5]), np.mean(history[key][-5:])
        assert last < ratio * first, (key, first, last)
    # Metrics are reset every step: each step logs its own values.
    assert len(set(history["loss"])) == 40


def test_logged_loss_is_mlm_plus_50_rtd_at_every_step(trained):
    _, _, history = trained
    np.testing.assert_allclose(
        history["loss"], np.add(history["mlm_loss"], 50.0 * np.array(history["rtd_loss"])), rtol=1e-6
    )


@pytest.mark.parametrize("discriminator_weight", [50.0, 7.0])
def test_loss_is_mlm_loss_plus_weighted_rtd_loss(discriminator_weight):
    pretrainer = make_pretrainer(discriminator_weight=discriminator_weight)
    batch = make_batch()
    outputs = pretrainer.compute_pretraining_outputs(batch, step=3, training=False)
    mlm_loss = float(global_mean(*outputs["mlm"]))
    rtd_loss = float(global_mean(*outputs["rtd"]))
    np.testing.assert_allclose(float(outputs["loss"]), mlm_loss + discriminator_weight * rtd_loss, rtol=1e-6)

    # The RTD loss is the mean sigmoid cross-entropy over real tokens only.
    logits = outputs["discriminator_logits"].numpy()
    labels = outputs["rtd_labels"].numpy()
    bce = np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))
    mask = batch["input_mask"].astype(bool)
    np.testing.assert_allclose(rtd_loss, bce[mask].mean(), rtol=1e-5)

    # So does the value the metrics report.
    pretrainer.update_metrics(outputs)
    results = pretrainer.results()
    np.testing.assert_allclose(float(results["loss"]), float(outputs["loss"]), rtol=1e-5)


def test_default_discriminator_weight_is_50():
    assert make_pretrainer().discriminator_weight == 50.0


def test_rtd_labels_mark_replaced_tokens_only():
    # A vocabulary of 4 ordinary tokens: the generator often samples the original.
    vocab_size = 8
    pretrainer = make_pretrainer(vocab_size=vocab_size, mask_rate=0.5)
    batch = make_batch(vocab_size=vocab_size)
    original = batch["input_word_ids"]
    outputs = pretrainer.compute_pretraining_outputs(batch, step=0, training=False)
    labels = outputs["rtd_labels"].numpy()
    corrupted = corrupted_ids(outputs)
    mask = batch["input_mask"].astype(bool)

    np.testing.assert_array_equal(labels, (corrupted != original) & mask)

    masked_positions = np.zeros_like(mask)
    weights = outputs["masked"]["masked_lm_weights"].numpy()
    positions = outputs["masked"]["masked_lm_positions"].numpy()
    for row, slot in zip(*np.nonzero(weights)):
        masked_positions[row, positions[row, slot]] = 1
    assert not labels[masked_positions == 0].any()

    # Both cases occur: samples equal to the original (label 0) and replacements (label 1).
    sampled_correctly = (outputs["sampled_ids"].numpy() == outputs["masked"]["masked_lm_ids"].numpy())
    assert (sampled_correctly & (weights > 0)).sum() > 0
    assert labels.sum() > 0
    assert labels[masked_positions == 1].sum() < masked_positions.sum()


def test_rtd_loss_does_not_reach_generator_only_weights():
    pretrainer = make_pretrainer()
    batch = make_batch()
    shared = {v.ref() for v in pretrainer.discriminator.trainable_variables}
    generator_only = [v for v in pretrainer.generator.trainable_variables if v.ref() not in shared]
    generator_refs = {v.ref() for v in pretrainer.generator.trainable_variables}
    discriminator_only = [v for v in pretrainer.discriminator.trainable_variables if v.ref() not in generator_refs]
    assert generator_only and discriminator_only
    assert any("output_bias" in v.name for v in generator_only)

    with tf.GradientTape(persistent=True) as tape:
        outputs = pretrainer.compute_pretraining_outputs(batch, step=0, training=True)
        rtd_loss = global_mean(*outputs["rtd"])
        mlm_loss = global_mean(*outputs["mlm"])
    rtd_gradients = tape.gradient(rtd_loss, generator_only)
    assert all(g is None or not np.any(tf.convert_to_tensor(g).numpy()) for g in rtd_gradients)
    mlm_gradients = tape.gradient(mlm_loss, discriminator_only)
    assert all(g is None or not np.any(tf.convert_to_tensor(g).numpy()) for g in mlm_gradients)

    # The shared word embeddings learn from both losses.
    word_embeddings = pretrainer.discriminator.encoder.word_embeddings
    for loss in (rtd_loss, mlm_loss):
        gradient = tf.convert_to_tensor(tape.gradient(loss, word_embeddings))
        assert np.any(gradient.numpy())


def assert_tied(pretrainer):
    generator, discriminator = pretrainer.generator, pretrainer.discriminator
    assert pretrainer.tied_embeddings
    assert generator.encoder.word_embeddings is discriminator.encoder.word_embeddings
    embedding_refs = {v.ref() for v in discriminator.encoder.embedding_layer.weights}
    assert embedding_refs <= {v.ref() for v in generator.weights}
    # One set of variables: the pretrainer trains each embedding variable once.
    trainable = pretrainer.trainable_weights
    assert len(trainable) == len({v.ref() for v in trainable})
    expected = len(discriminator.trainable_weights) + len(generator.trainable_weights) - len(embedding_refs)
    assert len(trainable) == expected


def test_embeddings_are_tied_and_stay_tied_through_training(trained):
    pretrainer, _, _ = trained
    assert_tied(pretrainer)
    untrained = make_pretrainer(vocab_size=12, num_layers=1)
    assert_tied(untrained)
    # Training moved the one shared table (initialised with stddev 0.02).
    assert np.abs(pretrainer.generator.encoder.word_embeddings.numpy()).max() > 0.1


def test_tie_survives_serialize_deserialize():
    pretrainer = make_pretrainer(discriminator_weight=7.0, disallow_correct=True, seed=5)
    restored = keras.layers.deserialize(keras.layers.serialize(pretrainer))
    assert isinstance(restored, ElectraPretrainer)
    assert_tied(restored)
    assert [v.shape for v in restored.weights] == [v.shape for v in pretrainer.weights]
    assert (restored.discriminator_weight, restored.disallow_correct, restored.seed) == (7.0, True, 5)
    assert restored.special_token_ids == SPECIAL_IDS


@pytest.mark.parametrize("weights_file", ["weights.h5", "checkpoint/weights"])
def test_tie_survives_save_and_load_weights(trained, tmp_path, weights_file):
    pretrainer, _, _ = trained
    path = str(tmp_path / weights_file)
    pretrainer.save_weights(path)
    restored = keras.layers.deserialize(keras.layers.serialize(pretrainer))
    restored.load_weights(path)
    assert_tied(restored)
    assert_same_weights(pretrainer, restored)


def test_pretrainer_save_pretrained_round_trip(trained, tmp_path):
    pretrainer, batch, _ = trained
    model_io.save_pretrained(pretrainer, str(tmp_path / "pretrainer"))
    restored = model_io.load_pretrained(str(tmp_path / "pretrainer"), expected_class=ElectraPretrainer)
    assert_tied(restored)
    assert_same_weights(pretrainer, restored)
    # Same weights and seed: the same masks, samples and loss.
    expected = pretrainer.compute_pretraining_outputs(batch, step=7, training=False)
    actual = restored.compute_pretraining_outputs(batch, step=7, training=False)
    np.testing.assert_array_equal(actual["sampled_ids"], expected["sampled_ids"])
    np.testing.assert_allclose(float(actual["loss"]), float(expected["loss"]), rtol=1e-6)


def test_evaluate_is_repeatable_and_leaves_weights_alone(trained):
    pretrainer, batch, history = trained
    data = repeat(batch)
    before = [v.numpy() for v in pretrainer.trainable_weights]
    first = pretrainer.evaluate(data, steps=2, return_dict=True, verbose=0)
    second = pretrainer.evaluate(data, steps=2, return_dict=True, verbose=0)
    assert {"loss", "mlm_loss", "rtd_loss", "mlm_accuracy", "rtd_auc", "rtd_precision"} <= set(first)
    for key, value in first.items():
        np.testing.assert_allclose(second[key], value, rtol=1e-6, err_msg=key)
    np.testing.assert_allclose(first["loss"], first["mlm_loss"] + 50.0 * first["rtd_loss"], rtol=1e-6)
    assert np.isfinite(list(first.values())).all()
    assert first["loss"] < history["loss"][0]  # the trained model, not a fresh one
    for a, b in zip(before, pretrainer.trainable_weights):
        np.testing.assert_array_equal(a, b.numpy())
    # test_on_batch takes the batch as (x,), like train_on_batch.
    logs = pretrainer.test_on_batch(batch, return_dict=True)
    assert np.isfinite(logs["loss"])


def test_disallow_correct_never_samples_the_original():
    vocab_size = 8  # four ordinary tokens: without the option, correct samples are common
    batch = make_batch(vocab_size=vocab_size)
    allowed = make_pretrainer(vocab_size=vocab_size, mask_rate=0.5)
    disallowed = make_pretrainer(vocab_size=vocab_size, mask_rate=0.5, disallow_correct=True)
    disallowed.set_weights(allowed.get_weights())
    accuracies = {}
    for name, model in (("allowed", allowed), ("disallowed", disallowed)):
        for step in range(3):
            model.update_metrics(model.compute_pretraining_outputs(batch, step=step, training=True))
        accuracies[name] = float(model.results()["sampled_token_accuracy"])
    assert accuracies["disallowed"] == 0.0
    assert accuracies["allowed"] > 0.0
    # Every masked token is then replaced: its RTD label is 1.
    outputs = disallowed.compute_pretraining_outputs(batch, step=0, training=False)
    weights = outputs["masked"]["masked_lm_weights"].numpy()
    positions = outputs["masked"]["masked_lm_positions"].numpy()
    labels = outputs["rtd_labels"].numpy()
    assert all(labels[row, positions[row, slot]] == 1 for row, slot in zip(*np.nonzero(weights)))


def test_constructor_rejects_bad_arguments():
    pretrainer = make_pretrainer()
    generator, discriminator = pretrainer.generator, pretrainer.discriminator
    with pytest.raises(ValueError, match="mask_rate"):
        ElectraPretrainer(generator, discriminator, mask_rate=1.5)
    with pytest.raises(ValueError, match="generator"):
        ElectraPretrainer(discriminator, discriminator)
    with pytest.raises(ValueError, match="discriminator"):
        ElectraPretrainer(generator, generator)
    other_vocab = tiny_config(vocab_size=40).build("discriminator")
    with pytest.raises(ValueError, match="vocab_size"):
        ElectraPretrainer(generator, other_vocab)


def test_masked_lm_pretrainer_trains_and_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    config = dataclasses.replace(tiny_config(vocab_size=12), num_layers=1)
    model = MaskedLMPretrainer(config.build("generator"), mask_token_id=MASK, special_token_ids=SPECIAL_IDS)
    model.compile(optimizer=keras.optimizers.Adam(3e-2))
    batch = make_batch(vocab_size=12, predictable=True)
    history = losses_per_step(model, batch, steps=40)
    assert np.mean(history["loss"][-5:]) < 0.9 * np.mean(history["loss"][:5]), history["loss"]
    np.testing.assert_allclose(history["loss"], history["mlm_loss"])
    evaluation = model.evaluate(repeat(batch), steps=1, return_dict=True, verbose=0)
    assert set(evaluation) == {"loss", "mlm_loss", "mlm_accuracy"}

    model_io.save_pretrained(model, str(tmp_path / "mlm"))
    restored = model_io.load_pretrained(str(tmp_path / "mlm"), expected_class=MaskedLMPretrainer)
    assert_same_weights(model, restored)
    expected = model.compute_pretraining_outputs(batch, step=2, training=False)["loss"]
    actual = restored.compute_pretraining_outputs(batch, step=2, training=False)["loss"]
    np.testing.assert_allclose(float(actual), float(expected), rtol=1e-6)


def test_a_batch_masked_in_tf_data_is_refused_not_masked_twice(tmp_path):
    from electra_tf.data.pretraining_dataset import make_pretraining_dataset

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"{' '.join(str(4 + (i + j) % 30) for j in range(12))}\n"
                              for i in range(40)))

    def tokenize(lines):  # numbers are their own ids; any other word is id 5
        words = tf.strings.split(lines)
        numeric = tf.strings.regex_full_match(words.flat_values, r"\d+")
        ids = tf.strings.to_number(tf.where(numeric, words.flat_values, "5"), tf.int32)
        return words.with_flat_values(ids)

    dataset = make_pretraining_dataset(str(corpus), tokenize, cls_token_id=CLS, sep_token_id=SEP,
                                       pad_token_id=PAD, mask_token_id=MASK, max_seq_length=16,
                                       batch_size=4, seed=0)
    batch = next(iter(dataset))
    assert "masked_lm_positions" in batch  # the tf.data route masked it
    pretrainer = make_pretrainer()
    pretrainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    with pytest.raises(ValueError, match="masked already.*masked_lm_positions"):
        pretrainer.train_on_batch(batch)
    with pytest.raises(ValueError, match="masked already"):
        pretrainer.fit(dataset.take(1), verbose=0)
    # The unmasked features of the same batch train: one masking route, the step's.
    features = {key: batch[key] for key in ("input_word_ids", "input_mask", "input_type_ids")}
    pretrainer = make_pretrainer()  # (the refused call left a half-traced train function)
    pretrainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    assert np.isfinite(pretrainer.train_on_batch(features, return_dict=True)["loss"])
