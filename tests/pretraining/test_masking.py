"""Dynamic masking: the k formula, the 85/15 split, uniform choice, static shapes, XLA."""

import numpy as np
import pytest
import tensorflow as tf

from electra_tf.pretraining.masking import (
    max_predictions_per_seq,
    mask_tokens,
    scatter_update,
)

PAD, CLS, SEP, MASK = 0, 101, 102, 103
SPECIAL = (CLS, SEP, PAD)


def packed_batch(lengths_a, lengths_b, seq_length, seed=0):
    """[CLS] A [SEP] B [SEP] [PAD]... rows of random word ids (>= 1000), some [MASK]s in A."""
    rng = np.random.default_rng(seed)
    ids = np.full((len(lengths_a), seq_length), PAD, np.int32)
    for row, (a, b) in enumerate(zip(lengths_a, lengths_b)):
        tokens = [CLS, *rng.integers(1000, 30000, a), SEP]
        if b:
            tokens += [*rng.integers(1000, 30000, b), SEP]
        ids[row, : len(tokens)] = tokens
    # A few [MASK]s already in the text must not be chosen either.
    ids[:, 1][np.asarray(lengths_a) > 3] = MASK
    return ids, (ids != PAD).astype(np.int32)


def expected_k(ids, mask, mask_rate, num_slots):
    """The original's k = max(1, min(N, round(n * p))), n = real tokens ([CLS]/[SEP] too),
    in float32 with round-half-to-even as tf.round; never more than the maskable tokens."""
    maskable = (mask == 1) & ~np.isin(ids, [CLS, SEP, PAD, MASK])
    num_tokens = mask.sum(-1).astype(np.float32)
    k = np.clip(np.round(num_tokens * np.float32(mask_rate)), 1, num_slots).astype(np.int32)
    return np.minimum(k, maskable.sum(-1)), maskable


def check_invariants(ids, mask, out, mask_rate):
    """Every row: k slots, distinct maskable positions, right ids, only [MASK] or kept."""
    seq_length = ids.shape[1]
    num_slots = max_predictions_per_seq(seq_length, mask_rate)
    positions = out["masked_lm_positions"].numpy()
    lm_ids = out["masked_lm_ids"].numpy()
    weights = out["masked_lm_weights"].numpy()
    masked = out["input_word_ids"].numpy()
    assert positions.shape == lm_ids.shape == weights.shape == (len(ids), num_slots)
    assert positions.dtype == np.int32 and weights.dtype == np.float32
    k, maskable = expected_k(ids, mask, mask_rate, num_slots)
    np.testing.assert_array_equal(weights.sum(-1), k)
    for row in range(len(ids)):
        np.testing.assert_array_equal(weights[row], np.arange(num_slots) < k[row])
        chosen = positions[row, : k[row]]
        assert len(set(chosen.tolist())) == k[row], "positions repeat"
        assert maskable[row, chosen].all(), "a special, [MASK] or padding token was chosen"
        np.testing.assert_array_equal(lm_ids[row, : k[row]], ids[row, chosen])
        assert (positions[row, k[row]:] == 0).all() and (lm_ids[row, k[row]:] == 0).all()
        changed = np.flatnonzero(masked[row] != ids[row])
        assert set(changed.tolist()) <= set(chosen.tolist())
        assert (masked[row, changed] == MASK).all()
    return k, maskable


def test_max_predictions_per_seq_matches_the_original_config():
    # int((mask_rate + 0.005) * max_seq_length), configure_pretraining.py.
    assert max_predictions_per_seq(128) == 19
    assert max_predictions_per_seq(512) == 79
    assert max_predictions_per_seq(128, 0.25) == 32
    assert max_predictions_per_seq(512, 0.25) == 130


@pytest.mark.parametrize("mask_rate", [0.15, 0.25])
def test_statistics_over_many_sequences(mask_rate):
    rng = np.random.default_rng(1)
    seq_length, rows = 128, 3000
    lengths_a = rng.integers(1, 80, rows)
    lengths_b = np.minimum(rng.integers(0, 80, rows), seq_length - 3 - lengths_a)
    ids, mask = packed_batch(lengths_a, lengths_b, seq_length)
    out = mask_tokens(ids, mask, mask_token_id=MASK, special_ids=SPECIAL, seed=7,
                      mask_rate=mask_rate)
    k, maskable = check_invariants(ids, mask, out, mask_rate)

    # ~mask_rate of the real tokens are predicted (rounding and k >= 1 bias it slightly).
    assert k.sum() / mask.sum() == pytest.approx(mask_rate, abs=0.01)
    # 85% of the predicted tokens read [MASK], 15% keep their id; no random tokens.
    positions = out["masked_lm_positions"].numpy()
    weights = out["masked_lm_weights"].numpy() > 0
    shown = np.take_along_axis(out["input_word_ids"].numpy(), positions, axis=1)[weights]
    original = out["masked_lm_ids"].numpy()[weights]
    became_mask = np.mean(shown == MASK)
    assert became_mask == pytest.approx(0.85, abs=0.015)
    assert np.all((shown == MASK) | (shown == original))


