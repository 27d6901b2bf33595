"""TFLite export: fp32 parity, float16 / dynamic / int8 size and agreement, the int8 op placement, bad input."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from conftest import TINY, make_inputs
from electra_tf import ElectraClassifier, ElectraEncoder
from electra_tf.export.tflite_export import (
    FLOAT_DENSE_LAYERS,
    INT8_FLOAT_OPS,
    export_tflite,
    widest_dense_outputs,
    run_tflite,
    tflite_flatbuffer,
    tflite_interpreter,
)
from electra_tf.export.tflite_profile import profile_tflite

SEQ = 9
# Bigger than TINY so that weights, not the flatbuffer's fixed overhead, make
# up the file: then quantized files must be clearly smaller.
SMALL = dict(TINY, vocab_size=100, hidden_size=64, intermediate_size=128, embedding_size=16)


def calibration(count=24, seed=1):
    return [make_inputs(batch_size=1, seq_length=SEQ, vocab_size=SMALL["vocab_size"], seed=seed + i)
            for i in range(count)]


@pytest.fixture(scope="module")
def classifier():
    tf.keras.utils.set_random_seed(0)
    return ElectraClassifier(ElectraEncoder(**SMALL), num_classes=3, dropout_rate=0.0)


@pytest.fixture(scope="module")
def eval_inputs():
    return make_inputs(batch_size=16, seq_length=SEQ, vocab_size=SMALL["vocab_size"], seed=99)


@pytest.fixture(scope="module")
def files(classifier, tmp_path_factory):
    directory = tmp_path_factory.mktemp("tflite")
    paths = {}
    for mode in (None, "float16", "dynamic", "int8"):
        paths[mode] = export_tflite(
            classifier, directory / f"{mode}.tflite", quantize=mode, max_seq_length=SEQ,
            representative_dataset=calibration() if mode == "int8" else None,
        )
    paths["int8_all_dense"] = export_tflite(
        classifier, directory / "int8_all_dense.tflite", quantize="int8", max_seq_length=SEQ,
        representative_dataset=calibration(), float_dense_layers=0)
    return paths


def test_fp32_matches_keras_in_a_fresh_process(classifier, files, eval_inputs, tmp_path):
    # The file must run where electra_tf was never imported (a deployment).
    np.savez(tmp_path / "inputs.npz", **eval_inputs)
    script = textwrap.dedent(f"""
        import numpy as np, sys, warnings
        warnings.simplefilter("ignore")
        import tensorflow as tf
        inputs = dict(np.load({str(tmp_path / "inputs.npz")!r}))
        runner = tf.lite.Interpreter(model_path={str(files[None])!r}).get_signature_runner()
        logits = np.concatenate([runner(**{{k: v[i:i + 1] for k, v in inputs.items()}})["logits"]
                                 for i in range(len(inputs["input_word_ids"]))])
        np.save({str(tmp_path / "logits.npy")!r}, logits)
        print("electra_tf" in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False"
    expected = classifier(eval_inputs, training=False).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), expected, atol=1e-4, rtol=0)


def test_encoder_fp32_outputs_match(tmp_path):
    encoder = ElectraEncoder(**TINY)
    inputs = make_inputs(batch_size=3, seq_length=SEQ)
    path = export_tflite(encoder, tmp_path / "encoder.tflite", max_seq_length=SEQ)
    outputs = run_tflite(path, inputs)
    expected = encoder(inputs, training=False)
    assert sorted(outputs) == ["pooled_output", "sequence_output"]
    for name in outputs:
        np.testing.assert_allclose(outputs[name], expected[name].numpy(), atol=1e-4, rtol=0)


@pytest.mark.parametrize("mode, max_size_ratio",
                         [("float16", 0.6), ("dynamic", 0.45), ("int8_all_dense", 0.45), ("int8", 0.6)])
def test_quantized_files_are_smaller_and_agree(classifier, files, eval_inputs, mode, max_size_ratio):
    # Weights are ~90% of the fp32 file: float16 halves them, int8 quarters them.
    # The default int8 file keeps 2 of this tiny model's 6 dense layers in float32
    # (test_int8_float_dense_layers_cost_their_float_weights checks those bytes).
    assert os.path.getsize(files[mode]) < max_size_ratio * os.path.getsize(files[None])
    expected = classifier(eval_inputs, training=False).numpy()
    logits = run_tflite(files[mode], eval_inputs)
    assert logits.shape == expected.shape and logits.dtype == np.float32
    # 8-bit values carry ~2 significant digits, so the logits keep their
    # pattern (correlation) with a relative error of a few percent; float16
    # has ~3 digits. A scale or zero-point bug gives unrelated logits and
    # fails both checks.
    error = np.sqrt(np.mean((logits - expected) ** 2)) / np.std(expected)
    correlation = np.corrcoef(logits.ravel(), expected.ravel())[0, 1]
    assert correlation > (0.999 if mode == "float16" else 0.95), correlation
    assert error < (0.02 if mode == "float16" else 0.25), error


