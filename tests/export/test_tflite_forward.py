"""electra_tf.tflite_forward: padded to length buckets, run by TFLite's XNNPACK, outputs cut back."""

import threading

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import electra_tf
from conftest import TINY
from electra_tf import ElectraClassifier, ElectraEncoder, ElectraQuestionAnswering
from electra_tf.export import tflite_forward as tflite_forward_module


def inputs(lengths, total=None, seed=0):
    """A (batch, total) batch of random ids, row i real for lengths[i] tokens, zeros after."""
    total = total or max(lengths)
    rng = np.random.default_rng(seed)
    mask = (np.arange(total)[None, :] < np.array(lengths)[:, None]).astype(np.int32)
    ids = rng.integers(5, TINY["vocab_size"], size=(len(lengths), total)).astype(np.int32) * mask
    types = (np.arange(total)[None, :] >= np.array(lengths)[:, None] // 2).astype(np.int32) * mask
    return {"input_word_ids": ids, "input_mask": mask, "input_type_ids": types}


@pytest.fixture(scope="module")
def encoder():
    tf.keras.utils.set_random_seed(0)
    model = ElectraEncoder(**TINY)
    model(inputs([3]), training=False)
    return model


@pytest.fixture
def conversions(monkeypatch):
    """The (batch_size, max_seq_length) of every flatbuffer tflite_forward converts."""
    shapes = []
    convert = tflite_forward_module.tflite_flatbuffer

    def recording(model, max_seq_length, batch_size):
        shapes.append((batch_size, max_seq_length))
        return convert(model, max_seq_length=max_seq_length, batch_size=batch_size)

    monkeypatch.setattr(tflite_forward_module, "tflite_flatbuffer", recording)
    return shapes


def test_encoder_outputs_equal_the_graph_forward_and_have_the_inputs_length(encoder, conversions):
    forward = electra_tf.tflite_forward(encoder, length_multiple=4)
    for lengths in ([3], [7, 5], [8, 6, 1], [2]):
        x = inputs(lengths)
        expected = encoder(x, training=False)
        got = forward(x)
        assert set(got) == {"sequence_output", "pooled_output"}
        assert got["sequence_output"].shape == tuple(expected["sequence_output"].shape)
        assert got["pooled_output"].shape == tuple(expected["pooled_output"].shape)
        real = x["input_mask"][..., None].astype(bool)
        np.testing.assert_allclose(np.where(real, got["sequence_output"], 0),
                                   np.where(real, expected["sequence_output"], 0), atol=2e-5)
        np.testing.assert_allclose(got["pooled_output"], expected["pooled_output"], atol=2e-5)
    # One conversion per (batch, length bucket): [3] and [2] share (1, 4).
    assert conversions == [(1, 4), (2, 8), (3, 8)]


def test_lengths_are_padded_up_to_the_next_multiple_and_capped_at_the_models_limit(
        encoder, conversions):
    forward = electra_tf.tflite_forward(encoder, length_multiple=8)
    for length in (1, 5, 8, 9, 16):  # max_sequence_length 16
        x = inputs([length])
        np.testing.assert_allclose(forward(x)["sequence_output"],
                                   encoder(x, training=False)["sequence_output"], atol=2e-5)
    assert conversions == [(1, 8), (1, 16)]
    capped = electra_tf.tflite_forward(encoder, length_multiple=5)
    for length in (14, 16):
        assert capped(inputs([length]))["sequence_output"].shape == (1, length, TINY["hidden_size"])
    assert conversions[2:] == [(1, 15), (1, 16)]  # 16 tokens: 20 is past max_sequence_length


def test_task_outputs_without_a_length_axis_are_left_whole(encoder):
    tf.keras.utils.set_random_seed(1)
    classifier = ElectraClassifier(ElectraEncoder(**TINY), 3)
    qa = ElectraQuestionAnswering(ElectraEncoder(**TINY))
    x = inputs([6, 4])
    logits = electra_tf.tflite_forward(classifier)(x)
    assert set(logits) == {"logits"} and logits["logits"].shape == (2, 3)
    np.testing.assert_allclose(logits["logits"], classifier(x, training=False), atol=2e-5)
    spans = electra_tf.tflite_forward(qa)(x)
    expected = qa(x, training=False)
    assert set(spans) == set(expected)
    for name, value in expected.items():
        assert spans[name].shape == tuple(value.shape) == (2, 6)
        real = x["input_mask"].astype(bool)  # padded positions get the mask's -10000s
        np.testing.assert_allclose(spans[name][real], value.numpy()[real], atol=1e-4)


def test_tensor_inputs_and_calls_from_several_threads(encoder):
    forward = electra_tf.tflite_forward(encoder, num_threads=1)
    batches = [inputs([length, 3], seed=length) for length in (3, 5, 7, 9)]
    expected = [forward(x)["sequence_output"] for x in batches]
    got = {}

    def call(i):  # tensors in; the same bucket (2, 8) from three of the threads at once
        x = {key: tf.constant(value) for key, value in batches[i].items()}
        got[i] = [forward(x)["sequence_output"] for _ in range(5)]

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, outputs in got.items():
        assert len(outputs) == 5
        for output in outputs:
            np.testing.assert_array_equal(output, expected[i])


@pytest.mark.parametrize("arguments, message", [
    ({"length_multiple": 0}, "length_multiple must be a positive integer; received 0"),
    ({"length_multiple": 8.0}, "length_multiple must be a positive integer; received 8.0"),
    ({"length_multiple": True}, "length_multiple must be a positive integer; received True"),
    ({"num_threads": -1}, "num_threads must be a positive integer; received -1"),
])
def test_bad_arguments_are_refused(encoder, arguments, message):
    with pytest.raises(ValueError, match=message):
        electra_tf.tflite_forward(encoder, **arguments)


def test_models_that_are_not_built_float32_keras_models_are_refused(encoder, tmp_path):
    class Unbuilt(tf_keras.Model):
        def call(self, inputs):
            return inputs["input_word_ids"]

    with pytest.raises(ValueError, match="was never built"):
        electra_tf.tflite_forward(Unbuilt())
    with pytest.raises(ValueError, match="must be a tf-keras model.*received function"):
        electra_tf.tflite_forward(lambda inputs: inputs)
    # The converter has no bfloat16 kernels: a clear refusal instead of its MLIR error.
    mixed = ElectraEncoder.from_config({**encoder.get_config(), "dtype": "mixed_bfloat16"})
    mixed(inputs([3]), training=False)
    message = r"converts float32 models; received ElectraEncoder computing in \['bfloat16'\]"
    with pytest.raises(ValueError, match=message):
        electra_tf.tflite_forward(mixed)
    with pytest.raises(ValueError, match=message):
        electra_tf.export_tflite(mixed, tmp_path / "mixed.tflite", max_seq_length=8)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("case, message", [
    ("list", r"keys \['input_word_ids', 'input_mask', 'input_type_ids'\]; received list"),
    ("missing mask", r"received \['input_type_ids', 'input_word_ids'\]"),
    ("shapes", r"one \(batch, length\) shape; received shapes"),
    ("rank 1", r"one \(batch, length\) shape; received shapes"),
    ("floats", "integer ids, mask and types; received dtypes"),
    ("empty", r"at least one token; received shape \(1, 0\)"),
    ("too long", "received 17 tokens; the model takes at most max_sequence_length=16"),
])
def test_bad_inputs_are_refused_before_any_conversion(encoder, conversions, case, message):
    x = inputs([5, 4])
    bad = {
        "list": [x["input_word_ids"]],
        "missing mask": {key: value for key, value in x.items() if key != "input_mask"},
        "shapes": {**x, "input_mask": x["input_mask"][:, :3]},
        "rank 1": {key: value[0] for key, value in x.items()},
        "floats": {**x, "input_word_ids": x["input_word_ids"].astype(np.float32)},
        "empty": {key: np.zeros((1, 0), np.int32) for key in x},
        "too long": inputs([17]),
    }[case]
    with pytest.raises(ValueError, match=message):
        electra_tf.tflite_forward(encoder)(bad)
    assert conversions == []
