"""Whether the graph being traced is compiled by XLA."""

import tensorflow as tf

from electra_tf.utils.checks import is_integer


def compiled_by_xla():
    """Whether the ops being built will be compiled by XLA (`jit_compile=True`, TPUs).

    Shape-dependent code asks this: XLA needs static shapes and lacks some
    kernels (multinomial sampling), so such graphs take another path.

    >>> compiled_by_xla()
    False
    >>> bool(tf.function(lambda: tf.constant(compiled_by_xla()), jit_compile=True)())
    True
    """
    from tensorflow.python.ops import control_flow_util  # no public API tells this

    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def round_up(length, multiple):
    """`length` rounded up to a multiple of `multiple`: Python ints or int tensors alike.

    >>> round_up(9, 8), int(round_up(tf.constant(16), 8))
    (16, 16)
    """
    return (length + multiple - 1) // multiple * multiple


def bucket_length(length, length_multiple, max_length=None):
    """The length a length-bucketed forward (`xla_forward`, `tflite_forward`) runs: `length`
    rounded up to a multiple of `length_multiple`, but never past `max_length` (None: no
    cap). Python ints or int tensors alike.

    >>> bucket_length(9, 8), bucket_length(127, 5), bucket_length(127, 5, max_length=128)
    (16, 130, 128)
    >>> int(bucket_length(tf.constant(127), 5, max_length=128))
    128
    """
    padded = round_up(length, length_multiple)
    if max_length is None:
        return padded
    return tf.minimum(padded, max_length) if tf.is_tensor(padded) else min(padded, max_length)


def max_sequence_length_of(model):
    """The `max_sequence_length` of `model` (an encoder) or of its `.encoder` (a task
    model), or None for a model that has neither (its inputs' length is not capped)."""
    for candidate in (model, getattr(model, "encoder", None)):
        if isinstance(getattr(candidate, "max_sequence_length", None), int):
            return candidate.max_sequence_length
    return None


def check_max_length(length, max_length, caller):
    """A ValueError naming `caller` when `length` tokens exceed the model's `max_length`."""
    if max_length is not None and length > max_length:
        raise ValueError(f"{caller} received {length} tokens; the model takes at most "
                         f"max_sequence_length={max_length}. Truncate the inputs.")


