"""TFLite export of ELECTRA encoders and task models: fp32, float16, dynamic-range and full int8.

One .tflite file per model, written atomically. Inputs are int32
`input_word_ids`, `input_mask`, `input_type_ids` of shape (batch_size,
max_seq_length); outputs are float32 (`logits` for a classifier, (batch_size,
num_classes), and for a tagger, per token: (batch_size, max_seq_length,
num_labels); `sequence_output` and `pooled_output` for an encoder).

Full int8 quantizes weights and activations from a representative dataset.
A naive int8 conversion of ELECTRA runs most of each transformer block
outside XNNPACK and quantizes the attention scores too coarsely (see
`benchmarks/tflite_int8_profile.py`), so by default the int8 export
quantizes the dense layers only and keeps the ops in `INT8_FLOAT_OPS` in
float32, and with them the `FLOAT_DENSE_LAYERS` dense layers whose outputs
have outlier values; `electra_tf.export.tflite_profile.profile_tflite` shows where the
time goes.
"""

import os
import tempfile
import warnings

import numpy as np
import tensorflow as tf

from electra_tf.layers.layer_norm import plain_layer_norms
from electra_tf.layers.transformer_layer import plain_transposes
from electra_tf.utils.renamed_arguments import renamed_arguments
from electra_tf.utils.checks import is_integer

INPUT_KEYS = ("input_word_ids", "input_mask", "input_type_ids")
QUANTIZE_MODES = (None, "dynamic", "float16", "int8")

# Ops that full int8 export leaves in float32 (selective quantization through
# TFLite's QuantizationDebugger), so that only FULLY_CONNECTED (the dense
# layers: nearly all the FLOPs) runs in int8. Measured by
# benchmarks/tflite_int8_profile.py (seq 128, batch 1):
# - speed: XNNPACK has no int8 kernels for SQUARED_DIFFERENCE, SUB, RSQRT
#   (the LayerNorm decomposition), SOFTMAX and GELU, and declines 37 of the
#   88 int8 ADDs (residual adds whose inputs have different scales). Those
#   ops fall back to TFLite's reference-speed int8 kernels and cut the
#   XNNPACK graph into 113 partitions instead of 14; LayerNorm alone then
#   costs more than all the matmuls. In float32 they run inside XNNPACK.
# - accuracy: int8 attention BATCH_MATMULs wreck a pretrained model (the
#   scores get an int8 scale of ~39, the -10000 padding bias / 255, so real
#   scores of +-20 round to a few levels): [CLS] cosine to fp32 0.61 on MiniLM, 0.94
#   with them in float. Float BATCH_MATMUL costs ~1 ms of ~15 ms.
INT8_FLOAT_OPS = (
    "SQUARED_DIFFERENCE", "SUB", "RSQRT", "MEAN", "SOFTMAX", "GELU", "ADD", "MUL", "BATCH_MATMUL",
)
# Dense layers that full int8 export keeps in float32 as well: the ones whose
# outputs have the widest int8 range. In BERT-shaped encoders the FFN output
# dense layers emit a few outlier channels (values of +-100 to +-230 where
# most are within +-2; Bondarenko et al. 2021), so their per-tensor int8
# output scale is 0.4-0.9 and most outputs round to 0 or +-1 step. Measured on
# the fine-tuned MiniLM sentiment classifier (benchmarks/compression.py):
# all dense layers int8 loses 1.4 points of dev accuracy (93.5% of
# predictions agree with fp32); keeping the two widest (layers 0 and 2, scales
# 0.91 and 0.82) in float loses 0.2 (97.4% agree) for 3.4 MB more file
# (3.9x instead of 4.6x smaller than fp32); all six: 0.2 points, 2.9x smaller.
FLOAT_DENSE_LAYERS = 2


def _encoder_of(model):
    """The ElectraEncoder inside `model` (itself, or a task model's `.encoder`), or None."""
    from electra_tf.models.electra_encoder import ElectraEncoder

    if isinstance(model, ElectraEncoder):
        return model
    encoder = getattr(model, "encoder", None)
    return encoder if isinstance(encoder, ElectraEncoder) else None