def test_positions_are_uniform_over_maskable_tokens():
    # 4000 identical rows with 100 maskable tokens: each is chosen with p = 15/100.
    ids, mask = packed_batch([60] * 4000, [40] * 4000, 128)
    ids[:, 1] = 5000  # no [MASK] in the text here: 100 maskable tokens per row
    out = mask_tokens(ids, mask, mask_token_id=MASK, special_ids=SPECIAL, seed=3)
    positions = out["masked_lm_positions"].numpy()[:, :15]
    counts = np.bincount(positions.ravel(), minlength=128)
    maskable = np.r_[1:61, 62:102]
    assert counts[np.setdiff1d(np.arange(128), maskable)].sum() == 0
    # Binomial(4000, 0.15): sd ~ 22.6; 5 sd over 100 positions fails ~never.
    assert np.abs(counts[maskable] - 600).max() < 5 * 22.6


@pytest.mark.parametrize(
    "num_maskable, expected",
    [
        # n = maskable + 2 ([CLS], [SEP] count, as in the original)
        (1, 1),  # round(3 * 0.15 = 0.45) = 0, raised to 1
        (2, 1),  # round(0.6)
        (6, 1),  # round(1.2)
        (9, 2),  # round(1.65)
        (23, 4),  # round(3.75)
        (100, 15),  # round(15.3)
        (125, 19),  # round(19.05) = 19 = N
    ],
)
def test_k_formula_for_several_lengths(num_maskable, expected):
    ids, mask = packed_batch([num_maskable], [0], 128)
    ids[:, 1] = 5000  # keep every text token maskable
    out = mask_tokens(ids, mask, mask_token_id=MASK, special_ids=SPECIAL, seed=0)
    assert out["masked_lm_weights"].numpy().sum() == expected
    check_invariants(ids, mask, out, 0.15)


def test_k_is_capped_at_n_and_zero_without_maskable_tokens():
    ids, mask = packed_batch([60, 0, 3], [60, 0, 0], 128)
    ids[2, 1:4] = MASK  # only [MASK]s in the text: nothing to choose
    out = mask_tokens(ids, mask, mask_token_id=MASK, special_ids=SPECIAL, seed=0, mask_rate=0.25)
    # round(123 * 0.25) = 31 <= N = 32; an empty row and a [MASK]-only row get 0.
    np.testing.assert_array_equal(out["masked_lm_weights"].numpy().sum(-1), [31, 0, 0])
    np.testing.assert_array_equal(out["input_word_ids"].numpy()[1:], ids[1:])
    capped = mask_tokens(ids, mask, mask_token_id=MASK, special_ids=SPECIAL, seed=0,
                         max_predictions=5)
    assert capped["masked_lm_weights"].numpy()[0].sum() == 5


def test_seeded_and_deterministic():
    ids, mask = packed_batch([30] * 8, [20] * 8, 64)
    run = lambda seed: mask_tokens(ids, mask, mask_token_id=MASK, special_ids=SPECIAL, seed=seed)
    first, again, other = run(11), run(11), run(12)
    np.testing.assert_array_equal(first["masked_lm_positions"], again["masked_lm_positions"])
    np.testing.assert_array_equal(first["input_word_ids"], again["input_word_ids"])
    assert not np.array_equal(first["masked_lm_positions"], other["masked_lm_positions"])


def test_per_example_seeds_do_not_depend_on_the_batch():
    ids, mask = packed_batch([30] * 6, [20] * 6, 64)
    seeds = tf.constant([[5, row] for row in range(6)], tf.int64)
    whole = mask_tokens(ids, mask, mask_token_id=MASK, special_ids=SPECIAL, seed=seeds)
    half = mask_tokens(ids[3:], mask[3:], mask_token_id=MASK, special_ids=SPECIAL, seed=seeds[3:])
    np.testing.assert_array_equal(whole["masked_lm_positions"][3:], half["masked_lm_positions"])
    check_invariants(ids, mask, whole, 0.15)