def xla_forward(model, length_multiple=8, training=False):
    """`model` on (batch, length) inputs, each call padded to a multiple of `length_multiple`
    tokens and run as one XLA-compiled program; outputs cut back to the inputs' length.

    For small batches on a CPU, where TensorFlow's graph executor spends as
    long launching ~400 small ops as computing them: XLA fuses the
    elementwise work (bias, GELU, residual, LayerNorm, softmax) into a few
    kernels. Padding, the XLA call and the cutting back run in one traced
    graph (as eager ops around the program they cost more than XLA saved).
    ELECTRA-Small, real reviews one at a time (~26 tokens), float32, 2-core
    AMD EPYC: 1.39-1.51x the tf.function forward, 0.94-1.49x torch over two
    sittings (`benchmarks/encoder_inference.py --reviews 32 --batch-size 1`,
    `benchmarks/results/encoder_inference_reviews_b1_amd{7,8}_run1..3`). At batch
    32 the graph with `remove_padding=True` is faster, and in bfloat16 XLA's
    CPU matmuls are slower than oneDNN's, so this is not the default. In
    float32 at batch 1, `electra_tf.tflite_forward` (TFLite's XNNPACK, the
    same length buckets) ran 1.58-1.69x as fast as this on a 2-core Intel Xeon
    (`encoder_inference_reviews_b1_intel_tflite_run1..3`).

    XLA compiles once per input shape (ELECTRA-Small: ~2 s on 2 cores), so
    lengths are padded up to a multiple of `length_multiple` (8: at most 16
    programs up to 128 tokens per batch size), capped at the model's
    `max_sequence_length` (`bucket_length`); padded tokens are masked out
    (`input_mask` 0), so outputs equal the unpadded forward's up to float
    rounding. Warm a server up on each (batch size, length bucket) it will see.

    Args:
        model: a Keras model taking a dict of (batch, length) integer tensors
            (`input_word_ids`, `input_mask`, `input_type_ids`): an encoder or a
            task model.
        length_multiple: pad the length axis up to a multiple of this (>= 1).
        training: passed to the model (dropout); inference by default.

    Returns:
        A callable: inputs dict -> the model's outputs, those with a length
        axis (axis 1 unknown when traced with unknown length: sequence
        outputs, per-token logits) cut back to the inputs' length.

    >>> import electra_tf
    >>> encoder = electra_tf.ElectraEncoder.from_preset("tiny")
    >>> inputs = {"input_word_ids": tf.constant([[101, 2023, 102]]),
    ...           "input_mask": tf.ones([1, 3], tf.int32), "input_type_ids": tf.zeros([1, 3], tf.int32)}
    >>> forward = xla_forward(encoder, length_multiple=8)  # runs (1, 8) inputs
    >>> outputs = forward(inputs)
    >>> outputs["sequence_output"].shape[:2], outputs["pooled_output"].shape[0]
    (TensorShape([1, 3]), 1)
    >>> float(tf.reduce_max(tf.abs(outputs["sequence_output"]
    ...                            - encoder(inputs)["sequence_output"]))) < 1e-4
    True
    """
    if not is_integer(length_multiple) or length_multiple < 1:
        raise ValueError(f"length_multiple must be a positive integer; received "
                         f"{length_multiple!r}.")
    max_length = max_sequence_length_of(model)
    # XLA compiles this once per concrete input shape it is called with.
    compiled = tf.function(lambda inputs: model(inputs, training=training), jit_compile=True)

    def padded_forward(inputs):  # {key: (batch, n)} -> outputs, each (batch, n, ...) or whole
        length = tf.shape(next(iter(inputs.values())))[1]
        padded_length = bucket_length(length, length_multiple, max_length)
        outputs = compiled({key: tf.pad(value, [[0, 0], [0, padded_length - length]])
                            for key, value in inputs.items()})
        # Traced with unknown length: an output has a length axis when its axis 1 is unknown.
        return tf.nest.map_structure(
            lambda output: (output[:, :length] if output.shape.rank is not None
                            and output.shape.rank >= 2 and output.shape[1] is None else output),
            outputs)

    graphs = {}  # (key, dtype) pairs -> padded_forward traced for (batch, length) of them

    def forward(inputs):
        if not isinstance(inputs, dict) or not inputs:
            raise ValueError(f"xla_forward expects a dict of (batch, length) integer tensors "
                             f"such as input_word_ids, input_mask, input_type_ids; received "
                             f"{type(inputs).__name__}.")
        inputs = {key: value if isinstance(value, tf.Tensor) else tf.convert_to_tensor(value)
                  for key, value in inputs.items()}
        shapes = {key: tuple(value.shape) for key, value in inputs.items()}
        if any(len(shape) != 2 for shape in shapes.values()) or len(set(shapes.values())) != 1:
            raise ValueError(f"xla_forward expects inputs of one (batch, length) shape; "
                             f"received shapes {shapes}.")
        length = next(iter(shapes.values()))[1]
        check_max_length(length, max_length, "xla_forward")
        padded_length = bucket_length(length, length_multiple, max_length)
        if padded_length != length and "input_mask" not in inputs:
            raise ValueError(f"xla_forward pads {length} tokens to {padded_length} and needs an "
                             f"input_mask to mask the padding out; received only "
                             f"{sorted(inputs)}.")
        signature = tuple(sorted((key, value.dtype) for key, value in inputs.items()))
        if signature not in graphs:  # one graph for every (batch, length) of these inputs
            specs = {key: tf.TensorSpec([None, None], dtype) for key, dtype in signature}
            graphs[signature] = tf.function(padded_forward, input_signature=[specs],
                                            autograph=False)
        return graphs[signature](inputs)

    return forward