def _check_arguments(model, quantize, max_seq_length, batch_size):
    import tf_keras as keras

    if not isinstance(model, keras.Model):
        raise ValueError(
            "`model` must be a tf-keras model such as an ElectraEncoder or "
            f"ElectraClassifier; received {type(model).__name__}."
        )
    if not model.built:
        raise ValueError(
            f"`model` ({type(model).__name__}) was never built: it has no weights to "
            "export. Call it on one batch of inputs (or load it with from_pretrained) first."
        )
    encoder = _encoder_of(model)
    compute_dtypes = {layer.compute_dtype for layer in (model, encoder) if layer is not None}
    if compute_dtypes != {"float32"}:
        # TFLite's converter has no bfloat16 kernels and fails deep inside with an MLIR error.
        raise ValueError(
            f"TFLite export converts float32 models; received {type(model).__name__} computing "
            f"in {sorted(compute_dtypes)}. Build it in float32 with the same weights "
            "(`from_config({**model.get_config(), 'dtype': 'float32'})`, then `set_weights`)."
        )
    if quantize not in QUANTIZE_MODES:
        raise ValueError(
            f"`quantize` must be one of {list(QUANTIZE_MODES)}; received quantize={quantize!r}."
        )
    if not is_integer(max_seq_length) or max_seq_length < 1:
        raise ValueError(
            f"`max_seq_length` must be a positive integer; received {max_seq_length!r}.")
    if encoder is not None and max_seq_length > encoder.max_sequence_length:
        raise ValueError(
            f"`max_seq_length`={max_seq_length} exceeds the model's max_sequence_length="
            f"{encoder.max_sequence_length}; pass max_seq_length <= {encoder.max_sequence_length}."
        )
    if batch_size is not None and (not is_integer(batch_size) or batch_size < 1):
        raise ValueError(
            f"`batch_size` must be a positive integer or None (dynamic); received {batch_size!r}."
        )


def read_calibration_texts(path, count=100, text_column="text"):
    r"""The first `count` texts of a calibration file, in any of the formats the jobs read.

    One format for every int8 route (`electra-tf export --quantize int8` and
    `electra-tf compress quantize`): a CSV/TSV file with a header (its
    `text_column`; labels, if any, are ignored), JSON lines with `text_column`,
    or plain text, one text per line.

    >>> import tempfile
    >>> path = tempfile.mkdtemp() + "/train.tsv"
    >>> _ = open(path, "w").write("label\ttext\n1\tA warm film.\n0\tDull.\n")
    >>> read_calibration_texts(path)
    ['A warm film.', 'Dull.']
    >>> _ = open(path[:-4] + ".txt", "w").write("A warm film.\n\nDull.\n")
    >>> read_calibration_texts(path[:-4] + ".txt", count=1)
    ['A warm film.']
    """
    import csv
    import json

    if not os.path.isfile(path):
        raise ValueError(f"Calibration file not found: received {path!r}; expected a CSV/TSV "
                         "file with a header, JSON lines, or plain text (one text per line).")
    if not is_integer(count) or count < 1:
        raise ValueError(f"`count` (--num-calibration-examples) must be a positive integer; "
                         f"received {count!r}.")
    with open(path, encoding="utf-8", newline="") as f:
        content = f.read()
    lines = [line for line in content.splitlines() if line.strip()]
    texts = []
    if path.endswith((".csv", ".tsv")):
        rows = csv.DictReader(lines, delimiter="\t" if path.endswith(".tsv") else ",")
        if text_column not in (rows.fieldnames or []):
            raise ValueError(f"{path}: its header {rows.fieldnames} has no {text_column!r} "
                             "column of texts to calibrate on.")
        texts = [row[text_column] for row in rows if row.get(text_column)]
    elif path.endswith(".jsonl") or (lines and lines[0].lstrip().startswith("{")):
        for number, line in enumerate(lines, start=1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}, line {number}: not valid JSON ({error}); expected "
                                 f"one object with {text_column!r} a line.") from None
            if not isinstance(record, dict) or not isinstance(record.get(text_column), str):
                raise ValueError(f"{path}, line {number}: expected an object with a "
                                 f"{text_column!r} string.")
            texts.append(record[text_column])
    else:
        texts = [line.strip() for line in lines]
    texts = [text for text in texts if text.strip()][:count]
    if not texts:
        raise ValueError(f"{path} holds no texts; int8 calibration needs real examples.")
    return texts


