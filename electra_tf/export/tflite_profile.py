"""Per-op-type timing of a .tflite file, to find the ops that run on slow kernels.

The Python interpreter exposes no op profiler (the C++ `benchmark_model`
tool is in neither the tensorflow nor the ai-edge-litert wheel), so
`profile_tflite` times each distinct operator on its own: it cuts a
one-operator model out of the flatbuffer, feeds it the tensors the full
model produced on `inputs`, and times it with the same interpreter settings
(XNNPACK takes the op, or the built-in kernel runs it, exactly as it would
in the full model when the op is not fused with its neighbours). Operators
that repeat in every layer with identical shapes are timed once and counted
per occurrence.
"""

import collections
import copy
import time
import warnings

import numpy as np
import tensorflow as tf
from tensorflow.lite.tools import flatbuffer_utils

from electra_tf.export.tflite_export import tflite_interpreter

ProfileRow = collections.namedtuple("ProfileRow", "op_type count milliseconds share xnnpack")


def _single_op_model(model, operator):
    """A model object holding `operator` alone, with its constant inputs, or None if not possible.

    Args:
        model: a `schema_fb.ModelT` (flatbuffer_utils.read_model_from_bytearray).
        operator: one `OperatorT` of its first subgraph.

    Returns:
        (model bytes, [original indices of the non-constant inputs]).
    """
    graph = model.subgraphs[0]
    new_model = copy.copy(model)
    new_model.buffers = [model.buffers[0]]  # buffer 0 is the empty sentinel
    new_model.metadata, new_model.signatureDefs, new_model.metadataBuffer = None, None, None
    new_graph = copy.copy(graph)
    new_graph.tensors, remap = [], {}
    variable_inputs = []
    for index in list(operator.inputs) + list(operator.outputs):
        if index < 0 or index in remap:
            continue
        tensor = copy.copy(graph.tensors[index])
        data = model.buffers[tensor.buffer].data if tensor.buffer else None
        if data is not None and len(data):
            new_model.buffers.append(model.buffers[tensor.buffer])
            tensor.buffer = len(new_model.buffers) - 1
        else:
            tensor.buffer = 0
            if index in operator.inputs:
                variable_inputs.append(index)
        remap[index] = len(new_graph.tensors)
        new_graph.tensors.append(tensor)
    new_operator = copy.copy(operator)
    new_operator.inputs = np.array([remap[i] if i >= 0 else -1 for i in operator.inputs], np.int32)
    new_operator.outputs = np.array([remap[i] for i in operator.outputs], np.int32)
    new_operator.intermediates = None
    new_graph.operators = [new_operator]
    new_graph.inputs = np.array([remap[i] for i in variable_inputs], np.int32)
    new_graph.outputs = np.array([remap[i] for i in operator.outputs], np.int32)
    new_model.subgraphs = [new_graph]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(new_model)), variable_inputs


def _median_invoke_seconds(interpreter, min_seconds=0.02, min_runs=5):
    interpreter.invoke()  # warm-up: XNNPACK packs weights on the first run
    times = []
    while len(times) < min_runs or sum(times) < min_seconds:
        start = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - start)
        if len(times) >= 200:
            break
    return float(np.median(times))


def whole_model_milliseconds(path, inputs, num_threads=2, use_xnnpack=True, runs=20):
    """Median ms of one `invoke` of the full model on `inputs` (one batch of the file's shape)."""
    interpreter = tflite_interpreter(path, num_threads, use_xnnpack)
    runner_inputs = interpreter.get_signature_runner().get_input_details()
    for name, detail in runner_inputs.items():
        interpreter.set_tensor(detail["index"], np.asarray(inputs[name], np.int32))
    return 1e3 * _median_invoke_seconds(interpreter, min_seconds=0.0, min_runs=runs)


