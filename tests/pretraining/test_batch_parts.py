"""`batch_parts`: a training step run on parts of its batch is the whole batch's step.

Dropout is off (TINY), so whole and parts must agree to rounding: the same
masks and samples (per-example seeds), the same loss (each term's summed
totals over its summed counts, not the mean of the parts' losses) and the
same gradients, seen as one SGD step with learning rate 1.
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from conftest import TINY

from electra_tf.models.presets import ElectraConfig, scaled_generator_config
from electra_tf.pretraining.electra_pretrainer import ElectraPretrainer
from electra_tf.pretraining.losses import loss_of_parts
from electra_tf.pretraining.run_pretraining import OBJECTIVES, PretrainingConfig, build_pretrainer
from electra_tf.utils.tensorflow_threads import batch_slices

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4


def batch(rows=5, seq_length=16, vocab_size=37, seed=0):
    """Rows of different lengths, so the parts hold different numbers of masked tokens."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocab_size, (rows, seq_length)).astype(np.int32)
    mask = np.ones_like(ids)
    for row, length in enumerate(np.linspace(6, seq_length, rows).astype(int)):
        ids[row, 0], ids[row, length - 1] = CLS, SEP
        ids[row, length:], mask[row, length:] = PAD, 0
    return {"input_word_ids": tf.constant(ids), "input_mask": tf.constant(mask),
            "input_type_ids": tf.zeros_like(tf.constant(ids))}


def build(objective, batch_parts):
    config = PretrainingConfig(corpus="unused", objective=objective, batch_parts=batch_parts, seed=3)
    discriminator = ElectraConfig.from_dict(TINY)
    pretrainer = build_pretrainer(config, TINY["vocab_size"], (PAD, UNK, CLS, SEP, MASK), MASK,
                                  model_configs=(discriminator, scaled_generator_config(discriminator, 0.5)))
    pretrainer.compile(optimizer=keras.optimizers.SGD(1.0))  # a step moves each weight by -gradient
    pretrainer.test_on_batch(batch())  # builds every layer (All-Tokens MLM's copy head too)
    return pretrainer


def trainable(pretrainer):
    return [variable.numpy() for variable in pretrainer.trainable_variables]


def one_step(pretrainer, data, initial_weights):
    """(logs, gradients) of one step from `initial_weights` (the trainable variables)."""
    for variable, value in zip(pretrainer.trainable_variables, initial_weights, strict=True):
        variable.assign(value)
    logs = pretrainer.train_on_batch(data, return_dict=True)
    gradients = [before - after for before, after in zip(initial_weights, trainable(pretrainer))]
    return logs, gradients


@pytest.mark.parametrize("objective", list(OBJECTIVES))
def test_parts_give_the_whole_batch_loss_metrics_and_gradients(objective):
    whole = build(objective, 1)
    initial = trainable(whole)
    data = batch(rows=5)
    whole_logs, whole_gradients = one_step(whole, data, initial)
    assert max(np.abs(g).max() for g in whole_gradients) > 1e-3  # the step did move the weights
    for parts in (2, 3) if objective == "electra" else (2,):  # uneven parts: 3 of 5 rows, 2 of 5
        split = build(objective, parts)
        assert split.batch_parts == parts
        logs, gradients = one_step(split, data, initial)
        assert set(logs) == set(whole_logs)
        for key in whole_logs:
            np.testing.assert_allclose(logs[key], whole_logs[key], rtol=1e-5, atol=1e-6,
                                       err_msg=f"{objective}, {parts} parts: {key}")
        for want, got in zip(whole_gradients, gradients):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6,
                                       err_msg=f"{objective}, {parts} parts")


def test_a_batch_smaller_than_its_parts_trains_as_the_whole_batch():
    whole, split = build("electra", 1), build("electra", 3)
    initial = trainable(whole)
    data = batch(rows=2)  # one part is empty
    whole_logs, whole_gradients = one_step(whole, data, initial)
    logs, gradients = one_step(split, data, initial)
    assert all(np.isfinite(value) for value in logs.values())
    np.testing.assert_allclose(logs["loss"], whole_logs["loss"], rtol=1e-5)
    for want, got in zip(whole_gradients, gradients):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_fit_on_a_dataset_with_parts_and_jit_compile():
    pretrainer = build("electra", 2)
    pretrainer.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=True)
    dataset = tf.data.Dataset.from_tensors(batch(rows=6)).repeat(3)
    history = pretrainer.fit(dataset, verbose=0).history
    assert np.isfinite(history["loss"]).all() and history["rtd_auc"][0] > 0


def test_the_loss_of_parts_sums_before_it_divides():
    parts = [{"mlm": (tf.constant(6.0), tf.constant(2.0)), "rtd": (tf.constant(1.0), tf.constant(10.0))},
             {"mlm": (tf.constant(2.0), tf.constant(6.0)), "rtd": (tf.constant(3.0), tf.constant(30.0))}]
    # (6 + 2) / (2 + 6) + 50 · (1 + 3) / (10 + 30); the mean of the parts' losses would be 6.75.
    assert float(loss_of_parts(parts, {"mlm": 1.0, "rtd": 50.0})) == pytest.approx(1.0 + 5.0)


def test_slices_are_contiguous_in_order_and_cover_the_batch():
    inputs = {"a": tf.range(7), "b": [tf.reshape(tf.range(14), (7, 2))]}
    parts = batch_slices(inputs, 3)
    assert [part["a"].numpy().tolist() for part in parts] == [[0, 1], [2, 3], [4, 5, 6]]
    assert np.concatenate([part["b"][0].numpy() for part in parts]).tolist() == \
        inputs["b"][0].numpy().tolist()


def test_batch_parts_is_in_the_config_and_checked():
    pretrainer = build("electra", 2)
    config = pretrainer.get_config()
    assert config["batch_parts"] == 2
    assert ElectraPretrainer.from_config(config).batch_parts == 2
    for objective in OBJECTIVES:  # every pretrainer's config round-trips it
        assert build(objective, 3).get_config()["batch_parts"] == 3
    for bad in (0, -1, 2.0, True, "2"):
        with pytest.raises(ValueError, match=f"batch_parts={bad!r}"):
            PretrainingConfig(corpus="unused", batch_parts=bad)
        with pytest.raises(ValueError, match="`batch_parts` must be a positive integer"):
            ElectraPretrainer.from_config({**config, "batch_parts": bad})
