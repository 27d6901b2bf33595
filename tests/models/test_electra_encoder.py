import contextlib
import inspect

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

import electra_tf
from conftest import TINY, dense_rows, executed_ops, make_inputs
from electra_tf import ElectraEncoder, unfused_kernels
from electra_tf.utils.onednn import onednn_enabled


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


@pytest.mark.parametrize("embedding_size", [4, None])  # with and without the projection
def test_remove_padding_gives_the_same_real_tokens_and_zero_padding(embedding_size):
    encoder = ElectraEncoder(**{**TINY, "embedding_size": embedding_size})
    x = make_inputs(batch_size=4, seq_length=9)  # rows of 9, 7, 5 and 3 real tokens
    real = x["input_mask"][..., None].astype(bool)
    padded = encoder(x)
    run = tf.function(lambda inputs: encoder(inputs, remove_padding=True))
    for packed in (encoder(x, remove_padding=True), run(x)):
        for key in ("sequence_output", "pooled_output"):
            assert packed[key].shape == padded[key].shape
        for got, want in zip(packed["encoder_outputs"], padded["encoder_outputs"]):
            np.testing.assert_allclose(np.where(real, got, 0), np.where(real, want, 0), atol=1e-5)
            np.testing.assert_array_equal(np.where(real, 0, got), 0)
        np.testing.assert_allclose(packed["pooled_output"], padded["pooled_output"], atol=1e-5)


@pytest.mark.parametrize("fused", [True, False])
def test_remove_padding_in_training_matches_padded_values_and_gradients(fused):
    # Training steps on a CPU host pad the real rows up to a bucket for the XLA kernels;
    # the extra rows must change nothing. Dropout 0 (TINY), so both sides compute the same.
    encoder = ElectraEncoder(**TINY)
    x = make_inputs(batch_size=4, seq_length=9)  # 24 real tokens: 24 rows, bucketed or not
    x = {**x, "input_mask": x["input_mask"].copy()}
    x["input_mask"][3, 2] = 0  # 23 real tokens: bucketed to 24 rows
    real = x["input_mask"][..., None].astype(bool)
    # Random read-outs: a sum of squares of LayerNorm outputs would not depend on its input.
    rng = np.random.default_rng(0)
    read_sequence = np.where(real, rng.normal(size=(4, 9, TINY["hidden_size"])), 0.0)
    read_pooled = rng.normal(size=(4, TINY["hidden_size"]))

    def loss_and_gradients(remove_padding):
        with tf.GradientTape() as tape:
            outputs = encoder(x, training=True, remove_padding=remove_padding)
            loss = (tf.reduce_sum(read_sequence * tf.cast(outputs["sequence_output"], tf.float64))
                    + tf.reduce_sum(read_pooled * tf.cast(outputs["pooled_output"], tf.float64)))
        return loss, tape.gradient(loss, encoder.trainable_weights)

    context = contextlib.nullcontext() if fused else unfused_kernels()
    with context:
        padded, packed = loss_and_gradients(False), loss_and_gradients(True)
    np.testing.assert_allclose(packed[0], padded[0], rtol=1e-5)
    for got, want, weight in zip(packed[1], padded[1], encoder.trainable_weights):
        want = tf.convert_to_tensor(want).numpy()
        np.testing.assert_allclose(tf.convert_to_tensor(got), want, rtol=1e-5,
                                   atol=1e-6 * np.abs(want).max(), err_msg=weight.name)


def test_padding_free_rows_are_bucketed_only_for_training_kernels():
    encoder = ElectraEncoder(**TINY)
    x = make_inputs(batch_size=4, seq_length=9)
    x = {**x, "input_mask": x["input_mask"].copy()}
    x["input_mask"][3, 2] = 0  # 23 real tokens

    def run():
        encoder(x, remove_padding=True)
        encoder(x, training=True, remove_padding=True)
        with unfused_kernels():
            encoder(x, training=True, remove_padding=True)

    assert dense_rows(encoder.transformer_layers[0].qkv_dense, run) == [23, 24, 23]