@renamed_arguments(seq_length="max_seq_length")
def representative_dataset(texts, tokenizer, max_seq_length, count=100):
    """A TFLite calibration generator: `count` packed texts, one example at a time.

    Returns a function that yields `{"input_word_ids", "input_mask",
    "input_type_ids"}` dicts of int32 (1, max_seq_length) arrays, as
    `TFLiteConverter.representative_dataset` calls it.

    >>> from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
    >>> generate = representative_dataset(["Hello world!", "A film."], ElectraTokenizer(),
    ...                                   max_seq_length=8)
    >>> examples = list(generate())
    >>> len(examples), examples[0]["input_word_ids"]
    (2, array([[ 101, 7592, 2088,  999,  102,    0,    0,    0]], dtype=int32))
    """
    if not texts:
        raise ValueError("The calibration data has no texts; int8 needs real examples.")
    pieces = tokenizer.tokenize(tf.constant(list(texts[:count])))
    features = tokenizer.pack([pieces], max_seq_length)
    features = {key: value.numpy() for key, value in features.items()}

    def generate():
        for row in range(len(features["input_word_ids"])):
            yield {key: np.asarray(value[row:row + 1], np.int32) for key, value in features.items()}

    return generate


@renamed_arguments(seq_length="max_seq_length")
def calibration_examples(representative_dataset, max_seq_length, vocab_size=None):
    """Validates a representative dataset and splits it into batch-1 examples.

    Args:
        representative_dataset: an iterable (list, generator, `tf.data.Dataset`)
            of dicts with exactly the keys `input_word_ids`, `input_mask`,
            `input_type_ids`, each an integer array of shape (max_seq_length,) or
            (batch, max_seq_length); or a function returning such an iterable, as
            `TFLiteConverter.representative_dataset` takes.
        max_seq_length: the sequence length of the export.
        vocab_size: when given, word ids must lie in [0, vocab_size).

    Returns:
        A list of dicts of int32 (1, max_seq_length) arrays, one per example.

    Raises:
        ValueError: the dataset is empty, or an element has other keys, another
            shape, a non-integer dtype or out-of-range ids.

    >>> examples = calibration_examples(
    ...     [{"input_word_ids": np.ones((2, 4), np.int32), "input_mask": np.ones((2, 4), bool),
    ...       "input_type_ids": np.zeros((2, 4), np.int64)}], max_seq_length=4)
    >>> len(examples), examples[0]["input_mask"].shape, examples[0]["input_mask"].dtype
    (2, (1, 4), dtype('int32'))
    """
    if representative_dataset is None:
        raise ValueError(
            "quantize='int8' needs a `representative_dataset`: a few hundred typical "
            f"inputs, dicts of {list(INPUT_KEYS)} arrays of shape (batch, {max_seq_length}), "
            "to calibrate the activation ranges."
        )
    if callable(representative_dataset) and not isinstance(representative_dataset, tf.data.Dataset):
        representative_dataset = representative_dataset()
    examples = []
    for position, element in enumerate(representative_dataset):
        if not isinstance(element, dict) or set(element) != set(INPUT_KEYS):
            received = sorted(element) if isinstance(element, dict) else type(element).__name__
            raise ValueError(
                f"representative_dataset element {position} must be a dict with keys "
                f"{sorted(INPUT_KEYS)}; received {received}."
            )
        arrays = {}
        for key in INPUT_KEYS:
            value = element[key]
            value = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
            if value.ndim == 1:
                value = value[None]
            # Float ids are a bug upstream (e.g. a normalised feature), not something to round.
            if value.ndim != 2 or value.shape[1] != max_seq_length or not (
                np.issubdtype(value.dtype, np.integer) or value.dtype == bool
            ):
                raise ValueError(
                    f"representative_dataset element {position}: `{key}` must be an integer "
                    f"array of shape (batch, {max_seq_length}); received dtype {value.dtype} and "
                    f"shape {value.shape}. Pack the texts with max_seq_length={max_seq_length}."
                )
            arrays[key] = value.astype(np.int32)
        shapes = {key: value.shape for key, value in arrays.items()}
        if len(set(shapes.values())) != 1:
            raise ValueError(
                f"representative_dataset element {position}: the three inputs must have one "
                f"shape; received {shapes}."
            )
        ids = arrays["input_word_ids"]
        if vocab_size is not None and (ids.min() < 0 or ids.max() >= vocab_size):
            raise ValueError(
                f"representative_dataset element {position}: `input_word_ids` must lie in "
                f"[0, {vocab_size}); received values from {ids.min()} to {ids.max()}."
            )
        for row in range(ids.shape[0]):
            examples.append({key: value[row:row + 1] for key, value in arrays.items()})
    if not examples:
        raise ValueError("`representative_dataset` is empty; int8 calibration needs examples.")
    return examples


