"""ELECTRA's two losses, as pure functions of logits and targets.

Each returns (numerator, denominator): the loss is their ratio. Keeping them
apart lets a distributed step divide by the *global* denominator, so a batch
split over replicas gives exactly the loss of the whole batch on one device.
"""

import tensorflow as tf


def masked_lm_loss(logits, masked_lm_ids, masked_lm_weights):
    """Generator cross-entropy at the masked positions.

    Args:
        logits: (batch, num_predictions, vocab_size) float32.
        masked_lm_ids: (batch, num_predictions) original ids.
        masked_lm_weights: (batch, num_predictions) 1.0 for real predictions,
            0.0 for padding slots.

    Returns:
        (sum of weighted NLL, sum of weights), float32 scalars.

    Example:
    >>> total, count = masked_lm_loss(tf.zeros((1, 2, 4)), tf.constant([[1, 2]]),
    ...                               tf.constant([[1.0, 0.0]]))
    >>> round(float(total / count), 4)  # log(4): uniform over 4 tokens
    1.3863
    """
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(masked_lm_ids, tf.int32), logits=tf.cast(logits, tf.float32)
    )  # (B, P)
    weights = tf.cast(masked_lm_weights, tf.float32)
    return tf.reduce_sum(nll * weights), tf.reduce_sum(weights)


def replaced_token_detection_loss(logits, labels, input_mask):
    """Discriminator sigmoid cross-entropy over every real token.

    Args:
        logits: (batch, seq) float32, > 0 means "replaced".
        labels: (batch, seq) 1 for replaced tokens.
        input_mask: (batch, seq) 1 for real tokens, 0 for padding.

    Returns:
        (sum of masked BCE, number of real tokens), float32 scalars.
    """
    bce = tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.float32), logits=tf.cast(logits, tf.float32)
    )  # (B, T)
    mask = tf.cast(input_mask, tf.float32)
    return tf.reduce_sum(bce * mask), tf.reduce_sum(mask)


def global_mean(total, count):
    """total / count, with `count` summed over replicas inside a distributed step.

    Gradients are summed across replicas, so each replica's share of the
    loss must be its numerator over the global denominator.
    """
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        count = context.all_reduce(tf.distribute.ReduceOp.SUM, count)
    return total / tf.maximum(count, 1e-6)