@pytest.mark.parametrize("training", [False, True])
def test_remove_padding_keeps_rows_without_real_tokens_to_themselves(training):
    # A row whose mask is all 0 runs on its own first position: its outputs do not
    # depend on the other rows (a gradient-accumulation micro-batch gives the same).
    encoder = ElectraEncoder(**TINY)
    x = {key: value.copy() for key, value in make_inputs(batch_size=4, seq_length=5).items()}
    x["input_mask"][3] = 0  # rows of 5, 3, 1 and 0 real tokens
    assert x["input_mask"].sum(axis=1).tolist() == [5, 3, 1, 0]
    together = encoder(x, training=training, remove_padding=True)
    alone = encoder({key: value[3:] for key, value in x.items()}, training=training,
                    remove_padding=True)
    np.testing.assert_allclose(together["pooled_output"][3], alone["pooled_output"][0], atol=1e-5)
    np.testing.assert_array_equal(together["sequence_output"][3, 1:], 0)
    padded = encoder(x, training=training)  # rows with real tokens: as on the padded grid
    np.testing.assert_allclose(together["pooled_output"][:3], padded["pooled_output"][:3],
                               atol=1e-5)
    nothing = encoder({key: value[:0] for key, value in x.items()}, training=training,
                      remove_padding=True)  # an empty batch
    assert nothing["pooled_output"].shape == (0, TINY["hidden_size"])


def test_remove_padding_runs_the_dense_layers_on_real_tokens_only():
    encoder = ElectraEncoder(**TINY)
    x = make_inputs(batch_size=4, seq_length=9)  # 24 real tokens of 36
    rows = dense_rows(encoder.transformer_layers[0].intermediate_dense,
                      lambda: (encoder(x), encoder(x, remove_padding=True)))
    assert rows == [36, int(x["input_mask"].sum())] and rows[1] == 24


def test_padding_free_layer_call_needs_both_indices():
    layer = ElectraEncoder(**TINY).transformer_layers[0]
    x = tf.zeros((1, 3, TINY["hidden_size"]))
    with pytest.raises(ValueError, match="needs both `token_index` and `grid_index`"):
        layer(x, tf.zeros((1, 1, 1, 3)), token_index=tf.range(3))


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


def test_training_gradient_splits_qkv_instead_of_slicing_it():
    """q, k and v come from one fused projection. Sliced out of a (3, B, heads, T, hs)
    tensor, each slice's gradient is a full-size zero tensor plus a sum of the three
    (StridedSliceGrad: 15% of the CPU pretraining step's op time, #19); split, the
    gradient is one concatenation."""
    from electra_tf.layers.transformer_layer import TransformerLayer, attention_bias_from_mask

    layer = TransformerLayer(hidden_size=8, num_heads=2, intermediate_size=16)
    x = tf.random.normal((2, 3, 8))
    bias = attention_bias_from_mask(tf.ones((2, 3)), x.dtype)

    @tf.function
    def gradients(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x, bias, training=True))
        return tape.gradient(loss, layer.trainable_variables)

    graph = gradients.get_concrete_function(x).graph
    op_types = {op.type for op in graph.get_operations()}
    for function in graph._functions.values():  # noqa: SLF001  (nested function bodies)
        op_types |= {node.op for node in function.definition.node_def}
    assert "StridedSliceGrad" not in op_types
    assert "Split" in op_types or "SplitV" in op_types


def test_from_config_with_another_dtype_changes_every_layer(inputs):
    """A config whose "dtype" is changed rebuilds the whole encoder in it, the
    embeddings (a nested config of their own) included."""
    config = {**ElectraEncoder(**TINY).get_config(), "dtype": "mixed_bfloat16"}
    encoder = ElectraEncoder.from_config(config)
    outputs = encoder(inputs)
    assert encoder.embedding_layer.compute_dtype == "bfloat16"
    assert all(layer.compute_dtype == "bfloat16" for layer in encoder.transformer_layers)
    assert outputs["sequence_output"].dtype == tf.bfloat16
    assert all(v.dtype == tf.float32 for v in encoder.weights)  # mixed: float32 variables


