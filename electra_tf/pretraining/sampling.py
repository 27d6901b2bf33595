"""Sampling replacement tokens from the generator, and the RTD labels they imply.

Pure functions; shapes in the docstrings. Sampling is not back-propagated
through (ELECTRA is not a GAN): callers wrap the generator logits in
`tf.stop_gradient`, and a multinomial draw has no gradient anyway.
"""

import tensorflow as tf

from electra_tf.preprocessing.example_seeds import per_example_uniform
from electra_tf.utils.xla import compiled_by_xla


def sample_from_softmax(logits, temperature=1.0, disallow_ids=None, seeds=None):
    """Draws one token per position from softmax(logits / temperature).

    An exact draw by inverse CDF: TensorFlow's multinomial kernel sums
    exp(logits - max) in float64 along the vocabulary and binary-searches one
    uniform number per position. The published code adds Gumbel noise to every
    logit and takes the argmax, which draws from the same distribution but needs
    a uniform number and two logs per vocabulary entry: over ELECTRA-Small's
    (16, 19, 30522) generator logits that took 80 ms a step on 2 cores, this
    44 ms. XLA (`jit_compile=True`, TPUs) has no multinomial kernel, so graphs
    it compiles draw by Gumbel-max, which it fuses. Computed in float32
    whatever the policy: float16 logits would make near-ties coarse.

    Args:
        logits: (batch, num_predictions, vocab_size) generator logits.
        temperature: > 0; 1.0 samples from the generator as trained.
        disallow_ids: optional (batch, num_predictions) ids that may not be
            drawn (ELECTRA's `disallow_correct`: never sample the original token).
        seeds: optional (batch, 2) per-example stateless seeds (see
            `example_seeds`): row i of the result depends only on seeds[i] and
            logits[i]. Without them the draw is stateful `tf.random.categorical`.

    Returns:
        (batch, num_predictions) int32 sampled ids.

    Example:
    >>> logits = tf.constant([[[0.0, 100.0, 0.0]]])
    >>> sample_from_softmax(logits).numpy().tolist()
    [[1]]
    >>> int(sample_from_softmax(logits, disallow_ids=tf.constant([[1]]))[0, 0]) != 1
    True
    """
    if temperature <= 0:
        raise ValueError(f"`temperature` must be > 0; received {temperature}.")
    logits = tf.cast(logits, tf.float32)  # (B, P, V)
    if temperature != 1.0:
        logits /= temperature
    vocab_size = tf.shape(logits)[-1]
    if disallow_ids is not None:
        # -1000 rather than -inf: an all-disallowed row still yields a valid id.
        # exp(-1000) is 0 in float64, so a disallowed id is never drawn otherwise.
        logits += tf.one_hot(disallow_ids, vocab_size, on_value=-1000.0, off_value=0.0)
    if compiled_by_xla():
        if seeds is None:
            uniform = tf.random.uniform(tf.shape(logits))  # (B, P, V)
        else:
            uniform = per_example_uniform(seeds, tf.shape(logits)[1:])  # (B, P, V)
        gumbel = -tf.math.log(-tf.math.log(uniform + 1e-9) + 1e-9)  # 1e-9: no log(0)
        return tf.argmax(logits + gumbel, axis=-1, output_type=tf.int32)
    if seeds is None:
        rows = tf.random.categorical(tf.reshape(logits, [-1, vocab_size]), 1, dtype=tf.int32)
        return tf.reshape(rows, tf.shape(logits)[:-1])  # (B, P)
    # One stateless draw per example, (P, V) logits -> (P,) ids.
    return tf.map_fn(
        lambda example: tf.random.stateless_categorical(
            example[0], 1, example[1], dtype=tf.int32)[:, 0],
        (logits, seeds),
        fn_output_signature=tf.TensorSpec([None], tf.int32),
    )


def replaced_token_labels(original_ids, corrupted_ids, input_mask):
    """RTD targets: 1 where a token differs from the original, else 0.

    A generator sample that happens to equal the original token counts as
    original (label 0), as in the paper.

    Args:
        original_ids: (batch, seq) the uncorrupted input.
        corrupted_ids: (batch, seq) the input with generator samples in place.
        input_mask: (batch, seq) 1 for real tokens.

    Returns:
        (batch, seq) int32 labels, 0 on padding.
    """
    replaced = tf.cast(tf.not_equal(original_ids, corrupted_ids), tf.int32)
    return replaced * tf.cast(input_mask, tf.int32)