def test_compiles_with_xla_and_in_tf_data():
    ids, mask = packed_batch([40] * 16, [30] * 16, 128)

    @tf.function(jit_compile=True)
    def step(ids, mask, seed):
        return mask_tokens(ids, mask, mask_token_id=MASK, special_ids=SPECIAL, seed=seed)

    out = step(tf.constant(ids), tf.constant(mask), tf.constant([1, 2], tf.int64))
    check_invariants(ids, mask, out, 0.15)
    # XLA's RNG streams differ from the non-XLA kernels, so only invariants compare.

    dataset = tf.data.Dataset.from_tensor_slices((ids, mask)).batch(4, drop_remainder=True)
    dataset = dataset.enumerate().map(
        lambda step, batch: mask_tokens(
            batch[0], batch[1], mask_token_id=MASK, special_ids=SPECIAL,
            seed=tf.stack([tf.constant(0, tf.int64), step]),
        )
    )
    assert dataset.element_spec["masked_lm_positions"].shape == (4, 19)
    for row, out in enumerate(dataset):
        check_invariants(ids[4 * row : 4 * row + 4], mask[4 * row : 4 * row + 4], out, 0.15)


def test_scatter_update_puts_tokens_back_and_ignores_position_zero():
    ids, mask = packed_batch([30] * 4, [20] * 4, 64)
    out = mask_tokens(ids, mask, mask_token_id=MASK, special_ids=SPECIAL, seed=4)
    # Undo the masking: padding slots (position 0, id 0) must leave [CLS] alone.
    restored = scatter_update(
        out["input_word_ids"], out["masked_lm_ids"], out["masked_lm_positions"]
    )
    np.testing.assert_array_equal(restored, ids)

    sequence = tf.reshape(tf.range(2 * 4 * 3, dtype=tf.float32), (2, 4, 3))  # (B, T, D)
    updates = -tf.ones((2, 2, 3))  # (B, N, D)
    updated = scatter_update(sequence, updates, tf.constant([[1, 0], [3, 2]])).numpy()
    np.testing.assert_array_equal(updated[0, 1], [-1, -1, -1])
    np.testing.assert_array_equal(updated[0, 0], sequence[0, 0])  # position 0 ignored
    np.testing.assert_array_equal(updated[1, 2:], -np.ones((2, 3)))
    np.testing.assert_array_equal(updated[1, :2], sequence[1, :2])

    compiled = tf.function(scatter_update, jit_compile=True)
    np.testing.assert_array_equal(
        compiled(tf.constant(ids), out["masked_lm_ids"], out["masked_lm_positions"]), ids
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(mask_rate=0.0), "mask_rate"),
        (dict(mask_rate=1.5), "mask_rate"),
        (dict(max_predictions=200), "max_predictions"),
        (dict(seed=tf.zeros((2, 3, 2), tf.int64)), "seed"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, message):
    ids, mask = packed_batch([30], [20], 64)
    arguments = dict(mask_token_id=MASK, special_ids=SPECIAL, seed=0) | kwargs
    with pytest.raises(ValueError, match=message):
        mask_tokens(ids, mask, **arguments)


def test_short_or_dynamic_sequences_raise_value_error():
    with pytest.raises(ValueError, match="no prediction slot"):
        max_predictions_per_seq(4)
    dynamic = tf.function(
        lambda ids: mask_tokens(ids, ids, mask_token_id=MASK, special_ids=SPECIAL, seed=0),
        input_signature=[tf.TensorSpec((None, None), tf.int32)],
    )
    with pytest.raises(ValueError, match="static T"):
        dynamic.get_concrete_function()


def test_mask_id_of_earlier_versions_still_works_and_warns():
    ids, mask = packed_batch([30], [20], 64)
    with pytest.deprecated_call(match=r"mask_tokens\(mask_id=...\) is deprecated"):
        old = mask_tokens(ids, mask, mask_id=MASK, special_ids=SPECIAL, seed=0)
    new = mask_tokens(ids, mask, mask_token_id=MASK, special_ids=SPECIAL, seed=0)
    np.testing.assert_array_equal(old["input_word_ids"], new["input_word_ids"])
    with pytest.raises(TypeError, match="both mask_id= and mask_token_id="):
        mask_tokens(ids, mask, mask_id=MASK, mask_token_id=MASK, special_ids=SPECIAL, seed=0)