def test_float32_encoder_on_a_bfloat16_encoders_shared_embeddings(inputs):
    """A float32 generator may share a mixed_bfloat16 discriminator's embeddings: their
    output is cast to the encoder's compute dtype."""
    discriminator = ElectraEncoder(**TINY, dtype="mixed_bfloat16")
    discriminator(inputs)
    generator = ElectraEncoder(**{**TINY, "hidden_size": 4, "intermediate_size": 8},
                               embedding_layer=discriminator.embedding_layer, dtype="float32")
    outputs = generator(inputs)
    assert outputs["sequence_output"].dtype == tf.float32
    assert generator.embedding_layer is discriminator.embedding_layer


def matmul_fed_bias_adds(layer, x, bias, training):
    """(BiasAdds in `layer`'s traced graph, how many of them a 2D MatMul feeds directly)."""
    graph = tf.function(lambda x: layer(x, bias, training=training)).get_concrete_function(x).graph
    feeding = [op.inputs[0].op.type for op in graph.get_operations() if op.type == "BiasAdd"]
    return len(feeding), feeding.count("MatMul")


@pytest.mark.parametrize("dtype, frozen_weights, fusable", [
    ("float32", False, 4), ("mixed_bfloat16", False, 1),
    ("float32", True, 4), ("mixed_bfloat16", True, 4)])
def test_bfloat16_dense_layers_keep_out_of_the_fused_inner_product(
        monkeypatch, dtype, frozen_weights, fusable):
    """TF's oneDNN rewrite fuses a MatMul that feeds a BiasAdd directly into an inner
    product kernel, which in bfloat16 does not use the CPU's AMX/BF16 matmul units. In
    float32 all four dense layers keep that pattern (fused is faster); in bfloat16 only the
    intermediate one does (its GELU fuses too), the other three put a reshape between.
    With TF_ONEDNN_ASSUME_FROZEN_WEIGHTS on, the fused kernel is a brgemm inner product
    that does use them, and every layer keeps the pattern at inference (#19)."""
    from electra_tf.layers import transformer_layer
    from electra_tf.layers.transformer_layer import TransformerLayer, attention_bias_from_mask

    # Patched, not set: TensorFlow reads the variable itself once per process, and a test
    # process with it on would compute stale results wherever later tests re-assign weights.
    monkeypatch.setattr(transformer_layer, "onednn_assumes_frozen_weights",
                        lambda: frozen_weights)
    layer = TransformerLayer(hidden_size=8, num_heads=2, intermediate_size=16, dtype=dtype)
    x = tf.random.normal((2, 3, 8))
    bias = attention_bias_from_mask(tf.ones((2, 3)), layer.compute_dtype)
    assert matmul_fed_bias_adds(layer, x, bias, training=False) == (4, fusable)

    reference = TransformerLayer(hidden_size=8, num_heads=2, intermediate_size=16)
    reference(x, attention_bias_from_mask(tf.ones((2, 3)), tf.float32))
    reference.set_weights(layer.get_weights())
    np.testing.assert_allclose(tf.cast(layer(x, bias), tf.float32),
                               reference(x, attention_bias_from_mask(tf.ones((2, 3)), tf.float32)),
                               atol=0.1)


