"""ELECTRA's dynamic masking: choose ~15% of each sequence, turn 85% of those into [MASK].

Pure functions with static output shapes, so they run inside `tf.data.Dataset.map`
and inside an XLA-compiled train step alike. `mask_tokens` follows
google-research/electra `pretrain/pretrain_helpers.py::mask()` with two
deliberate differences, both marked "Differs from the original" below.
"""

import tensorflow as tf

from electra_tf.preprocessing.example_seeds import per_example_uniform
from electra_tf.utils.renamed_arguments import renamed_arguments

# ELECTRA's recipe: 85% of the chosen tokens become [MASK], 15% keep their
# original id. BERT's extra 10% random-token replacement is dropped because the
# generator's samples already put plausible wrong tokens in front of the
# discriminator.
MASK_TOKEN_PROBABILITY = 0.85

# Extra slots per position (configure_pretraining.py's `mask_prob + 0.005`): k is
# round(num_tokens * p), which can exceed p * T by half a token; 0.005 * T covers
# that once T >= 100, so a full sequence is not silently capped.
_SLOT_HEADROOM = 0.005


def max_predictions_per_seq(max_seq_length, mask_rate=0.15):
    """N, the fixed number of prediction slots: int((mask_rate + 0.005) * max_seq_length).

    Args:
        max_seq_length: T, the padded sequence length.
        mask_rate: fraction of tokens to predict (0.15; 0.25 for Large).

    Returns:
        A Python int, >= 1.

    Example:
    >>> max_predictions_per_seq(128), max_predictions_per_seq(512, 0.25)
    (19, 130)
    """
    if not 0.0 < mask_rate < 1.0:
        raise ValueError(
            f"`mask_rate` must be in (0, 1); received {mask_rate}. ELECTRA uses 0.15 "
            "(0.25 for Large)."
        )
    num_slots = min(int((mask_rate + _SLOT_HEADROOM) * max_seq_length), max_seq_length)
    if num_slots < 1:
        raise ValueError(
            f"max_seq_length={max_seq_length} with mask_rate={mask_rate} leaves no "
            "prediction slot (int((mask_rate + 0.005) * max_seq_length) = 0); use a longer "
            "sequence, a higher mask_rate, or pass `max_predictions` explicitly."
        )
    return num_slots


def scatter_update(sequence, updates, positions):
    """Writes `updates` into `sequence` at per-row `positions`; position 0 is left alone.

    Used to put generator samples back in place of the masked tokens, and to undo
    masking (scatter `masked_lm_ids` back). As in the original, updates aimed at
    position 0 are ignored: padding prediction slots point there, and position 0
    holds [CLS], which is never masked.

    Args:
        sequence: (batch, seq) or (batch, seq, depth) tensor.
        updates: (batch, num_predictions) or (batch, num_predictions, depth), same
            dtype as `sequence`.
        positions: (batch, num_predictions) int indices into `seq`. Non-zero
            positions must be unique within a row (`mask_tokens` guarantees it);
            for repeated ones which update wins is undefined.

    Returns:
        A tensor shaped like `sequence`.

    Example:
    >>> scatter_update(tf.constant([[1, 2, 3, 4]]), tf.constant([[9, 8]]),
    ...                tf.constant([[2, 0]])).numpy().tolist()
    [[1, 2, 9, 4]]
    """
    sequence = tf.convert_to_tensor(sequence)
    updates = tf.cast(updates, sequence.dtype)
    positions = tf.cast(positions, tf.int32)
    if positions.shape.rank != 2 or sequence.shape.rank not in (2, 3):
        raise ValueError(
            "`scatter_update` expects `sequence` (batch, seq[, depth]) and `positions` "
            f"(batch, num_predictions); received shapes {sequence.shape} and "
            f"{positions.shape}."
        )
    batch_index = tf.broadcast_to(
        tf.range(tf.shape(positions)[0])[:, None], tf.shape(positions)
    )  # (B, N)
    indices = tf.stack([batch_index, positions], axis=-1)  # (B, N, 2)
    updated = tf.tensor_scatter_nd_update(sequence, indices, updates)  # like sequence
    # Restore column 0: several padding slots may have written there.
    return tf.concat([sequence[:, :1], updated[:, 1:]], axis=1)


