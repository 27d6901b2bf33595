import inspect

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

import electra_tf
from conftest import TINY, make_inputs
from electra_tf import ElectraEncoder


def test_outputs_and_shapes(inputs):
    encoder = ElectraEncoder(**TINY)
    outputs = encoder(inputs)
    assert set(outputs) == {"sequence_output", "pooled_output", "encoder_outputs"}
    assert outputs["sequence_output"].shape == (3, 9, 8)
    assert outputs["pooled_output"].shape == (3, 8)
    assert len(outputs["encoder_outputs"]) == TINY["num_layers"]
    np.testing.assert_array_equal(outputs["encoder_outputs"][-1], outputs["sequence_output"])
    # pooled_output is the [CLS] vector: ELECTRA has no pooler.
    np.testing.assert_array_equal(outputs["pooled_output"], outputs["sequence_output"][:, 0])


def test_embedding_projection_only_when_sizes_differ():
    assert ElectraEncoder(**TINY).embedding_projection is not None
    same = ElectraEncoder(**{**TINY, "embedding_size": None})
    assert same.embedding_projection is None and same.embedding_size == TINY["hidden_size"]


def test_variable_sequence_length_in_one_traced_function():
    encoder = ElectraEncoder(**TINY)
    spec = tf.TensorSpec((None, None), tf.int32)
    run = tf.function(
        lambda ids, mask, types: encoder(
            {"input_word_ids": ids, "input_mask": mask, "input_type_ids": types}
        )["sequence_output"],
        input_signature=[spec, spec, spec],
    )
    for seq_length in (3, 9, 16):
        x = make_inputs(batch_size=2, seq_length=seq_length)
        out = run(x["input_word_ids"], x["input_mask"], x["input_type_ids"])
        assert out.shape == (2, seq_length, 8)
        np.testing.assert_allclose(out, encoder(x)["sequence_output"], atol=1e-6)


def test_padding_does_not_change_real_tokens():
    encoder = ElectraEncoder(**TINY)
    x = make_inputs(batch_size=1, seq_length=6)
    padded = {k: np.pad(v, [(0, 0), (0, 4)]) for k, v in x.items()}
    short = encoder(x)["sequence_output"]
    long = encoder(padded)["sequence_output"][:, :6]
    np.testing.assert_allclose(short, long, atol=1e-5)


def test_optional_mask_and_types_default_to_no_padding_one_segment():
    encoder = ElectraEncoder(**TINY)
    ids = make_inputs()["input_word_ids"]
    full = encoder(
        {"input_word_ids": ids, "input_mask": np.ones_like(ids), "input_type_ids": np.zeros_like(ids)}
    )
    np.testing.assert_allclose(encoder({"input_word_ids": ids})["sequence_output"],
                               full["sequence_output"], atol=1e-6)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"input_ids": np.zeros((1, 3), np.int32)}, "received keys \\['input_ids'\\]"),
        ({"input_word_ids": np.zeros((1, 3), np.int32), "extra": 1}, "extra"),
        ({"input_word_ids": np.zeros((3,), np.int32)}, "shape \\(batch, seq\\)"),
        ({"input_word_ids": np.zeros((1, 17), np.int32)}, "max_sequence_length=16"),
        ({"input_word_ids": np.zeros((1, 3), np.int32), "input_mask": np.ones((1, 4))}, "input_mask"),
    ],
)
def test_bad_inputs_say_what_was_received(bad, message):
    with pytest.raises(ValueError, match=message):
        ElectraEncoder(**TINY)(bad)


def test_not_a_dict_is_rejected():
    with pytest.raises(ValueError, match="called on a dict with keys .* received a EagerTensor"):
        ElectraEncoder(**TINY)(np.zeros((1, 3), np.int32))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="hidden_size=8, num_heads=3"):
        ElectraEncoder(**{**TINY, "num_heads": 3})
    with pytest.raises(ValueError, match="vocab_size=0"):
        ElectraEncoder(**{**TINY, "vocab_size": 0})
    with pytest.raises(TypeError):
        ElectraEncoder(**TINY, hidden_dropout=0.1)  # unknown keyword: not swallowed


def test_get_config_mirrors_init_and_round_trips(inputs):
    encoder = ElectraEncoder(**TINY)
    config = encoder.get_config()
    init_args = set(inspect.signature(ElectraEncoder.__init__).parameters) - {"self", "kwargs"}
    assert init_args <= set(config)
    assert set(config) - init_args == {"name", "trainable", "dtype"}
    clone = ElectraEncoder.from_config(config)
    assert clone.get_config() == config
    clone.set_weights(encoder.get_weights())
    np.testing.assert_allclose(clone(inputs)["sequence_output"], encoder(inputs)["sequence_output"])


def test_shared_embedding_layer_must_fit():
    encoder = ElectraEncoder(**TINY)
    with pytest.raises(ValueError, match="does not fit"):
        ElectraEncoder(**{**TINY, "embedding_size": 6}, embedding_layer=encoder.embedding_layer)


def test_trains_with_fit_on_tf_data():
    """The encoder is an ordinary tf-keras model: gradients flow, fit() runs."""
    encoder = ElectraEncoder(**TINY)
    x = make_inputs(batch_size=8, seq_length=6)
    inputs = {k: keras.Input((None,), dtype=tf.int32, name=k) for k in x}
    logits = keras.layers.Dense(2)(encoder(inputs)["pooled_output"])
    model = keras.Model(inputs, logits)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = tf.data.Dataset.from_tensor_slices((x, np.arange(8) % 2)).batch(4)
    history = model.fit(data, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