def test_frozen_weights_change_only_inference_graphs(monkeypatch):
    """Training re-assigns the weights, which oneDNN's frozen-weights kernels would not see:
    a bfloat16 training graph keeps the three plain MatMuls with the variable on (traced
    without the XLA training kernels, so that all four dense layers are on show)."""
    from electra_tf.layers import transformer_layer
    from electra_tf.layers.transformer_layer import TransformerLayer, attention_bias_from_mask

    monkeypatch.setattr(transformer_layer, "onednn_assumes_frozen_weights", lambda: True)
    layer = TransformerLayer(hidden_size=8, num_heads=2, intermediate_size=16,
                             dtype="mixed_bfloat16")
    x = tf.random.normal((2, 3, 8))
    bias = attention_bias_from_mask(tf.ones((2, 3)), layer.compute_dtype)
    with unfused_kernels():
        assert matmul_fed_bias_adds(layer, x, bias, training=True) == (4, 1)


def test_frozen_weights_bfloat16_graphs_cast_the_weights_once(monkeypatch, tmp_path):
    """With frozen weights a bfloat16 inference graph takes each dense layer's weights as
    bfloat16 copies made while tracing, not a cast of the float32 variables on every call
    (at batch 1 the casts took as long as the matmuls, #19): the graph reads no dense
    kernel, the model's weights do not change, a trace after new weights uses them, and a
    SavedModel keeps the copies. Eager calls and the variable off keep the layers."""
    from electra_tf.layers import transformer_layer

    frozen = [True]
    monkeypatch.setattr(transformer_layer, "onednn_assumes_frozen_weights", lambda: frozen[0])
    keras.utils.set_random_seed(0)
    inputs = make_inputs()
    mask = inputs["input_mask"][..., None]
    encoder = ElectraEncoder(**TINY, dtype="mixed_bfloat16")

    def eager():  # casts the float32 variables on every call, as before the copies
        return tf.cast(encoder(inputs)["sequence_output"], tf.float32).numpy()

    eager()
    names = [weight.name for weight in encoder.weights]
    denses = [dense for layer in encoder.transformer_layers for dense in (
        layer.qkv_dense, layer.attention_output_dense, layer.intermediate_dense,
        layer.output_dense)]
    assert not any(dense in transformer_layer._FROZEN_BFLOAT16 for dense in denses)  # eager

    signature = [{key: tf.TensorSpec([None, None], tf.int32) for key in inputs}]

    def traced():
        return tf.function(lambda x: tf.cast(encoder(x, training=False)["sequence_output"],
                                             tf.float32), input_signature=signature)

    def captured(function):  # the variables a traced graph reads (by their handles)
        handles = {id(tensor) for tensor in function.get_concrete_function().captured_inputs}
        return [id(dense.kernel.handle) in handles for dense in denses]

    forward = traced()
    assert not any(captured(forward))
    assert all(dense in transformer_layer._FROZEN_BFLOAT16 for dense in denses)
    assert [weight.name for weight in encoder.weights] == names
    # The same bfloat16 model, eager: the copies are the cast weights, so the two differ only
    # by the kernels' rounding (<= 0.004 over 12 weight draws here; a float32 twin of the model
    # differs by bfloat16's own error, 0.01-0.05 by draw, which would hide stale copies less).
    np.testing.assert_allclose(forward(inputs).numpy() * mask, eager() * mask, atol=0.02)
    reference = ElectraEncoder(**TINY)  # and both compute the float32 model's function
    reference(inputs)
    reference.set_weights(encoder.get_weights())
    np.testing.assert_allclose(forward(inputs).numpy() * mask,
                               reference(inputs)["sequence_output"].numpy() * mask, atol=0.05)

    # New weights: a new trace copies them (a graph traced before keeps its dense layers'
    # old ones, as oneDNN keeps the first weights it saw: the variable's contract).
    old_weights_output = forward(inputs).numpy()
    encoder.set_weights([2 * weight for weight in encoder.get_weights()])
    np.testing.assert_allclose(traced()(inputs).numpy() * mask, eager() * mask, atol=0.02)
    assert np.abs((old_weights_output - eager()) * mask).max() > 0.5  # the check can tell

    module = tf.Module()
    module.encoder, module.forward = encoder, traced()
    expected = module.forward(inputs).numpy()
    tf.saved_model.save(module, str(tmp_path / "saved"))
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    np.testing.assert_array_equal(loaded.forward(inputs).numpy(), expected)

    frozen[0] = False
    assert all(captured(traced()))