def _serving_function(model, max_seq_length, batch_size):
    """A tf.function over int32 (batch_size, max_seq_length) inputs; returns a dict of floats."""
    signature = {key: tf.TensorSpec([batch_size, max_seq_length], tf.int32, name=key)
                 for key in INPUT_KEYS}

    @tf.function(input_signature=[signature])
    def serve(inputs):
        outputs = model(inputs, training=False)
        if not isinstance(outputs, dict):
            return {"logits": tf.cast(outputs, tf.float32)}
        # `encoder_outputs` (one tensor per layer) would make every layer an
        # output of the flatbuffer; the TF-Hub-style SavedModel keeps them.
        return {name: tf.cast(value, tf.float32) for name, value in outputs.items()
                if not isinstance(value, (list, tuple))}

    # TFLite's int8 quantizer cannot follow a tensor through a float-to-integer
    # bitcast, so the attention's transposes stay plain here (see `plain_transposes`),
    # and TFLite has no training-mode batch norm, so the LayerNorms stay Keras' own.
    with plain_transposes(), plain_layer_norms():
        return serve.get_concrete_function()


@renamed_arguments(seq_length="max_seq_length")
def tflite_flatbuffer(
    model,
    quantize=None,
    representative_dataset=None,
    max_seq_length=128,
    batch_size=1,
    float_ops=None,
    float_dense_layers=FLOAT_DENSE_LAYERS,
):
    """Converts `model` to a TFLite flatbuffer and returns its bytes.

    `export_tflite` writes what this returns; the benchmark calls it directly
    to compare int8 recipes.

    Args:
        model: a built tf-keras model called on the three int32 inputs
            (`ElectraEncoder`, `ElectraClassifier`, ...).
        quantize: None (float32), "float16" (float16 weights), "dynamic"
            (int8 weights, float activations) or "int8" (int8 weights and
            activations, calibrated on `representative_dataset`).
        representative_dataset: see `calibration_examples`; "int8" only.
        max_seq_length: the fixed sequence length of the inputs.
        batch_size: the fixed batch size, or None for a dynamic batch.
        float_ops: for "int8", TFLite op names (e.g. "BATCH_MATMUL") to keep
            in float32; None means `INT8_FLOAT_OPS`, () quantizes every op type.
        float_dense_layers: for "int8", how many dense layers (FULLY_CONNECTED
            ops) to keep in float32 besides `float_ops`: those whose int8
            output range is widest (the activation outliers; see
            `FLOAT_DENSE_LAYERS`). 0 quantizes every dense layer.

    Example:
    >>> from electra_tf import ElectraEncoder
    >>> encoder = ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=1,
    ...                          num_heads=2, intermediate_size=8, max_sequence_length=4)
    >>> flatbuffer = tflite_flatbuffer(encoder, max_seq_length=4)
    >>> flatbuffer[4:8]  # the TFLite file identifier
    b'TFL3'
    """
    _check_arguments(model, quantize, max_seq_length, batch_size)
    examples = None
    if quantize == "int8":
        encoder = _encoder_of(model)
        examples = calibration_examples(
            representative_dataset, max_seq_length, encoder.vocab_size if encoder else None
        )
    elif representative_dataset is not None:
        raise ValueError(
            f"`representative_dataset` is only used by quantize='int8'; received it with "
            f"quantize={quantize!r}. Drop it, or choose quantize='int8'."
        )
    if float_ops is not None and quantize != "int8":
        raise ValueError(
            f"`float_ops` applies to quantize='int8' only; received quantize={quantize!r}."
        )
    if not is_integer(float_dense_layers) or float_dense_layers < 0:
        raise ValueError(
            "`float_dense_layers` must be an integer >= 0 (dense layers kept in float32 by "
            f"int8 export); received {float_dense_layers!r}."
        )

    serve = _serving_function(model, max_seq_length, batch_size)
    # The converter saves `serve` with this object as a SavedModel first. Given the
    # Keras model, that save would also trace every layer's training call (the
    # fused kernels, padding removal), several times slower for the same file;
    # the variables `serve` reads are all it needs.
    variables = tf.Module()
    variables.captured = list(serve.graph.variables)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve], variables)
    if quantize is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize != "int8":
        return converter.convert()

    def calibrate():
        for example in examples:
            if batch_size is None or batch_size == 1:
                yield example
            else:
                yield {key: np.repeat(value, batch_size, axis=0) for key, value in example.items()}

    converter.representative_dataset = calibrate
    float_ops = INT8_FLOAT_OPS if float_ops is None else tuple(float_ops)
    if not float_ops and not float_dense_layers:
        return converter.convert()
    # Selective quantization: the debugger calibrates once and re-quantizes
    # with the listed ops (and nodes) left in float32, with quantize and
    # dequantize around them.
    debug_options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=list(float_ops))
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=calibrate, debug_options=debug_options
    )
    flatbuffer = debugger.get_nondebug_quantized_model()
    if not float_dense_layers:
        return flatbuffer
    # The debugger reads its options at each call: re-quantize the same
    # calibration with the widest dense layers denylisted by output name.
    debug_options.denylisted_nodes = widest_dense_outputs(flatbuffer, float_dense_layers)
    return debugger.get_nondebug_quantized_model()


