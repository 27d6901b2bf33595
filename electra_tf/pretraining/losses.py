"""ELECTRA's two losses, as pure functions of logits and targets.

Each returns (numerator, denominator): the loss is their ratio. Keeping them
apart lets a distributed step divide by the *global* denominator, so a batch
split over replicas gives exactly the loss of the whole batch on one device.
"""

import math

import tensorflow as tf

from electra_tf.layers.fused_kernels import sparse_softmax_cross_entropy


def masked_lm_loss(logits, masked_lm_ids, masked_lm_weights):
    """Generator cross-entropy at the masked positions.

    Args:
        logits: (batch, num_predictions, vocab_size), float32 or a mixed-precision dtype.
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
    nll = sparse_softmax_cross_entropy(logits, masked_lm_ids)  # (B, P)
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


def electric_loss(energies, noise_log_probs, labels, input_mask, mask_rate):
    """Electric's noise-contrastive loss: is each token from the data or from the noise q?

    Electric (Clark et al., EMNLP 2020) models p(x_t | context) ∝ exp(-E(x)_t).
    A fraction k = `mask_rate` of the positions holds a sample of the noise
    distribution q (the cloze generator), the rest the data. The posterior that
    a token is noise is then k·q / (k·q + (1-k)·exp(-E)), whose logit is

        E(x)_t + log q(x_t | context) + log(k / (1 - k)),

    and the loss is its binary cross-entropy against "noise" labels, as in
    google-research/electra's `electric_objective`. q is held fixed here
    (stop-gradient): the generator learns from its own cloze loss only.

    Args:
        energies: (batch, seq) E(x)_t, the energy model's per-token output.
        noise_log_probs: (batch, seq) log q(x_t | context) of the token in place.
        labels: (batch, seq) 1 where the token was drawn from q (every masked
            position, even when the draw equals the original), 0 for data.
        input_mask: (batch, seq) 1 for real tokens, 0 for padding.
        mask_rate: k, the fraction of positions holding noise samples.

    Returns:
        (sum of masked BCE, number of real tokens), float32 scalars.

    Example:
    >>> total, count = electric_loss(tf.constant([[0.0]]), tf.constant([[0.0]]),
    ...                              tf.constant([[1]]), tf.constant([[1]]), 0.5)
    >>> round(float(total / count), 4)  # logit 0: log 2
    0.6931
    """
    if not 0.0 < mask_rate < 1.0:
        raise ValueError(f"`mask_rate` must be in (0, 1); received {mask_rate}.")
    logits = (tf.cast(energies, tf.float32) + tf.stop_gradient(tf.cast(noise_log_probs, tf.float32))
              + math.log(mask_rate / (1.0 - mask_rate)))  # (B, T)
    return replaced_token_detection_loss(logits, labels, input_mask)


def copy_mechanism_lm_loss(logits, copy_logits, input_word_ids, target_ids, weights):
    """All-Tokens MLM's loss: a softmax over the vocabulary mixed with copying the input token.

    The ELECTRA paper (§3.2) trains All-Tokens MLM "with an explicit copy
    mechanism that outputs a copy probability D for each token using a sigmoid
    layer": p(target) = D·[target = input token] + (1 - D)·softmax(logits)[target].

    Args:
        logits: (batch, seq, vocab_size) the language model's logits.
        copy_logits: (batch, seq) logit of D, the copy probability.
        input_word_ids: (batch, seq) the (corrupted) tokens the model saw.
        target_ids: (batch, seq) the original tokens to predict.
        weights: (batch, seq) 1.0 where the loss counts, 0.0 elsewhere.

    Returns:
        (sum of weighted NLL, sum of weights), float32 scalars.

    Example:
    >>> total, count = copy_mechanism_lm_loss(
    ...     tf.zeros((1, 1, 4)), tf.constant([[0.0]]), tf.constant([[2]]),
    ...     tf.constant([[2]]), tf.constant([[1.0]]))
    >>> round(float(total / count), 4)  # -log(0.5·1 + 0.5·0.25)
    0.47
    """
    log_softmax = -tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(target_ids, tf.int32), logits=tf.cast(logits, tf.float32))  # (B, T)
    copy_logits = tf.cast(copy_logits, tf.float32)
    same = tf.equal(tf.cast(target_ids, tf.int32), tf.cast(input_word_ids, tf.int32))
    # log(D·same + (1-D)·q) as a log-sum-exp; "not same" contributes log 0 (−1e4 here).
    log_copy = tf.math.log_sigmoid(copy_logits) + tf.where(same, 0.0, -1e4)  # (B, T)
    log_generate = tf.math.log_sigmoid(-copy_logits) + log_softmax  # (B, T)
    nll = -tf.reduce_logsumexp(tf.stack([log_copy, log_generate], axis=-1), axis=-1)  # (B, T)
    weights = tf.cast(weights, tf.float32)
    return tf.reduce_sum(nll * weights), tf.reduce_sum(weights)


def global_mean(total, count):
    """total / count, with `count` summed over replicas inside a distributed step.

    Gradients are summed across replicas, so each replica's share of the
    loss must be its numerator over the global denominator.
    """
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        count = context.all_reduce(tf.distribute.ReduceOp.SUM, count)
    return total / tf.maximum(count, 1e-6)


def loss_of_parts(parts, loss_weights):
    """The whole batch's loss from its parts' (total, count) pairs.

    Σ over terms of weight · (Σ parts' totals) / (Σ parts' counts), each
    count global over replicas (`global_mean`): what one pass over the whole
    batch gives, where the mean of the parts' losses would not be.

    Args:
        parts: the parts' outputs, each a dict holding a (total, count) pair
            per key of `loss_weights`.
        loss_weights: term -> weight, e.g. {"mlm": 1.0, "rtd": 50.0}.

    Example:
    >>> parts = [{"mlm": (tf.constant(3.0), tf.constant(1.0))},
    ...          {"mlm": (tf.constant(1.0), tf.constant(3.0))}]
    >>> float(loss_of_parts(parts, {"mlm": 2.0}))  # 2 · 4 / 4, not 2 · (3 + 1/3) / 2
    2.0
    """
    loss = 0.0
    for term, weight in loss_weights.items():
        total = tf.add_n([part[term][0] for part in parts])
        count = tf.add_n([part[term][1] for part in parts])
        loss += weight * global_mean(total, count)
    return loss