@pytest.mark.skipif(not onednn_enabled(), reason="TensorFlow's oneDNN rewrites are off")
@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("remove_padding", [False, True])
@pytest.mark.parametrize("embedding_size", [4, None])  # ELECTRA's projection; BERT/MiniLM's none
def test_residual_adds_run_inside_the_dense_kernels_at_inference(
        monkeypatch, tmp_path, dtype, remove_padding, embedding_size):
    """At inference each block's two residual adds are on the (rows, H) matrix the dense
    layer writes, with shapes grappler can prove equal: TF's oneDNN rewrite then runs each
    as the post-op of its MatMul + BiasAdd kernel, padded or padding-free, with or without
    an embedding projection, and the values are those of the plain add. bfloat16 dense
    layers take that kernel with frozen weights (see the test above; patched here): there
    it made the encoder ~1.3x as fast (#19)."""
    from electra_tf.layers import transformer_layer

    monkeypatch.setattr(transformer_layer, "onednn_assumes_frozen_weights",
                        lambda: dtype == "mixed_bfloat16")
    keras.utils.set_random_seed(0)  # bfloat16's error depends on the weights drawn
    config = {**TINY, "embedding_size": embedding_size}
    encoder = ElectraEncoder(**config, dtype=dtype)
    inputs = make_inputs()
    encoder(inputs)
    signature = [{key: tf.TensorSpec([None, None], tf.int32) for key in inputs}]
    forward = tf.function(lambda x: tf.cast(encoder(
        x, training=False, remove_padding=remove_padding)["sequence_output"], tf.float32),
        input_signature=signature)
    ran = executed_ops(forward, inputs, tmp_path)
    residual_adds = {name: count for name, count in ran.items() if "/residual_add" in name}
    assert sum(residual_adds.values()) == 2 * TINY["num_layers"], ran
    assert all(name.endswith(":_MklNativeFusedMatMul") for name in residual_adds), residual_adds

    # The same real tokens as float32 in eager mode, where no rewrite fuses anything.
    mask = inputs["input_mask"][..., None]
    reference = ElectraEncoder(**config)
    reference(inputs)
    reference.set_weights(encoder.get_weights())
    np.testing.assert_allclose(forward(inputs).numpy() * mask,
                               reference(inputs)["sequence_output"].numpy() * mask,
                               atol=0.05 if dtype == "mixed_bfloat16" else 1e-5)


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16, tf.float16])
def test_swapping_heads_and_positions_is_a_transpose_in_values_and_gradients(dtype):
    """The attention's (B, T, nh, hs) <-> (B, nh, T, hs) swap moves float32 and bfloat16
    tensors as same-width integers on CPU (oneDNN's float transpose costs ~10x Eigen's
    integer one on small tensors, #19): the same values and the same gradients as
    tf.transpose, in eager mode and in a traced function."""
    from electra_tf.layers.transformer_layer import swap_heads_and_positions

    x = tf.cast(tf.random.normal((2, 5, 3, 4)), dtype)
    weights = tf.reshape(tf.range(120, dtype=tf.float32), (2, 3, 5, 4))

    def value_and_gradient(swap):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = swap(x)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * weights)
        return y, tape.gradient(loss, x)

    expected = value_and_gradient(lambda t: tf.transpose(t, [0, 2, 1, 3]))
    for got in (value_and_gradient(swap_heads_and_positions),
                tf.function(lambda: value_and_gradient(swap_heads_and_positions))()):
        for a, b in zip(got, expected):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(tf.cast(a, tf.float32), tf.cast(b, tf.float32))


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16, tf.float16])
def test_split_heads_gives_the_plain_split_and_transposes_values_and_gradients(dtype):
    """`split_heads` turns the fused projection's (B·T, 3A) rows into query, key and value
    with one integer transpose and a copy-free split on a CPU-only host (#19): bit for bit
    what splitting the columns and transposing each part gives, forward and backward, in
    eager mode and traced."""
    from electra_tf.layers.transformer_layer import split_heads

    batch, length, heads, size = 2, 5, 3, 4
    qkv = tf.cast(tf.random.normal((batch * length, 3 * heads * size)), dtype)
    weights = [tf.random.normal((batch, heads, length, size)) for _ in range(3)]

    def plain(rows):
        return tuple(tf.transpose(tf.reshape(part, [batch, length, heads, size]), [0, 2, 1, 3])
                     for part in tf.split(rows, 3, axis=-1))

    def value_and_gradient(split):
        with tf.GradientTape() as tape:
            tape.watch(qkv)
            parts = split(qkv)
            loss = tf.add_n([tf.reduce_sum(tf.cast(p, tf.float32) * w)
                             for p, w in zip(parts, weights)])
        return (*parts, tape.gradient(loss, qkv))

    expected = value_and_gradient(plain)
    split = lambda rows: split_heads(rows, (batch, length), heads, size)  # noqa: E731
    for got in (value_and_gradient(split), tf.function(lambda: value_and_gradient(split))()):
        for a, b in zip(got, expected):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(tf.cast(a, tf.float32), tf.cast(b, tf.float32))