def widest_dense_outputs(flatbuffer, count):
    """Output tensor names of the `count` int8 FULLY_CONNECTED ops with the largest output scale.

    The scale of an int8 tensor is its calibrated range / 255, so these are
    the dense layers whose outputs hold the largest values (the activation
    outliers) and lose most to int8 rounding.

    Args:
        flatbuffer: a full-int8 TFLite model (bytes).
        count: how many names to return (fewer if the model has fewer).

    Returns:
        A list of tensor names, widest first: what
        `QuantizationDebugOptions(denylisted_nodes=...)` takes.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    tensors = {tensor["index"]: tensor for tensor in interpreter.get_tensor_details()}
    dense = []
    for op in interpreter._get_ops_details():
        output = tensors[op["outputs"][0]]
        if op["op_name"] == "FULLY_CONNECTED" and output["dtype"] == np.int8:
            dense.append((output["quantization"][0], output["name"]))
    dense.sort(key=lambda scale_name: -scale_name[0])
    return [name for _, name in dense[:count]]


@renamed_arguments(seq_length="max_seq_length")
def export_tflite(
    model,
    path,
    quantize=None,
    representative_dataset=None,
    max_seq_length=128,
    overwrite=False,
    batch_size=1,
    float_dense_layers=FLOAT_DENSE_LAYERS,
):
    """Converts `model` to one .tflite file, written atomically.

    Inputs of the file: int32 `input_word_ids`, `input_mask`, `input_type_ids`
    of shape (batch_size, max_seq_length). Outputs: float32 `logits` for a
    classifier (and per token for a tagger); `sequence_output` and
    `pooled_output` for an encoder. Batch 1
    is the default because a fixed shape is what XNNPACK runs fastest (see the
    benchmark); `run_tflite` feeds larger batches row by row.

    Args:
        model: a built `ElectraEncoder`, `ElectraClassifier` or other tf-keras
            model called on the three inputs.
        path: the .tflite file to write. Written to a temporary file next to
            it and renamed, so a failed export leaves nothing behind.
        quantize: None, "float16", "dynamic" or "int8" (see `tflite_flatbuffer`).
        representative_dataset: calibration inputs for "int8" (see
            `calibration_examples`), validated before anything is converted.
        max_seq_length: the fixed sequence length.
        overwrite: replace an existing `path`.
        batch_size: the fixed batch size, or None for a dynamic batch.
        float_dense_layers: for "int8", dense layers kept in float32 (see
            `tflite_flatbuffer`).

    Returns:
        The path written.

    Example:
    >>> import os, tempfile
    >>> from electra_tf import ElectraEncoder
    >>> encoder = ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=1,
    ...                          num_heads=2, intermediate_size=8, max_sequence_length=4)
    >>> path = export_tflite(encoder, os.path.join(tempfile.mkdtemp(), "encoder.tflite"),
    ...                      max_seq_length=4)
    >>> sorted(run_tflite(path, {"input_word_ids": np.array([[2, 3, 4, 0]]),
    ...                          "input_mask": np.array([[1, 1, 1, 0]]),
    ...                          "input_type_ids": np.zeros((1, 4), np.int32)}))
    ['pooled_output', 'sequence_output']
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        raise ValueError(f"`path` {path!r} is a directory; expected a .tflite file path.")
    if os.path.exists(path) and not overwrite:
        raise ValueError(
            f"{path!r} already exists; choose another path or pass overwrite=True (--overwrite)."
        )
    flatbuffer = tflite_flatbuffer(
        model,
        quantize=quantize,
        representative_dataset=representative_dataset,
        max_seq_length=max_seq_length,
        batch_size=batch_size,
        float_dense_layers=float_dense_layers,
    )
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.tmp-", dir=directory)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(flatbuffer)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return path