def test_int8_runs_dense_layers_in_int8_and_the_rest_in_float(classifier, files):
    def input_types(path):
        interpreter = tflite_interpreter(path, use_xnnpack=False)
        types = {}
        for op in interpreter._get_ops_details():
            types.setdefault(op["op_name"], set()).add(np.dtype(op["operand_types"][0]).name)
        return types

    fixed = input_types(files["int8"])
    assert fixed["FULLY_CONNECTED"] == {"int8", "float32"}
    for op in ("SQUARED_DIFFERENCE", "SOFTMAX", "GELU", "BATCH_MATMUL"):
        assert op in INT8_FLOAT_OPS and fixed[op] == {"float32"}, (op, fixed[op])


def dense_outputs(flatbuffer_or_path):
    """{output tensor name: (input dtype, output int8 scale or None)} of every FULLY_CONNECTED op."""
    if isinstance(flatbuffer_or_path, bytes):
        interpreter = tf.lite.Interpreter(model_content=flatbuffer_or_path)
    else:
        interpreter = tflite_interpreter(flatbuffer_or_path, use_xnnpack=False)
    tensors = {tensor["index"]: tensor for tensor in interpreter.get_tensor_details()}
    dense = {}
    for op in interpreter._get_ops_details():
        if op["op_name"] == "FULLY_CONNECTED":
            output = tensors[op["outputs"][0]]
            scale = output["quantization"][0] if output["dtype"] == np.int8 else None
            dense[output["name"]] = (np.dtype(op["operand_types"][0]).name, scale)
    return dense


def test_int8_float_dense_layers_cost_their_float_weights(files):
    interpreter = tflite_interpreter(files["int8"], use_xnnpack=False)
    tensors = {tensor["index"]: tensor for tensor in interpreter.get_tensor_details()}
    float_weights = [tensors[op["inputs"][1]] for op in interpreter._get_ops_details()
                     if op["op_name"] == "FULLY_CONNECTED" and op["operand_types"][0] == np.float32]
    assert len(float_weights) == FLOAT_DENSE_LAYERS
    assert all(tensor["dtype"] == np.float32 for tensor in float_weights)
    # Each of their weights takes 4 bytes instead of 1: 3 more bytes each, and nothing else grows much.
    extra = os.path.getsize(files["int8"]) - os.path.getsize(files["int8_all_dense"])
    expected = 3 * sum(int(np.prod(tensor["shape"])) for tensor in float_weights)
    assert 0.9 * expected < extra < 1.1 * expected + 2048, (extra, expected)


@pytest.mark.parametrize("count", [1, 3])
def test_int8_keeps_the_widest_dense_layers_in_float(classifier, count):
    all_int8 = dense_outputs(tflite_flatbuffer(classifier, "int8", calibration(), max_seq_length=SEQ,
                                               float_dense_layers=0))
    assert {dtype for dtype, _ in all_int8.values()} == {"int8"}
    by_scale = sorted(all_int8, key=lambda name: -all_int8[name][1])
    assert all_int8[by_scale[0]][1] > all_int8[by_scale[-1]][1]
    mixed = dense_outputs(tflite_flatbuffer(classifier, "int8", calibration(), max_seq_length=SEQ,
                                            float_dense_layers=count))
    assert sorted(mixed) == sorted(all_int8)  # the same layers, in another precision
    float_layers = {name for name, (dtype, _) in mixed.items() if dtype == "float32"}
    assert float_layers == set(by_scale[:count])
    assert widest_dense_outputs(
        tflite_flatbuffer(classifier, "int8", calibration(), max_seq_length=SEQ,
                          float_dense_layers=0), count) == by_scale[:count]


def test_profile_shows_the_int8_fallbacks(classifier, eval_inputs, files, tmp_path):
    naive = str(tmp_path / "naive.tflite")  # every op int8: what the converter does by default
    dataset = tf.data.Dataset.from_tensor_slices(  # a tf.data calibration set works too
        make_inputs(batch_size=8, seq_length=SEQ, vocab_size=SMALL["vocab_size"])).batch(2)
    with open(naive, "wb") as file:
        file.write(tflite_flatbuffer(classifier, "int8", dataset, max_seq_length=SEQ, float_ops=(),
                                     float_dense_layers=0))
    one = {key: value[:1] for key, value in eval_inputs.items()}
    naive_rows = {row.op_type: row for row in profile_tflite(naive, one)}
    fixed_rows = {row.op_type: row for row in profile_tflite(files["int8"], one)}
    assert abs(sum(row.share for row in naive_rows.values()) - 1.0) < 1e-6
    assert all(row.milliseconds > 0 for row in naive_rows.values())
    # Naive int8: LayerNorm's SQUARED_DIFFERENCE and SOFTMAX have no XNNPACK int8 kernel.
    for op in ("SQUARED_DIFFERENCE", "SOFTMAX"):
        assert naive_rows[op].xnnpack == 0 and fixed_rows[op].xnnpack == fixed_rows[op].count
    assert fixed_rows["FULLY_CONNECTED"].xnnpack == fixed_rows["FULLY_CONNECTED"].count


