"""Quantization-aware training of whole task models through tfmot, and the int8 files it writes.

Every dense layer (the embedding projection, the four of each transformer
block, the head's), the embedding tables and the attention matmuls get int8
fake quantization; the int8 TFLite file converted from the QAT model computes
what the QAT model computes.
"""

import json

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from conftest import TINY, make_inputs

from electra_tf import (
    ElectraClassifier,
    ElectraEncoder,
    ElectraQuestionAnswering,
    ElectraTokenClassifier,
)
from electra_tf.compression.quantization import (
    ActivationFakeQuant,
    QuantizedLayer,
    calibrate_quantizers,
    gelu_in_float,
    kernel_sparsity,
    quantization_aware_training,
    quantization_wrappers,
    quantized_tflite_flatbuffer,
    tflite_agreement,
)
from electra_tf.export.tflite_export import tflite_interpreter
from electra_tf.layers.transformer_layer import ATTENTION_QUANTIZE_POINTS

SEQ = 9


def task_model(kind):
    keras.utils.set_random_seed(0)
    encoder = ElectraEncoder(**dict(TINY, max_sequence_length=16))
    model = {"classify": lambda: ElectraClassifier(encoder, num_classes=2),
             "tag": lambda: ElectraTokenClassifier(encoder, num_classes=3),
             "qa": lambda: ElectraQuestionAnswering(encoder)}[kind]()
    model(make_inputs(seq_length=SEQ))
    return model


def labels_for(kind, batch_size=3):
    if kind == "classify":
        return np.array([0, 1, 1][:batch_size])
    if kind == "tag":
        return np.tile(np.array([-100, 0, 1, 2, 0, 1, 2, 0, -100]), (batch_size, 1))
    return {"start_positions": np.array([1, 2, 3][:batch_size]),
            "end_positions": np.array([2, 3, 4][:batch_size])}


def train_data(kind, batches=4):
    inputs = make_inputs(seq_length=SEQ)
    return tf.data.Dataset.from_tensors((inputs, labels_for(kind))).repeat(batches)