def test_attention_takes_query_key_and_value_apart_with_one_transpose_on_cpu():
    """Per layer, the CPU graph transposes twice (q, k and v together; the context) and
    splits q, k and v along the first axis, where TensorFlow's split copies nothing;
    inside `plain_transposes()` (TFLite) it splits the columns and transposes four times,
    and both give the same outputs bit for bit."""
    from electra_tf.layers.transformer_layer import plain_transposes

    encoder = ElectraEncoder(**TINY)
    inputs = make_inputs(batch_size=2, seq_length=6, vocab_size=TINY["vocab_size"])

    def traced():
        function = tf.function(lambda x: encoder(x, training=False)["sequence_output"])
        return function, function.get_concrete_function(inputs).graph.get_operations()

    def count(ops, kind):
        return sum(op.type == kind for op in ops)

    layers = TINY["num_layers"]
    cpu, cpu_ops = traced()
    with plain_transposes():
        plain, plain_ops = traced()
    assert count(cpu_ops, "Transpose") == 2 * layers
    assert count(plain_ops, "Transpose") == 4 * layers
    split_axes = {int(tf.get_static_value(op.inputs[0])) for op in cpu_ops if op.type == "Split"}
    assert split_axes == {0}
    np.testing.assert_array_equal(cpu(inputs), plain(inputs))


def test_attention_transposes_integers_on_cpu_and_floats_for_tflite():
    """On a CPU-only host the encoder's graph transposes bitcast integers, not floats;
    inside `plain_transposes()` (what the TFLite converter traces in) plain float
    transposes, which TFLite's int8 quantizer can follow."""
    from electra_tf.export.tflite_export import _serving_function
    from electra_tf.layers.transformer_layer import plain_transposes

    encoder = ElectraEncoder(**TINY)
    spec = {key: tf.TensorSpec([1, 4], tf.int32) for key in
            ("input_word_ids", "input_mask", "input_type_ids")}

    def transposed_dtypes(graph):
        return {op.inputs[0].dtype.name for op in graph.get_operations() if op.type == "Transpose"}

    graph = tf.function(lambda x: encoder(x)).get_concrete_function(spec).graph
    assert transposed_dtypes(graph) == {"int32"}
    with plain_transposes():
        graph = tf.function(lambda x: encoder(x)).get_concrete_function(spec).graph
    assert transposed_dtypes(graph) == {"float32"}
    tflite_graph = _serving_function(encoder, max_seq_length=4, batch_size=1).graph
    assert transposed_dtypes(tflite_graph) == {"float32"}
    assert "Bitcast" not in {op.type for op in tflite_graph.get_operations()}