def test_run_tflite_batches_and_dynamic_batch(classifier, files, eval_inputs, tmp_path):
    dynamic = export_tflite(classifier, tmp_path / "dynamic_batch.tflite", max_seq_length=SEQ,
                            batch_size=None)
    expected = classifier(eval_inputs, training=False).numpy()
    np.testing.assert_allclose(run_tflite(dynamic, eval_inputs), expected, atol=1e-4, rtol=0)
    batch_of_5 = {key: value[:5] for key, value in eval_inputs.items()}
    np.testing.assert_allclose(run_tflite(files[None], batch_of_5), expected[:5], atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match=r"shape \(batch, 9\).*received \(2, 8\)"):
        run_tflite(files[None], {key: value[:2, :8] for key, value in eval_inputs.items()})


def good():
    return make_inputs(batch_size=2, seq_length=SEQ, vocab_size=SMALL["vocab_size"])


BAD_DATASETS = {
    "missing": (None, "needs a `representative_dataset`"),
    "empty": ([], "is empty"),
    "wrong keys": ([{"input_ids": good()["input_word_ids"]}],
                   r"keys \['input_mask', 'input_type_ids', 'input_word_ids'\]; received \['input_ids'\]"),
    "wrong length": ([{key: value[:, :5] for key, value in good().items()}],
                     r"shape \(batch, 9\); received dtype int32 and shape \(2, 5\)"),
    "float ids": ([{**good(), "input_word_ids": good()["input_word_ids"].astype(np.float32)}],
                  "integer array.*received dtype float32"),
    "ids out of range": ([{**good(), "input_word_ids": good()["input_word_ids"] + 1000}],
                         r"must lie in \[0, 100\)"),
    "not a dict": ([good()["input_word_ids"]], "received ndarray"),
}


@pytest.mark.parametrize("case", sorted(BAD_DATASETS))
def test_bad_representative_dataset_raises_and_writes_nothing(classifier, tmp_path, case):
    dataset, message = BAD_DATASETS[case]
    with pytest.raises(ValueError, match=message):
        export_tflite(classifier, tmp_path / "model.tflite", quantize="int8",
                      representative_dataset=dataset, max_seq_length=SEQ)
    assert os.listdir(tmp_path) == []


def test_existing_path_needs_overwrite(classifier, tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"keep me")
    with pytest.raises(ValueError, match="already exists.*overwrite=True"):
        export_tflite(classifier, path, max_seq_length=SEQ)
    assert path.read_bytes() == b"keep me"
    export_tflite(classifier, path, max_seq_length=SEQ, overwrite=True)
    assert path.read_bytes()[4:8] == b"TFL3" and sorted(os.listdir(tmp_path)) == ["model.tflite"]


def test_bad_arguments(classifier, tmp_path):
    with pytest.raises(ValueError, match=r"one of \[None, 'dynamic', 'float16', 'int8'\]; received quantize='int4'"):
        export_tflite(classifier, tmp_path / "a.tflite", quantize="int4", max_seq_length=SEQ)
    with pytest.raises(ValueError, match="max_seq_length`=17 exceeds the model's max_sequence_length=16"):
        export_tflite(classifier, tmp_path / "a.tflite", max_seq_length=17)
    with pytest.raises(ValueError, match="only used by quantize='int8'"):
        export_tflite(classifier, tmp_path / "a.tflite", quantize="dynamic", max_seq_length=SEQ,
                      representative_dataset=calibration(2))
    with pytest.raises(ValueError, match=r"`float_dense_layers` must be an integer >= 0.*received -1"):
        export_tflite(classifier, tmp_path / "a.tflite", quantize="int8", max_seq_length=SEQ,
                      representative_dataset=calibration(2), float_dense_layers=-1)

    class Unbuilt(keras.Model):
        def call(self, inputs):
            return inputs["input_word_ids"]

    with pytest.raises(ValueError, match="never built"):
        export_tflite(Unbuilt(), tmp_path / "a.tflite", max_seq_length=SEQ)
    with pytest.raises(ValueError, match="is a directory"):
        export_tflite(classifier, tmp_path, max_seq_length=SEQ)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_conversion_traces_only_the_inference_call(classifier, tmp_path, quantize, monkeypatch):
    # The converter saves what it is handed as a SavedModel first; handed the Keras model,
    # that save traced every layer's training call too (the fused XLA kernels, padding
    # removal), which made each export several times slower for the same file. On a CPU
    # host only a training call sizes the padding-free rows for the fused kernels: count those.
    from electra_tf.models import electra_encoder

    training_traces = []
    real_rows = electra_encoder.padding_free_rows

    def recording_rows(num_real):
        training_traces.append(num_real)
        return real_rows(num_real)

    monkeypatch.setattr(electra_encoder, "padding_free_rows", recording_rows)
    classifier(make_inputs(batch_size=2, seq_length=SEQ, vocab_size=SMALL["vocab_size"]),
               training=True)  # the spy sees a training call
    assert len(training_traces) == 1
    path = export_tflite(classifier, tmp_path / "model.tflite", quantize=quantize,
                         max_seq_length=SEQ, overwrite=True,
                         representative_dataset=calibration(4) if quantize else None)
    assert os.path.getsize(path) > 0
    assert len(training_traces) == 1, "the export traced the model's training call"