def profile_tflite(path, inputs, num_threads=2, use_xnnpack=True):
    """Times each op type of a .tflite file on `inputs`.

    Args:
        path: a .tflite file with one subgraph (as `export_tflite` writes).
        inputs: dict of the file's inputs, numpy arrays of its input shapes.
        num_threads: interpreter threads.
        use_xnnpack: run with the XNNPACK delegate (TFLite's default) or
            with the built-in kernels only.

    Returns:
        A list of `ProfileRow(op_type, count, milliseconds, share, xnnpack)`,
        slowest first: the summed time of that op type per invoke, its share
        of the summed time of all ops, and how many of its operators XNNPACK
        took (the rest ran on TFLite's built-in kernels).

    Example:
    >>> import os, tempfile
    >>> from electra_tf import ElectraEncoder
    >>> from electra_tf.export.tflite_export import export_tflite
    >>> encoder = ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=1,
    ...                          num_heads=2, intermediate_size=8, max_sequence_length=4)
    >>> path = export_tflite(encoder, os.path.join(tempfile.mkdtemp(), "e.tflite"),
    ...                      max_seq_length=4)
    >>> rows = profile_tflite(path, {"input_word_ids": np.array([[2, 3, 4, 0]]),
    ...                              "input_mask": np.array([[1, 1, 1, 0]]),
    ...                              "input_type_ids": np.zeros((1, 4), np.int32)})
    >>> "FULLY_CONNECTED" in [row.op_type for row in rows], round(sum(r.share for r in rows), 6)
    (True, 1.0)
    """
    with open(path, "rb") as file:
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(file.read()))
    if len(model.subgraphs) != 1:
        raise ValueError(
            f"profile_tflite handles single-subgraph files; {path!r} has {len(model.subgraphs)}."
        )
    # Run the full model once, keeping every intermediate tensor, so each
    # operator is timed on the values it really sees (gathers need valid ids).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = tf.lite.Interpreter(
            model_path=path,
            num_threads=num_threads,
            experimental_preserve_all_tensors=True,
            experimental_op_resolver_type=(
                tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            ),
        )
    full.allocate_tensors()
    details = full.get_signature_runner().get_input_details()
    if not isinstance(inputs, dict) or set(inputs) != set(details):
        raise ValueError(f"Expected inputs {sorted(details)}; received {sorted(inputs or {})}.")
    for name, detail in details.items():
        value = np.asarray(inputs[name], detail["dtype"])
        if tuple(value.shape) != tuple(detail["shape"]):
            raise ValueError(
                f"`{name}` must have the file's input shape {tuple(detail['shape'])}; "
                f"received {value.shape}."
            )
        full.set_tensor(detail["index"], value)
    full.invoke()

    graph = model.subgraphs[0]
    timed = {}  # signature of an operator -> (milliseconds, delegated)
    totals = collections.defaultdict(lambda: [0, 0.0, 0])
    for operator in graph.operators:
        op_type = flatbuffer_utils.opcode_to_name(model, operator.opcodeIndex)
        signature = (op_type,) + tuple(
            (tuple(graph.tensors[i].shape), graph.tensors[i].type) if i >= 0 else None
            for i in list(operator.inputs) + list(operator.outputs)
        ) + (repr(vars(operator.builtinOptions)) if operator.builtinOptions else "",)
        if signature not in timed:
            content, variable_inputs = _single_op_model(model, operator)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                single = tf.lite.Interpreter(
                    model_content=content,
                    num_threads=num_threads,
                    experimental_op_resolver_type=(
                        tf.lite.experimental.OpResolverType.AUTO if use_xnnpack
                        else tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
                    ),
                )
            single.allocate_tensors()
            for position, index in enumerate(variable_inputs):
                detail = single.get_input_details()[position]
                single.set_tensor(detail["index"], full.get_tensor(index))
            delegated = any(op["op_name"] == "DELEGATE" for op in single._get_ops_details())
            timed[signature] = (1e3 * _median_invoke_seconds(single), delegated)
        milliseconds, delegated = timed[signature]
        row = totals[op_type]
        row[0] += 1
        row[1] += milliseconds
        row[2] += int(delegated)
    overall = sum(row[1] for row in totals.values()) or 1.0
    rows = [ProfileRow(op, count, ms, ms / overall, xnnpack)
            for op, (count, ms, xnnpack) in totals.items()]
    return sorted(rows, key=lambda row: -row.milliseconds)


def format_profile(rows, top=None):
    """The rows of `profile_tflite` as a text table.

    >>> print(format_profile([ProfileRow("FULLY_CONNECTED", 3, 1.5, 0.75, 3),
    ...                       ProfileRow("MEAN", 2, 0.5, 0.25, 0)]))
    op type              count       ms  share  on XNNPACK
    FULLY_CONNECTED          3    1.500    75%         3/3
    MEAN                     2    0.500    25%         0/2
    """
    lines = [f"{'op type':<20} {'count':>5} {'ms':>8} {'share':>6}  on XNNPACK"]
    for row in rows[:top]:
        lines.append(f"{row.op_type:<20} {row.count:>5} {row.milliseconds:>8.3f} "
                     f"{row.share:>6.0%} {f'{row.xnnpack}/{row.count}':>11}")
    return "\n".join(lines)
