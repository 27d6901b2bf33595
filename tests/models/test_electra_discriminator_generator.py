import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from conftest import TINY, make_inputs
from electra_tf import ElectraDiscriminator, ElectraEncoder, ElectraGenerator


def tiny_pair():
    discriminator = ElectraDiscriminator(ElectraEncoder(**TINY))
    generator = ElectraGenerator(
        ElectraEncoder(
            **{**TINY, "hidden_size": 4, "num_heads": 1, "intermediate_size": 8},
            embedding_layer=discriminator.encoder.embedding_layer,
        )
    )
    return generator, discriminator


def test_discriminator_logits_per_token(inputs):
    discriminator = ElectraDiscriminator(ElectraEncoder(**TINY))
    outputs = discriminator(inputs)
    assert outputs["logits"].shape == (3, 9)
    assert outputs["logits"].dtype == tf.float32
    assert outputs["sequence_output"].shape == (3, 9, 8)


def test_generator_logits_everywhere_and_at_masked_positions(inputs):
    generator = ElectraGenerator(ElectraEncoder(**TINY))
    full = generator(inputs)["logits"]
    assert full.shape == (3, 9, 37)
    positions = np.array([[1, 4], [0, 2], [3, 3]], np.int32)
    at = generator({**inputs, "masked_lm_positions": positions})["logits"]
    assert at.shape == (3, 2, 37)
    np.testing.assert_allclose(at, np.take_along_axis(full.numpy(), positions[..., None], 1),
                               atol=1e-5)


def test_generator_output_layer_is_tied_to_word_embeddings(inputs):
    generator = ElectraGenerator(ElectraEncoder(**TINY))
    before = generator(inputs)["logits"]
    generator.encoder.word_embeddings.assign(generator.encoder.word_embeddings * 2.0)
    assert not np.allclose(before, generator(inputs)["logits"])
    # No separate output matrix exists: only the bias is the head's own.
    names = [w.name for w in generator.weights if "output" in w.name and "bias" in w.name]
    assert any("output_bias" in n for n in names)
    assert not any(w.shape == (TINY["embedding_size"], TINY["vocab_size"]) for w in generator.weights)


def test_generator_shares_discriminator_embeddings(inputs):
    generator, discriminator = tiny_pair()
    assert generator.encoder.embedding_layer is discriminator.encoder.embedding_layer
    shared = {id(w) for w in discriminator.encoder.embedding_layer.weights}
    assert shared <= {id(w) for w in generator.weights}
    # One gradient step on the generator moves the discriminator's embeddings.
    before = discriminator(inputs)["logits"].numpy()
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(generator(inputs)["logits"] ** 2)
    variables = generator.trainable_variables
    keras.optimizers.SGD(1.0).apply_gradients(zip(tape.gradient(loss, variables), variables))
    assert not np.allclose(before, discriminator(inputs)["logits"])


def test_tie_survives_checkpoint_save_and_restore(tmp_path, inputs):
    generator, discriminator = tiny_pair()
    prefix = tf.train.Checkpoint(generator=generator, discriminator=discriminator).save(
        str(tmp_path / "ckpt")
    )
    reader = tf.train.load_checkpoint(prefix)
    word_tables = [n for n in reader.get_variable_to_shape_map() if "word_embeddings" in n]
    assert len(word_tables) == 1  # written once, not once per model

    generator2, discriminator2 = tiny_pair()
    tf.train.Checkpoint(generator=generator2, discriminator=discriminator2).restore(prefix).assert_consumed()
    assert generator2.encoder.embedding_layer is discriminator2.encoder.embedding_layer
    np.testing.assert_allclose(generator2(inputs)["logits"], generator(inputs)["logits"], atol=1e-6)
    np.testing.assert_allclose(discriminator2(inputs)["logits"], discriminator(inputs)["logits"], atol=1e-6)