def op_types(flatbuffer):
    """{op name: set of input dtypes} of a TFLite flatbuffer (before delegation)."""
    interpreter = tf.lite.Interpreter(
        model_content=flatbuffer,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    found = {}
    for op in interpreter._get_ops_details():
        dtypes = tuple(interpreter._get_tensor_details(i, 0)["dtype"].__name__
                       for i in op["inputs"] if i >= 0)
        found.setdefault(op["op_name"], set()).add(dtypes)
    return found


def test_every_dense_layer_embedding_table_and_attention_matmul_is_quantized():
    model = task_model("classify")
    encoder = model.encoder
    dense_count = 1 + 4 * encoder.num_layers + (model.dense is not None) + 1
    with quantization_wrappers(model) as quantized:
        wrappers = [layer for layer in quantized if isinstance(layer, QuantizedLayer)]
        points = [layer for layer in quantized if isinstance(layer, ActivationFakeQuant)]
        assert all(isinstance(w, tfmot.quantization.keras.QuantizeWrapperV2) for w in wrappers)
        assert len(wrappers) == dense_count + 1  # + the embeddings
        assert len(points) == len(ATTENTION_QUANTIZE_POINTS) * encoder.num_layers
        layer = encoder.transformer_layers[0]
        assert all(isinstance(getattr(layer, name), QuantizedLayer)
                   for name in ("qkv_dense", "attention_output_dense", "intermediate_dense",
                                "output_dense"))
        assert isinstance(model.logits, QuantizedLayer)
        assert isinstance(encoder.embedding_layer, QuantizedLayer)
        assert set(layer.attention_quantizers) == set(ATTENTION_QUANTIZE_POINTS)
    # Put back: the model's own layers, no quantizers left.
    assert type(encoder.transformer_layers[0].qkv_dense) is keras.layers.Dense
    assert not hasattr(encoder.transformer_layers[0], "attention_quantizers")
    assert isinstance(encoder.transformer_layers[0].qkv_dense.kernel, tf.Variable)


def test_the_wrappers_leave_weights_and_their_order_unchanged():
    model = task_model("tag")
    names = [w.name for w in model.weights]
    values = [w.numpy() for w in model.weights]
    inputs = make_inputs(seq_length=SEQ)
    before = model(inputs).numpy()
    with quantization_wrappers(model) as quantized:
        calibrate_quantizers(model, quantized, [inputs])
        fake = model(inputs).numpy()
    assert [w.name for w in model.weights] == names
    for value, weight in zip(values, model.weights):
        np.testing.assert_array_equal(value, weight.numpy())
    np.testing.assert_allclose(model(inputs).numpy(), before, atol=1e-6)
    # Inside, the outputs passed through 8-bit quantizers: close to, not equal to, the float ones.
    assert not np.allclose(fake, before, atol=1e-7)
    assert np.max(np.abs(fake - before)) < 0.01


def test_padding_bias_does_not_set_the_attention_score_range():
    model = task_model("classify")
    inputs = make_inputs(seq_length=SEQ)  # later rows are padded
    with quantization_wrappers(model) as quantized:
        calibrate_quantizers(model, quantized, [inputs])
        scores = model.encoder.transformer_layers[0].attention_quantizers["scores"]
        low, high = (float(v.numpy()) for v in scores._quantizer_vars.values())
    assert -100 < low <= 0 <= high < 100  # the -10000 padding bias would make it ~-10000


def test_an_outlier_channel_does_not_coarsen_the_other_residual_channels():
    # Trained BERT-style encoders have a few feed-forward output channels tens of times
    # larger than the rest; one int8 range per tensor would give every channel their step.
    errors = {}
    for scaled in (True, False):
        model = task_model("classify")
        dense = model.encoder.transformer_layers[0].output_dense
        dense.bias.assign(tf.tensor_scatter_nd_update(dense.bias, [[0]], [50.0]))
        x = tf.random.stateless_normal((32, dense.kernel.shape[0]), seed=(0, 1))
        expected = dense(x).numpy()  # (32, hidden)
        with quantization_wrappers(model, scale_residual_channels=scaled):
            wrapper = model.encoder.transformer_layers[0].output_dense
            calibrate_quantizers(wrapper, [wrapper], [x])
            got = wrapper(x, training=False).numpy()
        ordinary = np.abs(got - expected)[:, 1:]
        errors[scaled] = ordinary.max() / np.abs(expected[:, 1:]).max()
        np.testing.assert_allclose(got[:, 0], expected[:, 0], rtol=0.02)
    print(f"largest error of the ordinary channels, relative to their range: per channel "
          f"{errors[True]:.4f}, per tensor {errors[False]:.4f}")
    assert errors[True] < 0.02  # a few int8 steps of their own range
    assert errors[False] > 5 * errors[True]


def test_attention_keys_and_values_get_symmetric_ranges_even_when_they_sit_off_zero():
    # TFLite's int8 BATCH_MATMUL computes query @ key^T and probs @ value wrongly when
    # the right operand's zero point is not 0: on the MiniLM sentiment classifier every
    # context value of the file moved by ~10 int8 steps from the QAT model's (mean
    # signed difference +9.6 steps; -0.03 with the symmetric value range), and 23% of
    # the scores by 1-3 steps until the keys were symmetric too (then 0.5%, 1 step).
    # Here the keys and values are pushed to one side; the queries too.
    model = task_model("classify")
    layer = model.encoder.transformer_layers[0]
    bias = layer.qkv_dense.bias  # (3H,): query, key, value
    bias.assign(bias + 2.0)
    inputs = make_inputs(seq_length=SEQ)
    with quantization_wrappers(model) as quantized:
        calibrate_quantizers(model, quantized, [inputs])
        ranges = {point: [float(v.numpy()) for v in quantizer._quantizer_vars.values()]
                  for point, quantizer in layer.attention_quantizers.items()}
        value = layer.attention_quantizers["value"]
        values = value(tf.constant([[-3.0, 0.0, 1.0, 2.5]]), training=False).numpy()
    for point in ("key", "value"):
        low, high = ranges[point]
        assert low == -high and high > 1.0, (point, low, high)  # around the largest magnitude
    assert -0.5 < ranges["query"][0] <= 0  # the left operands keep their own range
    low, high = ranges["value"]
    step = high / 127  # -127..127: zero point 0
    np.testing.assert_allclose(values / step, np.round(values / step), atol=1e-3)
    assert values[0, 1] == 0.0


@pytest.mark.parametrize("kind", ["classify", "tag", "qa"])
def test_int8_file_computes_what_the_qat_model_computes(kind):
    model = task_model(kind)
    with quantization_aware_training(model, train_data(kind), learning_rate=1e-3,
                                     calibration_batches=2, verbose=0) as (quantized, history):
        assert np.isfinite(history.history["loss"]).all()
        flatbuffer = quantized_tflite_flatbuffer(quantized, max_seq_length=SEQ)
        difference = tflite_agreement(quantized, flatbuffer, make_inputs(seq_length=SEQ), SEQ)
        head = quantized.qa_outputs if kind == "qa" else quantized.logits
        low, high = (float(v.numpy()) for v in head._output_quantizer_vars.values())
        step = (high - low) / 255  # one int8 step of the outputs
    print(f"{kind}: largest output difference, QAT model vs int8 file: {difference:.2e} "
          f"({difference / step:.2f} int8 steps of the outputs)")
    # The file computes the same int8 graph: it differs at most by the rounding of a
    # step here and there (TFLite's fixed-point rescaling vs TF's float fake quantization).
    assert difference <= 2 * step
    ops = op_types(flatbuffer)
    # Every dense layer and both attention matmuls run in int8; the tables are int8 too.
    assert ops["FULLY_CONNECTED"] == {("int8", "int8", "int32")}
    assert ops["BATCH_MATMUL"] == {("int8", "int8")}
    assert {dtypes[0] for dtypes in ops["GATHER"]} == {"int8"}
    # The copy trained, the input did not; afterwards the copy holds float variables again.
    changed = [not np.array_equal(a, b) for a, b in zip(quantized.get_weights(), model.get_weights())]
    assert any(changed)
    assert all(isinstance(w, tf.Variable) for w in quantized.weights)


def delegate_partitions(path):
    """How many pieces XNNPACK runs the file in (ops it cannot take cut its graph)."""
    interpreter = tflite_interpreter(path)
    return sum(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())


def test_gelu_runs_in_float_inside_xnnpack_and_computes_the_same_values(tmp_path):
    model = task_model("classify")
    inputs = make_inputs(seq_length=SEQ)
    with quantization_wrappers(model) as quantized:
        calibrate_quantizers(model, quantized, [inputs])
        int8_gelu = quantized_tflite_flatbuffer(model, SEQ, float_gelu=False)
        flatbuffer = quantized_tflite_flatbuffer(model, SEQ)
        step = (lambda low, high: (high - low) / 255)(
            *(float(v.numpy()) for v in model.logits._output_quantizer_vars.values()))
    assert op_types(int8_gelu)["GELU"] == {("int8",)}  # what the converter makes
    ops = op_types(flatbuffer)
    assert ops["GELU"] == {("float32",)}
    assert ("int8",) in ops["DEQUANTIZE"] and ("float32",) in ops["QUANTIZE"]
    assert {dtypes[:2] for dtypes in ops["FULLY_CONNECTED"]} == {("int8", "int8")}  # still int8
    assert gelu_in_float(flatbuffer) == flatbuffer  # nothing left to rewrite
    paths = {}
    for name, content in (("float_gelu", flatbuffer), ("int8_gelu", int8_gelu)):
        paths[name] = tmp_path / f"{name}.tflite"
        paths[name].write_bytes(content)
    assert delegate_partitions(paths["float_gelu"]) < delegate_partitions(paths["int8_gelu"])

    def logits(path):
        runner = tflite_interpreter(path).get_signature_runner()
        (name,) = runner.get_output_details()
        return np.concatenate([runner(**{k: np.asarray(v[i:i + 1], np.int32)
                                         for k, v in inputs.items()})[name]
                               for i in range(len(inputs["input_word_ids"]))])

    difference = np.abs(logits(paths["float_gelu"]) - logits(paths["int8_gelu"])).max()
    print(f"int8 GELU vs float GELU: largest logit difference {difference:.2e} "
          f"({difference / step:.2f} output steps)")
    assert difference <= step


def test_the_int8_file_is_about_four_times_smaller_than_fp32():
    from electra_tf.export.tflite_export import tflite_flatbuffer

    keras.utils.set_random_seed(0)
    # Big enough that the weights, not the graph's tensor names, make the file.
    encoder = ElectraEncoder(vocab_size=8000, hidden_size=128, num_layers=2, num_heads=4,
                             intermediate_size=512, embedding_size=64, max_sequence_length=16)
    model = ElectraClassifier(encoder, num_classes=2)
    inputs = make_inputs(seq_length=SEQ, vocab_size=8000)
    model(inputs)
    fp32 = len(tflite_flatbuffer(model, max_seq_length=SEQ))
    with quantization_wrappers(model) as quantized:
        calibrate_quantizers(model, quantized, [inputs])
        int8 = len(quantized_tflite_flatbuffer(model, max_seq_length=SEQ))
    print(f"fp32 {fp32} bytes, int8 {int8} bytes: {fp32 / int8:.2f}x smaller")
    assert fp32 / int8 > 3.7, (fp32, int8)


def test_qat_keeps_a_pruned_models_zeros():
    model = task_model("classify")
    rng = np.random.default_rng(0)
    for variable in model.trainable_variables:
        if variable.name.endswith("kernel:0"):
            variable.assign(variable * (rng.random(variable.shape) > 0.5))
    before = kernel_sparsity(model)
    assert before > 0.4
    zeros = {v.name: v.numpy() == 0 for v in model.trainable_variables
             if v.name.endswith("kernel:0")}
    with quantization_aware_training(model, train_data("classify"), learning_rate=1e-2,
                                     calibration_batches=1, verbose=0) as (quantized, _):
        pass
    for variable in quantized.trainable_variables:
        if variable.name in zeros:
            assert np.all(variable.numpy()[zeros[variable.name]] == 0), variable.name
    assert kernel_sparsity(quantized) >= before


def test_qat_with_a_teacher_learns_its_soft_targets():
    model = task_model("classify")
    with quantization_aware_training(model, train_data("classify"), teacher=model, alpha=0.9,
                                     calibration_batches=1, verbose=0) as (_, history):
        assert {"soft_loss", "hard_loss"} <= set(history.history)


def test_bad_arguments_say_what_was_received():
    model = task_model("classify")
    with pytest.raises(ValueError, match="tf.data.Dataset.*received list"):
        with quantization_aware_training(model, [1, 2]):
            pass
    with pytest.raises(ValueError, match="task model.*received ElectraEncoder"):
        with quantization_wrappers(model.encoder):
            pass
    with pytest.raises(ValueError, match="calibration_batches.*received 0"):
        with quantization_aware_training(model, train_data("classify"), calibration_batches=0):
            pass


def test_tflite_interpreter_runs_the_file(tmp_path):
    model = task_model("classify")
    with quantization_wrappers(model) as quantized:
        calibrate_quantizers(model, quantized, [make_inputs(seq_length=SEQ)])
        path = tmp_path / "model.tflite"
        path.write_bytes(quantized_tflite_flatbuffer(model, max_seq_length=SEQ))
    interpreter = tflite_interpreter(str(path))
    runner = interpreter.get_signature_runner()
    assert set(runner.get_input_details()) == {"input_word_ids", "input_mask", "input_type_ids"}
    assert json.dumps(sorted(runner.get_output_details())) == '["logits"]'
