import numpy as np
import pytest
import tensorflow as tf

from electra_tf.pretraining.losses import global_mean, masked_lm_loss, replaced_token_detection_loss
from electra_tf.pretraining.sampling import replaced_token_labels, sample_from_softmax


@pytest.mark.parametrize("seeded", [False, True])
def test_samples_follow_the_softmax(seeded):
    probabilities = np.array([0.5, 0.3, 0.15, 0.05], np.float32)
    logits = np.log(probabilities)[None, None].repeat(40, axis=0).repeat(500, axis=1)  # (40, 500, 4)
    seeds = tf.constant([[7, i] for i in range(40)], tf.int64) if seeded else None
    samples = sample_from_softmax(tf.constant(logits), seeds=seeds).numpy().ravel()
    frequencies = np.bincount(samples, minlength=4) / samples.size
    np.testing.assert_allclose(frequencies, probabilities, atol=0.015)


def test_seeded_disallowed_ids_get_no_mass_and_the_rest_keep_their_ratios():
    logits = tf.constant(np.log([[[0.4, 0.4, 0.2]] * 2000] * 8), tf.float32)  # (8, 2000, 3)
    seeds = tf.constant([[3, i] for i in range(8)], tf.int64)
    samples = sample_from_softmax(logits, disallow_ids=tf.zeros((8, 2000), tf.int32),
                                  seeds=seeds).numpy().ravel()
    frequencies = np.bincount(samples, minlength=3) / samples.size
    np.testing.assert_allclose(frequencies, [0.0, 2 / 3, 1 / 3], atol=0.015)


def test_temperature_sharpens_and_flattens():
    logits = tf.constant(np.log([[[0.7, 0.2, 0.1]]] * 1).repeat(20000, axis=1), tf.float32)
    cold = np.bincount(sample_from_softmax(logits, temperature=0.25).numpy().ravel(), minlength=3)
    hot = np.bincount(sample_from_softmax(logits, temperature=4.0).numpy().ravel(), minlength=3)
    assert cold[0] / 20000 > 0.95
    assert abs(hot[0] / 20000 - 1 / 3) < 0.1
    with pytest.raises(ValueError, match="temperature"):
        sample_from_softmax(logits, temperature=0.0)


def test_disallow_correct_never_draws_the_original():
    logits = tf.zeros((4, 500, 3))  # uniform over 3 tokens
    original = tf.constant(np.random.default_rng(0).integers(0, 3, (4, 500)), tf.int32)
    samples = sample_from_softmax(logits, disallow_ids=original)
    assert not np.any(samples.numpy() == original.numpy())


def test_sampling_in_float32_from_float16_logits():
    samples = sample_from_softmax(tf.constant([[[0.0, 30.0]]], tf.float16))
    assert samples.dtype == tf.int32 and samples.numpy()[0, 0] == 1


def test_no_gradient_flows_through_sampling():
    logits = tf.Variable(tf.zeros((1, 2, 5)))
    with tf.GradientTape() as tape:
        sampled = sample_from_softmax(tf.stop_gradient(logits))
        value = tf.reduce_sum(tf.cast(sampled, tf.float32))
    assert tape.gradient(value, logits) is None


def test_rtd_labels_count_correct_samples_as_original():
    original = tf.constant([[101, 7, 8, 9, 102, 0]])
    corrupted = tf.constant([[101, 7, 5, 9, 102, 0]])  # position 1 sampled correctly, 2 wrongly
    mask = tf.constant([[1, 1, 1, 1, 1, 0]])
    np.testing.assert_array_equal(replaced_token_labels(original, corrupted, mask), [[0, 0, 1, 0, 0, 0]])


def test_masked_lm_loss_matches_manual_cross_entropy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 7)).astype(np.float32)
    ids = rng.integers(0, 7, (2, 3))
    weights = np.array([[1, 1, 0], [1, 0, 0]], np.float32)
    total, count = masked_lm_loss(tf.constant(logits), tf.constant(ids), tf.constant(weights))
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_probs, ids[..., None], -1)[..., 0]
    np.testing.assert_allclose(total / count, (nll * weights).sum() / 3, rtol=1e-5)


