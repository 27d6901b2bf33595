"""electra_tf.xla_forward: padded to length buckets, compiled by XLA, outputs cut back."""

import numpy as np
import pytest
import tensorflow as tf

import electra_tf
from electra_tf import ElectraClassifier, ElectraEncoder, ElectraQuestionAnswering


def inputs(lengths, total=None, seed=0):
    """A (batch, total) batch of random ids, row i real for lengths[i] tokens, zeros after."""
    total = total or max(lengths)
    rng = np.random.default_rng(seed)
    mask = (np.arange(total)[None, :] < np.array(lengths)[:, None]).astype(np.int32)
    ids = rng.integers(5, 1000, size=(len(lengths), total)).astype(np.int32) * mask
    types = (np.arange(total)[None, :] >= np.array(lengths)[:, None] // 2).astype(np.int32) * mask
    return {"input_word_ids": tf.constant(ids), "input_mask": tf.constant(mask),
            "input_type_ids": tf.constant(types)}


def test_encoder_outputs_equal_the_graph_forward_and_have_the_inputs_length():
    encoder = ElectraEncoder.from_preset("tiny")
    forward = electra_tf.xla_forward(encoder, length_multiple=8)
    for lengths in ([3], [11, 5], [16, 9, 1]):
        x = inputs(lengths)
        expected = encoder(x, training=False)
        got = forward(x)
        assert got["sequence_output"].shape == expected["sequence_output"].shape
        assert got["pooled_output"].shape == expected["pooled_output"].shape
        real = x["input_mask"].numpy()[..., None].astype(bool)
        np.testing.assert_allclose(np.where(real, got["sequence_output"], 0),
                                   np.where(real, expected["sequence_output"], 0), atol=2e-5)
        np.testing.assert_allclose(got["pooled_output"], expected["pooled_output"], atol=2e-5)
        for ours, theirs in zip(got["encoder_outputs"], expected["encoder_outputs"]):
            assert ours.shape == theirs.shape


def test_lengths_are_padded_up_to_the_next_multiple_and_outputs_cut_back():
    def model(inputs, training):  # what the compiled program sees, as outputs
        ids = inputs["input_word_ids"]  # (batch, padded length)
        return {"padded_length": tf.fill([tf.shape(ids)[0]], tf.shape(ids)[1]),  # (batch,)
                "ids": ids,  # (batch, padded length): cut back
                "mask_sum": tf.reduce_sum(inputs["input_mask"], axis=1, keepdims=True)}

    forward = electra_tf.xla_forward(model, length_multiple=8)
    for length, padded in ((1, 8), (5, 8), (8, 8), (9, 16), (16, 16), (17, 24)):
        x = inputs([length, max(1, length - 2)], seed=length)
        outputs = forward(x)
        assert outputs["padded_length"].numpy().tolist() == [padded, padded]
        np.testing.assert_array_equal(outputs["ids"], x["input_word_ids"])  # padding cut off
        np.testing.assert_array_equal(outputs["mask_sum"][:, 0], [length, max(1, length - 2)])
    exact = electra_tf.xla_forward(model, length_multiple=1)(inputs([5]))
    assert exact["padded_length"].numpy().tolist() == [5]


def test_task_outputs_without_a_length_axis_are_left_whole():
    classifier = ElectraClassifier(ElectraEncoder.from_preset("tiny"), 3)
    qa = ElectraQuestionAnswering(ElectraEncoder.from_preset("tiny"))
    x = inputs([6, 4])
    logits = electra_tf.xla_forward(classifier)(x)
    np.testing.assert_allclose(logits, classifier(x, training=False), atol=2e-5)
    spans = electra_tf.xla_forward(qa)(x)
    expected = qa(x, training=False)
    assert tf.nest.map_structure(lambda t: tuple(t.shape), spans) == tf.nest.map_structure(
        lambda t: tuple(t.shape), expected)
    for ours, theirs in zip(tf.nest.flatten(spans), tf.nest.flatten(expected)):
        np.testing.assert_allclose(ours, theirs, atol=2e-4, rtol=1e-5)


def test_mixed_bfloat16_encoder_runs_close_to_its_graph_forward():
    encoder = ElectraEncoder.from_preset("tiny")
    mixed = ElectraEncoder.from_config({**encoder.get_config(), "dtype": "mixed_bfloat16"})
    x = inputs([7])
    mixed(x, training=False)
    mixed.set_weights(encoder.get_weights())
    got = electra_tf.xla_forward(mixed)(x)["sequence_output"]
    assert got.dtype == tf.bfloat16 and got.shape == (1, 7, encoder.hidden_size)
    np.testing.assert_allclose(tf.cast(got, tf.float32), encoder(x)["sequence_output"],
                               atol=0.15)


@pytest.mark.parametrize("multiple", [0, -8, 2.5, True, "8"])
def test_bad_length_multiple_is_refused(multiple):
    with pytest.raises(ValueError, match="length_multiple must be a positive integer"):
        electra_tf.xla_forward(ElectraEncoder.from_preset("tiny"), length_multiple=multiple)


def test_bad_inputs_are_refused_with_what_was_received():
    forward = electra_tf.xla_forward(ElectraEncoder.from_preset("tiny"))
    with pytest.raises(ValueError, match="received list"):
        forward([[1, 2, 3]])
    x = inputs([5])
    with pytest.raises(ValueError, match="one \\(batch, length\\) shape"):
        forward({**x, "input_mask": tf.ones([1, 6], tf.int32)})
    with pytest.raises(ValueError, match="one \\(batch, length\\) shape"):
        forward({key: value[0] for key, value in x.items()})
    with pytest.raises(ValueError, match="needs an input_mask"):
        forward({"input_word_ids": x["input_word_ids"], "input_type_ids": x["input_type_ids"]})


def test_lengths_are_capped_at_the_models_limit_and_longer_inputs_refused():
    encoder = ElectraEncoder.from_preset("tiny")  # max_sequence_length 128
    forward = electra_tf.xla_forward(encoder, length_multiple=5)
    x = inputs([127, 100])  # 127 would pad to 130, past the position embeddings: 128
    got = forward(x)["sequence_output"]
    assert got.shape == (2, 127, encoder.hidden_size)
    real = x["input_mask"].numpy()[..., None].astype(bool)
    np.testing.assert_allclose(np.where(real, got, 0),
                               np.where(real, encoder(x, training=False)["sequence_output"], 0),
                               atol=2e-5)
    with pytest.raises(ValueError, match="xla_forward received 129 tokens; the model takes at "
                                         "most max_sequence_length=128"):
        forward(inputs([129]))