@renamed_arguments(seq_length="sequence_length")
def positions_to_mask(masked_lm_positions, masked_lm_weights, sequence_length):
    """A (batch, seq) 0/1 mask of the masked positions (ELECTRA 15%'s loss weights).

    Args:
        masked_lm_positions: (batch, num_predictions) positions in the sequence.
        masked_lm_weights: (batch, num_predictions) 1.0 for real slots, 0.0 for padding.
        sequence_length: T, the length of the sequence axis (a tensor's dimension,
            not a job's `max_seq_length`).

    Returns:
        (batch, seq) float32, 1.0 at each real masked position.

    Example:
    >>> positions_to_mask(tf.constant([[2, 0]]), tf.constant([[1.0, 0.0]]), 4).numpy().tolist()
    [[0.0, 0.0, 1.0, 0.0]]
    """
    one_hot = tf.one_hot(masked_lm_positions, sequence_length, dtype=tf.float32)  # (B, P, T)
    weighted = one_hot * tf.cast(masked_lm_weights, tf.float32)[:, :, None]  # (B, P, T)
    return tf.reduce_max(weighted, axis=1)  # (B, T)


@renamed_arguments(mask_id="mask_token_id")
def mask_tokens(
    input_word_ids,
    input_mask,
    *,
    mask_token_id,
    special_ids,
    seed,
    mask_rate=0.15,
    max_predictions=None,
):
    """ELECTRA's dynamic masking of a batch of packed sequences.

    Per row, as google-research/electra's `pretrain_helpers.mask`: with n real
    tokens (`input_mask` 1, [CLS] and [SEP] included), k = max(1, min(N,
    round(n * mask_rate))) positions are drawn uniformly among the maskable
    tokens (real tokens that are not `mask_token_id` or one of `special_ids`); each
    becomes `mask_token_id` with probability 0.85 and keeps its id otherwise (no
    random-token replacement). Slots k..N-1 are padding: position 0, id 0, weight 0.

    One deliberate difference: the original draws positions with replacement
    (`tf.random.categorical`), so it can pick a token twice and predict fewer
    than k; here the k positions are distinct (and k never exceeds the number
    of maskable tokens; a row with none gets k = 0).

    Args:
        input_word_ids: (batch, T) int32 ids; T must be static.
        input_mask: (batch, T), 1 for real tokens and 0 for padding.
        mask_token_id: the [MASK] id; also never chosen (`mask_id` in earlier
            versions, still accepted with a DeprecationWarning).
        special_ids: ids never chosen, e.g. (cls_token_id, sep_token_id, pad_token_id).
        seed: stateless seed: an int or a (2,) int tensor for one draw over the
            batch (vary it per batch, e.g. (seed, step)), or (batch, 2) int64
            per-example seeds (`example_seeds`), which make each row's mask
            independent of how the batch is split over replicas.
        mask_rate: fraction of real tokens to predict: 0.15, 0.25 for Large.
        max_predictions: N; defaults to `max_predictions_per_seq(T, mask_rate)`.

    Returns:
        Dict of
        `input_word_ids`: (batch, T) ids with the chosen tokens masked;
        `masked_lm_positions`: (batch, N) int32;
        `masked_lm_ids`: (batch, N) original ids at those positions;
        `masked_lm_weights`: (batch, N) float32, 1.0 for the k real slots.

    Example:
    >>> ids = tf.constant([[101, 7, 8, 9, 102, 0]])
    >>> out = mask_tokens(ids, tf.constant([[1, 1, 1, 1, 1, 0]]), mask_token_id=103,
    ...                   special_ids=(101, 102, 0), seed=1, mask_rate=0.5)
    >>> out["masked_lm_positions"].shape, float(tf.reduce_sum(out["masked_lm_weights"]))
    (TensorShape([1, 3]), 2.0)
    """
    input_word_ids = tf.convert_to_tensor(input_word_ids)
    if input_word_ids.shape.rank != 2 or input_word_ids.shape[1] is None:
        raise ValueError(
            "`input_word_ids` must be (batch, T) with a static T (pad to max_seq_length "
            f"and batch first); received shape {input_word_ids.shape}."
        )
    seq_length = input_word_ids.shape[1]  # T
    if max_predictions is None:
        max_predictions = max_predictions_per_seq(seq_length, mask_rate)
    elif not 1 <= max_predictions <= seq_length:
        raise ValueError(
            f"`max_predictions` must be in [1, {seq_length}] (the sequence length); "
            f"received {max_predictions}."
        )
    num_slots = max_predictions  # N
    seed = _stateless_seed(seed)

    candidates = tf.cast(input_mask, tf.bool)  # (B, T)
    for token_id in sorted(set(special_ids) | {mask_token_id}):
        candidates &= tf.not_equal(input_word_ids, tf.cast(token_id, input_word_ids.dtype))

    # k per row; float32 product then round-half-to-even, as the original's tf.round.
    num_candidates = tf.reduce_sum(tf.cast(candidates, tf.int32), axis=-1)  # (B,)
    num_tokens = tf.reduce_sum(tf.cast(input_mask, tf.float32), axis=-1)  # (B,) n
    num_to_predict = tf.cast(tf.round(num_tokens * mask_rate), tf.int32)
    num_to_predict = tf.clip_by_value(num_to_predict, 1, num_slots)
    num_to_predict = tf.minimum(num_to_predict, num_candidates)  # 0 when nothing is maskable
    weights = tf.sequence_mask(num_to_predict, num_slots, dtype=tf.float32)  # (B, N)
    real_slot = weights > 0.0

    # One draw: T scores to rank positions, N coins for [MASK]-or-keep.
    if seed.shape.rank == 2:
        noise = per_example_uniform(seed, [seq_length + num_slots])  # (B, T + N)
    else:
        noise = tf.random.stateless_uniform(
            tf.stack([tf.shape(input_word_ids)[0], seq_length + num_slots]), seed
        )  # (B, T + N) in [0, 1)
    # The N highest i.i.d. scores among the candidates are a uniform random subset,
    # ordered randomly; -1 puts every non-candidate below every candidate, and
    # k <= c guarantees the k real slots land on candidates.
    scores = tf.where(candidates, noise[:, :seq_length], -1.0)  # (B, T)
    _, positions = tf.math.top_k(scores, k=num_slots)  # (B, N) distinct
    positions = tf.where(real_slot, positions, 0)

    masked_lm_ids = tf.gather(input_word_ids, positions, batch_dims=1)  # (B, N)
    masked_lm_ids = tf.where(real_slot, masked_lm_ids, tf.zeros_like(masked_lm_ids))

    use_mask = real_slot & (noise[:, seq_length:] < MASK_TOKEN_PROBABILITY)  # (B, N)
    masked_word_ids = scatter_update(
        input_word_ids,
        tf.fill(tf.shape(positions), tf.cast(mask_token_id, input_word_ids.dtype)),
        tf.where(use_mask, positions, 0),  # position 0 = "no update"
    )
    return {
        "input_word_ids": masked_word_ids,
        "masked_lm_positions": positions,
        "masked_lm_ids": masked_lm_ids,
        "masked_lm_weights": weights,
    }


def _stateless_seed(seed):
    """An int, a (2,) or a (batch, 2) int tensor -> an int64 stateless seed tensor."""
    seed = tf.cast(seed, tf.int64)
    if seed.shape.rank == 0:
        seed = tf.stack([seed, tf.constant(0, tf.int64)])
    if seed.shape.rank not in (1, 2) or seed.shape[-1] not in (2, None):
        raise ValueError(
            "`seed` must be an int, a shape-(2,) int tensor (one stateless seed) or a "
            f"(batch, 2) int tensor (one per example); received shape {seed.shape}."
        )
    return seed
