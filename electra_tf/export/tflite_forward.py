"""Small batches on a CPU through TFLite's XNNPACK delegate: `tflite_forward`."""

import threading

import numpy as np

from electra_tf.export.tflite_export import (
    INPUT_KEYS, _check_arguments, _serving_function, tflite_flatbuffer, tflite_interpreter)
from electra_tf.utils.xla import bucket_length, check_max_length, max_sequence_length_of
from electra_tf.utils.checks import is_integer


def tflite_forward(model, length_multiple=8, num_threads=2):
    """`model` on (batch, length) inputs, each call padded to a multiple of `length_multiple`
    tokens and run as a float32 TFLite model by the XNNPACK CPU delegate; outputs cut back
    to the inputs' length.

    For one text (or a few) at a time on a CPU. TensorFlow's graph executor spends
    several microseconds on each of a forward's ~400 small ops and, with two threads,
    wakes and waits for the second core on each of them; TFLite runs a model
    converted for one input shape with XNNPACK, whose ~560 ops of ELECTRA-Small at
    32 tokens cost ~1.5 ms beyond their own work on two threads (5.0 ms in all).
    ELECTRA-Small, real reviews one at a time (~26 tokens), float32, 2-core Intel
    Xeon: see `benchmarks/encoder_inference.py --reviews 32 --batch-size 1` (the
    "TFLite XNNPACK" row). Float32 only: XNNPACK has no bfloat16 kernels (for
    bfloat16 at batch 1, trace the graph in `width_parts`); at batch 32 the graph
    with `remove_padding=True` in `in_batch_parts` is faster.

    Each (batch, padded length) is converted once, on its first call (ELECTRA-Small:
    ~5 s), with the same converter as `export_tflite` (float32, the attention's
    transposes and LayerNorms as plain ops), and keeps its own interpreter and its
    own copy of the weights (ELECTRA-Small: ~55 MB each, more once XNNPACK has
    packed them), so lengths are padded up to a multiple of `length_multiple` (8: at
    most 16 shapes up to 128 tokens per batch size, capped at the model's
    `max_sequence_length`); padded tokens are masked out (`input_mask` 0), so
    outputs equal the unpadded forward's up to float rounding. Warm a server up on
    each (batch size, length bucket) it will see. Calls may come from several
    threads; each interpreter runs one call at a time.

    Args:
        model: a built tf-keras model taking a dict of (batch, length) integer tensors
            `input_word_ids`, `input_mask`, `input_type_ids`: an encoder or a task model.
        length_multiple: pad the length axis up to a multiple of this (>= 1).
        num_threads: the interpreter's CPU threads (>= 1).

    Returns:
        A callable: inputs dict (numpy arrays or tensors) -> dict of float32 numpy
        arrays by output name (an encoder's `sequence_output` and `pooled_output`,
        a classifier's `logits`, a QA model's `start_logits` and `end_logits`), those
        with a length axis cut back to the inputs' length.

    >>> import electra_tf, numpy as np
    >>> encoder = electra_tf.ElectraEncoder.from_preset("tiny")
    >>> inputs = {"input_word_ids": np.array([[101, 2023, 102]]),
    ...           "input_mask": np.ones([1, 3], np.int32), "input_type_ids": np.zeros([1, 3], np.int32)}
    >>> forward = tflite_forward(encoder, length_multiple=8)  # runs (1, 8) inputs
    >>> outputs = forward(inputs)
    >>> outputs["sequence_output"].shape[:2], outputs["pooled_output"].shape[0]
    ((1, 3), 1)
    >>> float(np.abs(outputs["sequence_output"]
    ...              - encoder(inputs)["sequence_output"].numpy()).max()) < 1e-4
    True
    """
    _check_arguments(model, None, 1, 1)
    for name, value in (("length_multiple", length_multiple), ("num_threads", num_threads)):
        if not is_integer(value) or value < 1:
            raise ValueError(f"{name} must be a positive integer; received {value!r}.")
    max_length = max_sequence_length_of(model)
    runners = {}  # (batch, padded length) -> (lock, signature runner)
    per_token = None  # the names of the outputs with a length axis, from a trace on first use
    building = threading.Lock()

    def runner_for(batch, length):
        nonlocal per_token
        if (batch, length) in runners:  # calls on converted shapes never wait for a conversion
            return runners[batch, length]
        with building:
            if per_token is None:  # traced with unknown length: axis 1 unknown = a length axis
                outputs = _serving_function(model, None, None).structured_outputs
                per_token = {name for name, value in outputs.items()
                             if value.shape.rank is not None and value.shape.rank >= 2
                             and value.shape[1] is None}
            if (batch, length) not in runners:
                flatbuffer = tflite_flatbuffer(model, max_seq_length=length, batch_size=batch)
                interpreter = tflite_interpreter(flatbuffer, num_threads)
                runners[batch, length] = (threading.Lock(), interpreter.get_signature_runner())
            return runners[batch, length]

    def forward(inputs):
        if not isinstance(inputs, dict) or set(inputs) != set(INPUT_KEYS):
            received = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
            raise ValueError(f"tflite_forward expects a dict of (batch, length) integer arrays "
                             f"with keys {list(INPUT_KEYS)}; received {received}.")
        arrays = {key: np.asarray(value) for key, value in inputs.items()}
        shapes = {key: value.shape for key, value in arrays.items()}
        if any(len(shape) != 2 for shape in shapes.values()) or len(set(shapes.values())) != 1:
            raise ValueError(f"tflite_forward expects inputs of one (batch, length) shape; "
                             f"received shapes {shapes}.")
        if any(not np.issubdtype(value.dtype, np.integer) for value in arrays.values()):
            raise ValueError(f"tflite_forward expects integer ids, mask and types; received "
                             f"dtypes { {key: str(value.dtype) for key, value in arrays.items()} }.")
        batch, length = shapes["input_word_ids"]
        if batch < 1 or length < 1:
            raise ValueError(f"tflite_forward needs at least one text of at least one token; "
                             f"received shape {(batch, length)}.")
        check_max_length(length, max_length, "tflite_forward")
        padded_length = bucket_length(length, length_multiple, max_length)
        lock, run = runner_for(batch, padded_length)
        padding = [(0, 0), (0, padded_length - length)]
        # (batch, padded length) int32 each; padded tokens have input_mask 0.
        padded = {key: np.pad(value.astype(np.int32), padding) for key, value in arrays.items()}
        with lock:
            outputs = run(**padded)
        return {name: value[:, :length] if name in per_token else value
                for name, value in outputs.items()}

    return forward
