"""Per-example random seeds, so masking and sampling do not depend on how a batch is split.

Every random draw of a pretraining step (which tokens to mask, which tokens
the generator samples) is a stateless function of (seed, step, the example's
ids). A global batch therefore gets the same masks and samples on one device
as split over replicas or hosts, and a resumed run repeats the draws it would
have made.
"""

import tensorflow as tf

_MODULUS = 2147483647  # 2**31 - 1, a prime: keeps fingerprints in int32 range
_MULTIPLIER = 2654435761  # Knuth's multiplicative hash constant


def example_seeds(input_word_ids, seed, step):
    """Stateless seeds, one per example.

    Args:
        input_word_ids: (batch, seq) ids; their content fingerprints the example.
        seed: int, the run's seed.
        step: int scalar (tensor), e.g. `optimizer.iterations`.

    Returns:
        (batch, 2) int64 seeds for `tf.random.stateless_*`.

    >>> ids = tf.constant([[101, 7, 102], [101, 8, 102], [101, 7, 102]])
    >>> seeds = example_seeds(ids, seed=0, step=3).numpy()
    >>> bool((seeds[0] == seeds[2]).all()), bool((seeds[0] == seeds[1]).all())
    (True, False)
    """
    ids = tf.cast(input_word_ids, tf.int64)  # (B, T)
    positions = tf.range(1, tf.shape(ids)[1] + 1, dtype=tf.int64)
    position_weights = (positions * _MULTIPLIER) % _MODULUS  # (T,)
    fingerprint = tf.reduce_sum((ids + 1) * position_weights, axis=-1) % _MODULUS  # (B,)
    run_and_step = tf.cast(seed, tf.int64) * 1000003 + tf.cast(step, tf.int64)
    return tf.stack([tf.fill(tf.shape(fingerprint), run_and_step), fingerprint], axis=-1)


def per_example_uniform(seeds, shape):
    """Uniform [0, 1) noise of `shape` for each example, from its own seed.

    Args:
        seeds: (batch, 2) int64 stateless seeds.
        shape: the per-example shape, e.g. [num_predictions, vocab_size].

    Returns:
        (batch, *shape) float32; row i depends only on seeds[i].
    """
    # map_fn, not vectorized_map: pfor has no converter for the stateless random
    # ops and falls back to this same loop, warning on every trace. The rows are
    # identical either way (each is its own stateless draw).
    return tf.map_fn(
        lambda row_seed: tf.random.stateless_uniform(shape, row_seed),
        seeds,
        fn_output_signature=tf.TensorSpec(None, tf.float32),
    )