def test_tie_survives_saved_model(tmp_path, inputs):
    generator, discriminator = tiny_pair()
    generator(inputs), discriminator(inputs)  # Keras saves the signatures it has seen.
    module = tf.Module()
    module.generator, module.discriminator = generator, discriminator
    tf.saved_model.save(module, str(tmp_path / "pair"))
    loaded = tf.saved_model.load(str(tmp_path / "pair"))
    g_table = loaded.generator.encoder.embedding_layer.word_embeddings
    d_table = loaded.discriminator.encoder.embedding_layer.word_embeddings
    assert g_table is d_table
    g_table.assign(g_table * 0.0)
    assert np.all(d_table.numpy() == 0.0)


@pytest.mark.parametrize("cls", [ElectraDiscriminator, ElectraGenerator])
def test_heads_reject_non_encoders(cls):
    with pytest.raises(ValueError, match="must be an ElectraEncoder; received Dense"):
        cls(keras.layers.Dense(3))


@pytest.mark.parametrize("cls", [ElectraDiscriminator, ElectraGenerator])
def test_config_round_trip(cls, inputs):
    model = cls(ElectraEncoder(**TINY))
    config = model.get_config()
    assert set(config) == {"name", "trainable", "dtype", "encoder"}
    clone = cls.from_config(config)
    assert clone.get_config() == config
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone(inputs)["logits"], model(inputs)["logits"])


@pytest.mark.parametrize("cls", [ElectraDiscriminator, ElectraGenerator])
def test_keras_saved_model_round_trip(cls, tmp_path, inputs):
    model = cls(ElectraEncoder(**TINY))
    model(inputs)
    model.save(str(tmp_path / "saved"), save_format="tf")
    loaded = keras.models.load_model(str(tmp_path / "saved"))
    assert type(loaded) is cls
    np.testing.assert_array_equal(loaded(inputs)["logits"], model(inputs)["logits"])


@pytest.mark.parametrize("cls", [ElectraDiscriminator, ElectraGenerator])
@pytest.mark.parametrize("weights_file", ["weights.h5", "ckpt"])
def test_weights_round_trip(cls, weights_file, tmp_path, inputs):
    model = cls(ElectraEncoder(**TINY))
    model.save_weights(str(tmp_path / weights_file))
    other = cls(ElectraEncoder(**TINY))
    assert not np.allclose(other(inputs)["logits"], model(inputs)["logits"])
    other.load_weights(str(tmp_path / weights_file))
    np.testing.assert_array_equal(other(inputs)["logits"], model(inputs)["logits"])


@pytest.mark.parametrize("cls", [ElectraDiscriminator, ElectraGenerator])
def test_save_pretrained_round_trip_and_class_check(cls, tmp_path, inputs):
    model = cls(ElectraEncoder(**TINY))
    model.save_pretrained(str(tmp_path / "model"))
    loaded = cls.from_pretrained(str(tmp_path / "model"))
    np.testing.assert_array_equal(loaded(inputs)["logits"], model(inputs)["logits"])
    other = ElectraGenerator if cls is ElectraDiscriminator else ElectraDiscriminator
    with pytest.raises(ValueError, match=f"holds a {cls.__name__}; expected {other.__name__}"):
        other.from_pretrained(str(tmp_path / "model"))
    with pytest.raises(ValueError, match="already exists"):
        model.save_pretrained(str(tmp_path / "model"))
    with pytest.raises(ValueError, match="not an electra_tf model directory"):
        cls.from_pretrained(str(tmp_path))


def test_mixed_precision_builds_runs_and_returns_float32_logits(inputs):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        generator, discriminator = tiny_pair()
        d_out = discriminator(inputs)
        g_out = generator({**inputs, "masked_lm_positions": np.zeros((3, 2), np.int32)})
        assert d_out["sequence_output"].dtype == tf.float16
        assert d_out["logits"].dtype == tf.float32 and g_out["logits"].dtype == tf.float32
        assert discriminator.encoder.word_embeddings.dtype == tf.float32  # master weights
        assert np.all(np.isfinite(d_out["logits"])) and np.all(np.isfinite(g_out["logits"]))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    # Same weights in float32 give nearly the same logits.
    reference = ElectraDiscriminator(ElectraEncoder(**TINY))
    reference.set_weights(discriminator.get_weights())
    np.testing.assert_allclose(d_out["logits"], reference(inputs)["logits"], atol=2e-2)