def tflite_interpreter(path, num_threads=2, use_xnnpack=True):
    """A `tf.lite.Interpreter` on `path` (a .tflite file, or a flatbuffer's bytes), allocated,
    with or without XNNPACK (the CPU delegate)."""
    resolver = tf.lite.experimental.OpResolverType
    source = ({"model_content": path} if isinstance(path, bytes)
              else {"model_path": os.fspath(path)})
    with warnings.catch_warnings():
        # TF 2.21 warns that tf.lite.Interpreter moves to ai_edge_litert; it still works.
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(
            **source,
            num_threads=num_threads,
            experimental_op_resolver_type=(
                resolver.AUTO if use_xnnpack else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            ),
        )
    interpreter.allocate_tensors()
    return interpreter


def run_tflite(path, inputs, num_threads=2):
    """Runs a .tflite file written by `export_tflite` on numpy inputs.

    Args:
        path: the .tflite file.
        inputs: dict of `input_word_ids`, `input_mask`, `input_type_ids`,
            integer arrays of shape (batch, max_seq_length). A file exported with a
            fixed batch size is run on `batch` rows in chunks of that size.
        num_threads: CPU threads of the interpreter.

    Returns:
        The float32 outputs, concatenated over the batch: the array itself when
        the file has one output (a classifier's logits), else a dict by name.

    Example: see `export_tflite`.
    """
    if not os.path.isfile(path):
        raise ValueError(f"No TFLite file at {os.fspath(path)!r}.")
    interpreter = tflite_interpreter(path, num_threads)
    runner = interpreter.get_signature_runner()
    details = runner.get_input_details()
    if not isinstance(inputs, dict) or set(inputs) != set(details):
        received = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
        raise ValueError(f"Expected an input dict with keys {sorted(details)}; received {received}.")
    arrays = {key: np.asarray(value, np.int32) for key, value in inputs.items()}
    file_shape = details["input_word_ids"]["shape_signature"]  # (batch or -1, max_seq_length)
    for key, value in arrays.items():
        if value.shape != arrays["input_word_ids"].shape or (
            value.ndim != 2 or value.shape[1] != file_shape[1]
        ):
            raise ValueError(
                f"`{key}` must have shape (batch, {file_shape[1]}), the sequence length of "
                f"{os.fspath(path)!r}; received {value.shape}."
            )
    total = arrays["input_word_ids"].shape[0]
    chunk = total if file_shape[0] == -1 else int(file_shape[0])
    results = []
    for start in range(0, total, chunk):
        part = {key: value[start:start + chunk] for key, value in arrays.items()}
        rows = part["input_word_ids"].shape[0]
        if rows < chunk:  # pad the last chunk to the file's fixed batch size
            part = {key: np.concatenate([value, np.repeat(value[-1:], chunk - rows, 0)])
                    for key, value in part.items()}
        outputs = runner(**part)
        results.append({name: value[:rows] for name, value in outputs.items()})
    outputs = {name: np.concatenate([r[name] for r in results]) for name in results[0]}
    return next(iter(outputs.values())) if len(outputs) == 1 else outputs