def test_rtd_loss_ignores_padding():
    logits = tf.constant([[2.0, -1.0, 50.0]])
    labels = tf.constant([[1, 0, 0]])
    total, count = replaced_token_detection_loss(logits, labels, tf.constant([[1, 1, 0]]))
    expected = (np.log1p(np.exp(-2.0)) + np.log1p(np.exp(-1.0))) / 2
    np.testing.assert_allclose(total / count, expected, rtol=1e-5)


def test_global_mean_outside_strategy_is_plain_ratio():
    assert float(global_mean(tf.constant(6.0), tf.constant(3.0))) == 2.0


def test_seeded_sampling_depends_only_on_each_examples_seed():
    from electra_tf.pretraining.example_seeds import example_seeds

    logits = tf.zeros((3, 4, 50))
    ids = tf.constant([[101, 5, 102], [101, 6, 102], [101, 7, 102]])
    seeds = example_seeds(ids, seed=0, step=1)
    whole = sample_from_softmax(logits, seeds=seeds).numpy()
    split = np.concatenate([sample_from_softmax(logits[:1], seeds=seeds[:1]).numpy(),
                            sample_from_softmax(logits[1:], seeds=seeds[1:]).numpy()])
    np.testing.assert_array_equal(whole, split)
    other_step = sample_from_softmax(logits, seeds=example_seeds(ids, seed=0, step=2)).numpy()
    assert not np.array_equal(whole, other_step)


def test_per_example_noise_is_each_rows_own_stateless_draw():
    from electra_tf.preprocessing.example_seeds import example_seeds, per_example_uniform

    seeds = example_seeds(tf.constant([[101, 7, 102], [101, 8, 102], [101, 9, 102]]), 0, 5)
    noise = tf.function(lambda s: per_example_uniform(s, [4, 6]))(seeds)  # (3, 4, 6)
    for row, seed in zip(noise, seeds):
        np.testing.assert_array_equal(row, tf.random.stateless_uniform([4, 6], seed))


def test_pretraining_step_traces_without_while_loop_fallbacks():
    """pfor has no converter for the stateless random ops: vectorized_map over them
    falls back to a while_loop and logs "Using a while_loop for converting ..." on
    every trace. The step must not take that path (#19)."""
    import logging

    import tf_keras as keras

    from electra_tf import ElectraDiscriminator, ElectraGenerator, ElectraPretrainer

    class Collect(logging.Handler):
        def __init__(self):
            super().__init__()
            self.messages = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    discriminator = ElectraDiscriminator.from_preset("tiny")
    generator = ElectraGenerator.from_preset("tiny", embedding_layer=discriminator.encoder.embedding_layer)
    pretrainer = ElectraPretrainer(generator, discriminator)
    pretrainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    ids = tf.constant([[101, 2023, 2003, 1037, 3231, 102, 0, 0]] * 4)
    batch = {"input_word_ids": ids, "input_mask": tf.cast(ids > 0, tf.int32),
             "input_type_ids": tf.zeros_like(ids)}
    handler = Collect()
    logger = logging.getLogger("tensorflow")
    logger.addHandler(handler)
    try:
        logs = pretrainer.train_on_batch(batch, return_dict=True)
    finally:
        logger.removeHandler(handler)
    assert np.isfinite(logs["loss"])
    fallbacks = [message for message in handler.messages if "while_loop" in message]
    assert not fallbacks, fallbacks[:2]


@pytest.mark.parametrize("seeded", [False, True])
def test_xla_compiled_sampling_follows_the_softmax_and_disallows(seeded):
    # XLA has no multinomial kernel: compiled graphs draw by Gumbel-max instead.
    probabilities = np.array([0.5, 0.3, 0.15, 0.05], np.float32)
    logits = tf.constant(np.log(probabilities)[None, None].repeat(40, axis=0).repeat(500, axis=1))
    seeds = tf.constant([[9, i] for i in range(40)], tf.int64) if seeded else None
    draw = tf.function(lambda logits, disallow: sample_from_softmax(
        logits, disallow_ids=disallow, seeds=seeds), jit_compile=True)
    samples = draw(logits, None).numpy().ravel()
    np.testing.assert_allclose(np.bincount(samples, minlength=4) / samples.size, probabilities,
                               atol=0.015)
    disallow = tf.zeros((40, 500), tf.int32)
    assert not np.any(draw(logits, disallow).numpy() == 0)
