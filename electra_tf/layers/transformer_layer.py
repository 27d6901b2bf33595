"""TransformerLayer: one post-LayerNorm BERT/ELECTRA encoder block.

    x = LayerNorm(x + Dropout(Attention(x)))
    x = LayerNorm(x + Dropout(Dense(GELU(Dense(x)))))

Query, key and value are one fused (hidden, 3·hidden) projection: one matmul
instead of three is measurably faster on CPU, and the checkpoint converters
split/concatenate it to and from the published separate q/k/v kernels.
"""

import contextlib
import math
import weakref

import numpy as np
import tensorflow as tf
import tf_keras as keras
# The public tfmot path (a private `...python.core...` path may move in any release); it costs
# no more: both load tfmot's package, which this one re-exports from.
from tensorflow_model_optimization.sparsity.keras import PrunableLayer

from electra_tf.layers.build_utils import build_in_scope
from electra_tf.layers.dropout import Dropout
from electra_tf.layers.layer_norm import apply_layer_norm
from electra_tf.layers.fused_kernels import (
    bias_gelu, dropout_add_layer_norm, fuses_kernels, has_accelerator, softmax_dropout)
from electra_tf.utils.onednn import onednn_assumes_frozen_weights
from electra_tf.utils.thread_flag import ThreadFlag, ThreadValue
from electra_tf.utils.checks import is_integer


def gelu(x):
    """Exact (erf) GELU, as BERT and the published ELECTRA checkpoints use.

    keras-hub's ElectraBackbone uses the tanh approximation instead, which
    differs by up to ~1e-3 per activation.
    """
    return tf.nn.gelu(x, approximate=False)


@tf.custom_gradient
def training_gelu(x):
    """`gelu` for training graphs: x·Φ(x) in float32, with its gradient written out.

    The same function as `gelu`, in the form BERT's and ELECTRA's own code
    write it, 0.5·x·(1 + erf(x/√2)), computed in float32 whatever `x`'s
    dtype, and back-propagated as dy·(Φ(x) + x·φ(x)). TensorFlow's CPU
    `Erfc` (which `tf.nn.gelu` uses) is 1.4× as slow as `Erf` in float32 and
    5× in bfloat16, and autodiff through `tf.nn.gelu` runs its element-wise
    ops in the input's dtype: forward and backward over a (2048, 1024)
    bfloat16 activation took 31-38 ms against 58-76 ms (float32 27-31
    against 36-38 ms), on 2 busy cores. The values agree with `gelu` to
    within float32 rounding (1e-6 at |x| ≈ 15, where 1 + erf cancels).

    Inference keeps `gelu`, which TensorFlow fuses into the preceding
    MatMul + BiasAdd on CPU and the TFLite converter turns into its GELU op.
    On a CPU-only host, training graphs use `fused_kernels.bias_gelu`
    instead (the same math with the bias added, one XLA kernel each way);
    this is their GELU on GPUs and TPUs and behind a layer that
    quantization-aware training wrapped.

    >>> x = tf.constant([-3.0, -0.5, 0.0, 0.5, 3.0])
    >>> bool(tf.reduce_all(tf.abs(training_gelu(x) - gelu(x)) < 1e-6))
    True
    """
    x32 = tf.cast(x, tf.float32)
    cdf = 0.5 + 0.5 * tf.math.erf(x32 * 0.7071067811865476)  # Φ(x)

    def gradient(dy):
        pdf = 0.3989422804014327 * tf.exp(-0.5 * tf.square(x32))  # φ(x) = exp(-x²/2) / √(2π)
        return dy * tf.cast(cdf + x32 * pdf, dy.dtype)

    return tf.cast(x32 * cdf, x.dtype), gradient


def attention_bias_from_mask(input_mask, dtype):
    """Turns a padding mask into an additive attention bias.

    Args:
        input_mask: (batch, seq) 1 for real tokens, 0 for padding.
        dtype: the attention scores' dtype.

    Returns:
        (batch, 1, 1, seq): 0 where attended, -10000 where masked. exp(-10000)
        underflows to exactly 0 in float32 and float16, so this gives the same
        probabilities as the -inf/finfo.min masks other implementations use,
        without NaNs on fully padded rows.
    """
    mask = tf.cast(input_mask, dtype)[:, None, None, :]  # (B, 1, 1, T)
    return (1.0 - mask) * tf.cast(-10000.0, dtype)


# Integer types of the same width: a transpose moves bits, not values.
_SAME_WIDTH_INTEGER = {tf.float32: tf.int32, tf.bfloat16: tf.int16}
_plain_transposes = ThreadFlag()


def plain_transposes():
    """Within this block, `swap_heads_and_positions` and `split_heads` trace plain `tf.transpose`s.

    For graphs that leave TensorFlow's CPU runtime: the TFLite converter
    (whose int8 quantizer cannot see through a float-to-integer bitcast)
    traces the model inside it.

    >>> with plain_transposes():
    ...     ops = tf.function(swap_heads_and_positions).get_concrete_function(
    ...         tf.TensorSpec([1, 3, 2, 4])).graph.get_operations()
    >>> sorted({op.type for op in ops} & {"Bitcast", "Transpose"})
    ['Transpose']
    """
    return _plain_transposes.on()


def _transpose_as_integers(x, perm):
    """tf.transpose(x, perm) on x's bits; its gradient is the inverse permutation, the same way."""
    bits = _SAME_WIDTH_INTEGER[x.dtype]
    inverse = [perm.index(axis) for axis in range(len(perm))]

    @tf.custom_gradient
    def transpose(x):
        def gradient(dy):
            return _transpose_as_integers(dy, inverse)

        return tf.bitcast(tf.transpose(tf.bitcast(x, bits), perm), x.dtype), gradient

    return transpose(x)


def swap_heads_and_positions(x):
    """(B, T, nh, hs) -> (B, nh, T, hs) and back: `tf.transpose(x, [0, 2, 1, 3])`.

    On a CPU-only host, float32 and bfloat16 tensors are moved as integers of
    the same width (`tf.bitcast` is a free view of the same bytes), exactly
    the same values. TensorFlow's oneDNN rewrite runs every float transpose
    as `_MklTranspose`, which hands even a (1, 31, 12, 32) tensor to both
    threads of a 2-core machine and waits for them: about 150 µs a call,
    against about 15 µs for Eigen's integer transpose, which keeps small
    tensors on one thread (tf.profiler, MiniLM at batch 1: the 24 transposes
    took 11 of 63 ms). ELECTRA-Small on real reviews ran 1.09× as fast at
    batch 1 and 1.05× at batch 32 (`benchmarks/encoder_inference.py`'s A/B,
    medians of three runs). GPUs and TPUs keep the plain transpose, and so
    does `plain_transposes()`.

    >>> x = tf.reshape(tf.range(24, dtype=tf.float32), [1, 2, 3, 4])
    >>> bool(tf.reduce_all(swap_heads_and_positions(x) == tf.transpose(x, [0, 2, 1, 3])))
    True
    """
    if not _transposes_as_integers(x.dtype):
        return tf.transpose(x, [0, 2, 1, 3])
    return _transpose_as_integers(x, [0, 2, 1, 3])


def _transposes_as_integers(dtype):
    """Whether the attention's transposes move `dtype` tensors as integers here (see below)."""
    return dtype in _SAME_WIDTH_INTEGER and not _plain_transposes and not has_accelerator()


def split_heads(qkv, grid_shape, num_heads, head_size):
    """The fused projection's (B·T, 3A) rows -> query, key, value, each (B, nh, T, hs).

    `grid_shape` is (B, T), the padded grid the rows fill (ints or scalar tensors).

    On a CPU-only host (float32, bfloat16): one integer transpose of the
    whole (B, T, 3, nh, hs) tensor to (3, B, nh, T, hs), then a split along
    the first axis, which TensorFlow does without copying (each part is a
    contiguous block). Elsewhere, and inside `plain_transposes()`: a split of
    the columns and a transpose of each part, a graph the TFLite converter
    and accelerators take as it is. Same values either way; the first skips
    the split's copy of q, k and v (ELECTRA-Small, batch 32 × 128, float32:
    the `Split` ops took 17 of 550 ms of op time in tf.profiler).

    >>> qkv = tf.reshape(tf.range(2 * 3 * 3 * 4, dtype=tf.float32), [2 * 3, 3 * 4])
    >>> query, key, value = split_heads(qkv, (2, 3), num_heads=2, head_size=2)
    >>> expected = tf.transpose(tf.reshape(qkv[:, 4:8], [2, 3, 2, 2]), [0, 2, 1, 3])
    >>> key.shape, bool(tf.reduce_all(key == expected))
    (TensorShape([2, 2, 3, 2]), True)
    """
    batch_size, length = grid_shape
    if not _transposes_as_integers(qkv.dtype):
        def heads(columns):  # (B·T, A) -> (B, nh, T, hs)
            return swap_heads_and_positions(
                tf.reshape(columns, [batch_size, length, num_heads, head_size]))

        return tuple(heads(columns) for columns in tf.split(qkv, 3, axis=-1))
    qkv = tf.reshape(qkv, [batch_size, length, 3, num_heads, head_size])
    qkv = _transpose_as_integers(qkv, [2, 0, 3, 1, 4])  # (3, B, nh, T, hs)
    parts = tf.split(qkv, 3, axis=0)  # each (1, B, nh, T, hs)
    return tuple(tf.squeeze(part, axis=0) for part in parts)


_width_parts = ThreadValue(1)  # the group count of the `width_parts` block the thread is in


@contextlib.contextmanager
def width_parts(parts):
    """Within this block, traced inference graphs run each `TransformerLayer` in `parts` groups.

    Each block's heads, and its feed-forward neurons, are split into `parts`
    groups (sizes differing by at most one): group g projects the rows onto
    its own heads' queries, keys and values, attends, and multiplies its
    context by its rows of the output kernel; the groups' shares are summed
    before the residual's LayerNorm. The feed-forward layer likewise, by
    neurons. The groups share no op, so with one thread per op and `parts`
    inter-op threads (`set_tensorflow_threads(1, parts)`) TensorFlow runs
    them at once, each core whole matmuls of full row count: tensor
    parallelism for a batch too small to split by rows (`in_batch_parts`),
    such as one review at a time. The same function up to float rounding
    (the shares are summed in another order).

    Only for graphs traced inside the block (`tf.function`, a SavedModel
    export) with `training` not True, padded or `remove_padding=True`, and
    plain Dense layers (not those pruning or quantization-aware training
    wrapped); other calls run the block as one.
    The groups' weights are copies made when the graph is traced (eager
    tensors it captures, as `frozen_bfloat16_weights`): a graph traced
    before the weights change keeps computing with the old ones.

    >>> import electra_tf
    >>> encoder = electra_tf.ElectraEncoder.from_preset("tiny")
    >>> inputs = {"input_word_ids": tf.constant([[101, 2023, 102]]),
    ...           "input_mask": tf.ones([1, 3], tf.int32), "input_type_ids": tf.zeros([1, 3], tf.int32)}
    >>> forward = tf.function(lambda x: encoder(x, training=False)["sequence_output"])
    >>> with width_parts(2):
    ...     in_groups = forward.get_concrete_function(inputs)
    >>> float(tf.reduce_max(tf.abs(in_groups(inputs) - encoder(inputs)["sequence_output"]))) < 1e-5
    True
    """
    check_width_parts(parts)
    with _width_parts.set(parts):
        yield


def check_width_parts(parts):
    """A ValueError unless `parts` is a positive integer (a `width_parts` group count)."""
    if not is_integer(parts) or parts < 1:
        raise ValueError(f"width_parts takes a positive integer number of groups; received "
                         f"{parts!r}.")


def width_groups(layer, parts):
    """`layer`'s weights in `width_parts` groups, copied in its compute dtype.

    Returns (attention, attention_output_bias, feed_forward, output_bias):
    attention is a list of (qkv kernel (H, 3·a), qkv bias (3·a,), output
    kernel (a, H)) for groups of heads a = heads·hs wide, their q, k, v
    columns in the fused projection's order; feed_forward a list of
    (intermediate kernel (H, i), its bias (i,), output kernel (i, H)) for
    groups of i neurons; the two (H,) biases of the outputs the groups' shares
    are summed into. At most one group per head or neuron. One set of copies
    for every trace while the weights stay the same (the encoder may trace
    its stack twice, see `choose_layer_norms`); a trace after they changed
    makes new ones.

    >>> layer = TransformerLayer(hidden_size=8, num_heads=2, intermediate_size=5)
    >>> layer.build((None, None, 8))
    >>> attention, _, feed_forward, _ = width_groups(layer, 2)
    >>> [kernel.shape.as_list() for kernel, _, _ in attention], [b.shape[0] for _, b, _ in feed_forward]
    ([[8, 12], [8, 12]], [3, 2])
    >>> width_groups(layer, 2)[0][0][0] is attention[0][0]
    True
    """
    with tf.init_scope():  # eager, also while a graph is being traced
        def read(variable):
            return tf.cast(tf.convert_to_tensor(variable), layer.compute_dtype)

        dense_layers = (layer.qkv_dense, layer.attention_output_dense, layer.intermediate_dense,
                        layer.output_dense)
        source = [variable.numpy() for dense in dense_layers for variable in (dense.kernel,
                                                                               dense.bias)]
        cached = _WIDTH_GROUPS.get(layer)
        if cached is not None and cached[0] == (parts, layer.compute_dtype) and all(
                np.array_equal(old, new) for old, new in zip(cached[1], source)):
            return cached[2]
        qkv_kernel, qkv_bias = read(layer.qkv_dense.kernel), read(layer.qkv_dense.bias)
        output_kernel = read(layer.attention_output_dense.kernel)  # (A, H)
        attention = []
        for heads in np.array_split(np.arange(layer.num_heads), min(parts, layer.num_heads)):
            # This group's columns of q, then of k, then of v: (3, heads, hs) as split_heads reads.
            width = np.concatenate([np.arange(head * layer.head_size, (head + 1) * layer.head_size)
                                    for head in heads])  # (a,) within q's A columns
            columns = np.concatenate([part * layer.attention_size + width for part in range(3)])
            attention.append((tf.gather(qkv_kernel, columns, axis=1), tf.gather(qkv_bias, columns),
                              tf.gather(output_kernel, width, axis=0)))
        kernel, bias = read(layer.intermediate_dense.kernel), read(layer.intermediate_dense.bias)
        down = read(layer.output_dense.kernel)  # (I, H)
        feed_forward = [(kernel[:, n[0]:n[-1] + 1], bias[n[0]:n[-1] + 1], down[n[0]:n[-1] + 1])
                        for n in np.array_split(np.arange(layer.intermediate_size),
                                                min(parts, layer.intermediate_size))]
        groups = (attention, read(layer.attention_output_dense.bias), feed_forward,
                  read(layer.output_dense.bias))
        _WIDTH_GROUPS[layer] = ((parts, layer.compute_dtype), source, groups)
        return groups


# {TransformerLayer: ((parts, dtype), its dense weights as read, width_groups' copies)}. Weak
# keys: a discarded model takes its copies with it.
_WIDTH_GROUPS = weakref.WeakKeyDictionary()


# Where quantization-aware training fake-quantizes inside the attention (see `_fake_quant`).
ATTENTION_QUANTIZE_POINTS = ("query", "key", "value", "scores", "probs", "context")


# {Dense layer: (kernel, bias)} in bfloat16, for `frozen_bfloat16_weights`. Weak keys: a
# discarded model takes its copies with it.
_FROZEN_BFLOAT16 = weakref.WeakKeyDictionary()


def frozen_bfloat16_weights(dense):
    """`dense`'s kernel and bias cast to bfloat16 once: eager tensors a traced graph captures.

    For bfloat16 inference graphs traced with TF_ONEDNN_ASSUME_FROZEN_WEIGHTS
    on (see `TransformerLayer._dense`): under mixed precision every call
    would otherwise cast each float32 kernel anew, which at batch 1 takes
    about as long as the matmuls (ELECTRA-Small, 2-core Xeon with AMX), while
    oneDNN reads the result only on its first call. The values are those of
    that cast. Read when a graph is traced: a trace after the weights changed
    makes new copies, but a graph traced before keeps the old ones (as oneDNN
    keeps the weights of its first call): the variable's contract. Not
    weights of the model: nothing in `weights`, checkpoints or
    `save_pretrained` changes; a SavedModel stores them as constants.

    >>> dense = keras.layers.Dense(2)
    >>> dense.build((None, 3))
    >>> kernel, bias = frozen_bfloat16_weights(dense)
    >>> kernel.dtype.name, kernel.shape.as_list(), frozen_bfloat16_weights(dense)[0] is kernel
    ('bfloat16', [3, 2], True)
    """
    with tf.init_scope():  # eager, also while a graph is being traced
        kernel = tf.cast(tf.convert_to_tensor(dense.kernel), tf.bfloat16)
        bias = tf.cast(tf.convert_to_tensor(dense.bias), tf.bfloat16)
        cached = _FROZEN_BFLOAT16.get(dense)
        if cached is not None and all(
                old.shape == new.shape and bool(tf.reduce_all(tf.equal(
                    tf.bitcast(old, tf.int16), tf.bitcast(new, tf.int16))))
                for old, new in zip(cached, (kernel, bias))):
            return cached  # one copy for every trace while the weights stay the same
        _FROZEN_BFLOAT16[dense] = (kernel, bias)
        return kernel, bias


@keras.utils.register_keras_serializable(package="electra_tf")
class TransformerLayer(keras.layers.Layer, PrunableLayer):
    """A post-LN transformer encoder block with exact GELU.

    It is a tfmot `PrunableLayer`: `prune_low_magnitude` can wrap it and
    prunes its four dense kernels (see `electra_tf.compression.pruning`).

    Args:
        hidden_size: width of the residual stream.
        num_heads: attention heads; must divide `hidden_size` unless `head_size`
            is given.
        intermediate_size: width of the feed-forward layer.
        head_size: width of each head; None means `hidden_size // num_heads`,
            as in every published checkpoint. A model whose heads were removed
            (`electra_tf.compression.structured_pruning`) keeps the width of
            the heads it has left, so its attention is `num_heads * head_size`
            wide, narrower than the residual stream.
        dropout_rate: dropout on attention probabilities and residual branches.
        initializer_range: stddev of the truncated-normal kernel initializer.
        layer_norm_epsilon: 1e-12, as in the published checkpoints.

    Example:
    >>> layer = TransformerLayer(hidden_size=8, num_heads=2, intermediate_size=16)
    >>> x = tf.zeros((1, 3, 8))
    >>> layer(x, attention_bias_from_mask(tf.ones((1, 3)), x.dtype)).shape
    TensorShape([1, 3, 8])
    """

    def __init__(
        self,
        hidden_size,
        num_heads,
        intermediate_size,
        dropout_rate=0.1,
        initializer_range=0.02,
        layer_norm_epsilon=1e-12,
        head_size=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if head_size is None and hidden_size % num_heads:
            raise ValueError(
                f"`hidden_size` must be divisible by `num_heads` (or pass `head_size`); received "
                f"hidden_size={hidden_size}, num_heads={num_heads}."
            )
        if head_size is not None and (not is_integer(head_size) or head_size < 1):
            raise ValueError(f"`head_size` must be a positive integer or None; received "
                             f"{head_size!r}.")
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.dropout_rate = dropout_rate
        self.initializer_range = initializer_range
        self.layer_norm_epsilon = layer_norm_epsilon
        self._head_size_argument = head_size
        self.head_size = head_size or hidden_size // num_heads
        self.attention_size = num_heads * self.head_size  # = hidden_size unless heads were removed

        def dense(units, name):
            return keras.layers.Dense(
                units,
                kernel_initializer=keras.initializers.TruncatedNormal(
                    stddev=initializer_range
                ),
                name=name,
                dtype=self.dtype_policy,
            )

        def layer_norm(name):
            return keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, name=name, dtype=self.dtype_policy
            )

        self.qkv_dense = dense(3 * self.attention_size, "qkv")
        self.attention_output_dense = dense(hidden_size, "attention_output")
        self.attention_layer_norm = layer_norm("attention_layer_norm")
        self.intermediate_dense = dense(intermediate_size, "intermediate")
        self.output_dense = dense(hidden_size, "output")
        self.output_layer_norm = layer_norm("output_layer_norm")
        self.dropout = Dropout(dropout_rate, dtype=self.dtype_policy)

    def build(self, input_shape):
        hidden = (None, None, self.hidden_size)
        build_in_scope(self.qkv_dense, hidden)
        build_in_scope(self.attention_output_dense, (None, None, self.attention_size))
        build_in_scope(self.attention_layer_norm, hidden)
        build_in_scope(self.intermediate_dense, hidden)
        build_in_scope(self.output_dense, (None, None, self.intermediate_size))
        build_in_scope(self.output_layer_norm, hidden)
        super().build(input_shape)

    def call(self, x, attention_bias, training=None, token_index=None, grid_index=None):
        """One block on `x`: padded (B, T, H), or padding-free (1, N, H) with the two indices.

        Args:
            x: (batch, seq, hidden); or (1, N, hidden), only the N real tokens
                of the batch, when `token_index` and `grid_index` are given.
            attention_bias: (batch, 1, 1, seq) from `attention_bias_from_mask`.
            training: dropout on or off.
            token_index: (N,) int32, where each real token sits in the
                flattened (batch·seq) grid.
            grid_index: (batch·seq,) int32, which of the N real tokens each
                grid position holds (any one for padding, which attention
                masks out). `ElectraEncoder(..., remove_padding=True)` makes
                both: the dense layers then run on real tokens only, and
                attention gathers them onto the padded grid and back.
        """
        if (token_index is None) != (grid_index is None):
            raise ValueError(
                "Padding-free mode needs both `token_index` and `grid_index`; received "
                f"token_index={token_index!r}, grid_index={grid_index!r}."
            )
        if self._runs_in_width_parts(training):
            return self._call_in_width_parts(x, attention_bias, _width_parts.value, training,
                                             token_index, grid_index)
        # The dense layers see (rows, features) matrices (see `_dense`); the
        # LayerNorms, and in training the residual adds, stay 3D (the norms were
        # built for rank 3, and XLA parallelises 3D elementwise fusions better);
        # at inference the residual adds are on the rows (`_dropout_add_and_norm`).
        # A = num_heads · head_size, the attention width: H unless heads were removed.
        qkv = self._dense(  # (B·T or N, 3A)
            self.qkv_dense, tf.reshape(x, [-1, self.hidden_size]), training)
        context = self._attend(  # (B·T or N, A)
            qkv, self.num_heads, x, attention_bias, training, token_index, grid_index)

        x = self._dropout_add_and_norm(  # (B, T, H) or (1, N, H)
            self.attention_output_dense, context, x, self.attention_layer_norm, training)

        rows = tf.reshape(x, [-1, self.hidden_size])  # (rows, H)
        hidden = self._intermediate(rows, training)  # (rows, I)
        return self._dropout_add_and_norm(
            self.output_dense, hidden, x, self.output_layer_norm, training)

    def _attend(self, qkv, num_heads, x, attention_bias, training, token_index, grid_index):
        """Attention of `num_heads` heads: their fused q, k, v projection (rows, 3·nh·hs) ->
        their context (rows, nh·hs).

        `rows` are `x`'s: B·T padded, or the N real tokens with the two
        indices (see `call`); a `width_parts` group passes its own heads'
        columns and count.
        """
        if token_index is None:
            batch_size, seq_length = tf.shape(x)[0], tf.shape(x)[1]
        else:  # x holds the real tokens only; the grid is the (B, 1, 1, T) bias'
            batch_size, seq_length = tf.shape(attention_bias)[0], tf.shape(attention_bias)[3]
        if grid_index is not None:
            # Padding picks up some real token's key and value; its attention
            # bias of -10000 gives it probability exactly 0 all the same.
            qkv = tf.gather(qkv, grid_index)  # (B·T, 3·nh·hs)
        # Split, not slice: the gradient of a split is one concat, while each of
        # three slices of a (3, B, nh, T, hs) tensor back-propagates as a zero
        # tensor of that full size plus a sum of the three (~15% of a CPU
        # training step's op time, measured with tf.profiler).
        query, key, value = split_heads(  # each (B, nh, T, hs)
            qkv, (batch_size, seq_length), num_heads, self.head_size)

        # Scale the query rather than the (T, T) scores: fewer multiplies.
        query = query * tf.cast(1.0 / math.sqrt(self.head_size), query.dtype)
        query, key, value = (self._fake_quant(name, tensor, training)
                             for name, tensor in zip(("query", "key", "value"), (query, key, value)))
        scores = tf.matmul(query, key, transpose_b=True)  # (B, nh, T, T)
        # Quantized before the padding bias, so that -10000 does not set the int8 scale.
        scores = self._fake_quant("scores", scores, training)
        probs = self._attention_probs(scores, attention_bias, training)  # (B, nh, T, T)
        context = self._fake_quant("context", tf.matmul(probs, value), training)  # (B, nh, T, hs)
        context = swap_heads_and_positions(context)  # (B, T, nh, hs)
        context = tf.reshape(context, [-1, num_heads * self.head_size])  # (B·T, nh·hs)
        if token_index is not None:
            context = tf.gather(context, token_index)  # (N, nh·hs)
        return context

    def _runs_in_width_parts(self, training):
        """Whether this call traces the block in `width_parts` groups (see there)."""
        return (_width_parts.value > 1 and training is not True
                and tf.inside_function() and not getattr(self, "attention_quantizers", None)
                and all(type(dense) is keras.layers.Dense for dense in (
                    self.qkv_dense, self.attention_output_dense, self.intermediate_dense,
                    self.output_dense)))

    def _call_in_width_parts(self, x, attention_bias, parts, training, token_index=None,
                             grid_index=None):
        """The block at inference in groups of heads and of neurons: `x` (B, T, H) or, padding-free
        with the two indices (see `call`), (1, N, H) -> the same shape.

        Each group's chain of ops depends on no other group's until the sum
        before each LayerNorm (see `width_parts`). The first group's share
        also takes the dense layer's bias and the residual, which TF's oneDNN
        rewrite fuses into its matmul (MatMul + BiasAdd + Add).
        """
        attention, attention_output_bias, feed_forward, output_bias = width_groups(self, parts)
        rows = tf.reshape(x, [-1, self.hidden_size])  # (B·T or N, H)
        shares = []  # each group's (rows, H) share of the attention output
        for qkv_kernel, qkv_bias, output_kernel in attention:
            qkv = tf.nn.bias_add(tf.matmul(rows, qkv_kernel), qkv_bias)  # (rows, 3·heads·hs)
            context = self._attend(  # (rows, heads·hs)
                qkv, output_kernel.shape[0] // self.head_size, x, attention_bias, training,
                token_index, grid_index)
            shares.append(tf.matmul(context, output_kernel))  # (rows, H)
        x = self._sum_shares_and_norm(shares, attention_output_bias, rows, x,
                                      self.attention_layer_norm)
        rows = tf.reshape(x, [-1, self.hidden_size])
        shares = [tf.matmul(gelu(tf.nn.bias_add(tf.matmul(rows, kernel), bias)), down)
                  for kernel, bias, down in feed_forward]  # each (rows, H)
        return self._sum_shares_and_norm(shares, output_bias, rows, x, self.output_layer_norm)

    def _sum_shares_and_norm(self, shares, bias, residual, x, layer_norm):
        """layer_norm(residual + bias + the groups' shares), in `x`'s shape."""
        first = tf.add(tf.nn.bias_add(shares[0], bias), residual, name="residual_add")
        summed = tf.add_n([first, *shares[1:]]) if len(shares) > 1 else first  # (rows, H)
        return apply_layer_norm(layer_norm, tf.reshape(summed, tf.shape(x)), False)

    def _attention_probs(self, scores, attention_bias, training):
        """Dropout(softmax(scores + attention_bias)): (B, nh, T, T) -> (B, nh, T, T).

        Training on a CPU host: bias, softmax and dropout (with this block's
        dropout mask) as one XLA kernel each way (`fused_kernels.softmax_dropout`),
        in place of some ten TensorFlow ops each its own pass over the
        (B, nh, T, T) tensor. Inference, accelerators, quantization-aware
        training (which fake-quantizes the probabilities) and Keras' own
        dropout keep the plain ops.
        """
        keep_and_scale = None
        if (training is True and fuses_kernels()
                and not getattr(self, "attention_quantizers", None)):
            keep_and_scale = self.dropout.training_keep_mask(scores)
        if keep_and_scale is None:
            probs = tf.nn.softmax(scores + attention_bias, axis=-1)
            probs = self._fake_quant("probs", probs, training)
            return self.dropout(probs, training=training)
        keep, scale = keep_and_scale
        return softmax_dropout(scores, attention_bias, keep, scale)

    def _dropout_add_and_norm(self, dense, rows, x, layer_norm, training):
        """`layer_norm(x + dropout(dense(rows)))`, a residual branch: (rows, in) -> `x`'s shape.

        Training on a CPU host: a plain MatMul (in bfloat16 the AMX one, see
        `_dense`), then bias, dropout, add and LayerNorm as one XLA kernel
        each way (`fused_kernels.dropout_add_layer_norm`), with this block's
        own layers' variables and dropout mask. A dense layer that
        quantization-aware training wrapped, or Keras' own dropout, runs as
        itself, and the kernel only adds and normalises. At inference on a CPU
        host the LayerNorm is one oneDNN kernel (`layer_norm.apply_layer_norm`).
        """
        fused = (training is True and fuses_kernels()
                 and type(layer_norm) is keras.layers.LayerNormalization)
        if training is not True:  # (so not `fused`, which is for training)
            # Inference: the residual add on the (rows, H) matrix, where TF's
            # oneDNN rewrite takes it into the dense layer's kernel as a post-op
            # (MatMul + BiasAdd + Add): one pass less over the rows, and in
            # bfloat16 the sum rounded once, from the float32 accumulator.
            # The rewrite fuses only an add whose two shapes it can prove equal,
            # so the residual takes its row count from `rows`' shape.
            residual = tf.reshape(  # (rows, H)
                x, tf.concat([tf.shape(rows)[:1], [self.hidden_size]], axis=0))
            branch = self.dropout(self._dense(dense, rows, training), training=training)
            summed = tf.add(branch, residual, name="residual_add")  # (rows, H)
            return apply_layer_norm(layer_norm, tf.reshape(summed, tf.shape(x)), training)
        if not fused:
            branch = tf.reshape(self._dense(dense, rows, training), tf.shape(x))
            return apply_layer_norm(layer_norm, x + self.dropout(branch, training=training),
                                    training)
        keep_and_scale = (self.dropout.training_keep_mask(x)
                          if type(dense) is keras.layers.Dense else None)
        if keep_and_scale is not None:
            branch, bias = tf.matmul(rows, tf.cast(dense.kernel, rows.dtype)), dense.bias
            keep, scale = keep_and_scale
        else:
            branch = self.dropout(self._dense(dense, rows, training), training=True)
            bias, keep, scale = tf.zeros([]), True, 1.0
        return dropout_add_layer_norm(
            x, tf.reshape(branch, tf.shape(x)), bias, keep, scale,
            layer_norm.gamma, layer_norm.beta, layer_norm.epsilon)

    def _intermediate(self, rows, training):
        """GELU(rows · W + b) for the intermediate dense layer: (rows, H) -> (rows, I).

        Inference: the layer itself (or, with frozen weights in bfloat16, its
        weights' bfloat16 copies, see `_frozen_dense`) and `gelu`, which
        TensorFlow fuses into one MatMul + BiasAdd + GELU kernel in every
        dtype and TFLite converts to its GELU op. Training on a CPU host: a
        plain MatMul (in bfloat16 the AMX one, see `_dense`) and
        `fused_kernels.bias_gelu`, whose backward also gives the bias
        gradient. Otherwise (accelerators, or a layer that quantization-aware
        training has wrapped): the layer and `training_gelu`.
        """
        layer = self.intermediate_dense
        if training is not True:
            hidden = self._frozen_dense(layer, rows, training)
            return gelu(layer(rows) if hidden is None else hidden)
        if fuses_kernels() and type(layer) is keras.layers.Dense:
            kernel = tf.cast(layer.kernel, rows.dtype)  # (H, I)
            return bias_gelu(tf.matmul(rows, kernel), layer.bias)
        return training_gelu(layer(rows))

    def _dense(self, layer, rows, training):
        """`layer` on a (rows, features) matrix: (rows, units).

        On CPU, TF's oneDNN rewrite fuses a 2D MatMul + BiasAdd (+ GELU) into
        one kernel: ~8% faster in float32. In bfloat16 that fused kernel is
        oneDNN's inner product, which does not use the AMX/AVX512_BF16 matmul
        units (`ONEDNN_VERBOSE=1` prints `inner_product, x64:gemm:jit`), while a
        plain MatMul does (`matmul, brg_matmul:..._amx`). So in bfloat16 the
        rows go in as (rows, 1, features): Keras' Dense then runs Tensordot
        (reshape, MatMul, reshape) and a separate BiasAdd, which the rewrite
        leaves alone. Same weights, same values.

        At inference the intermediate layer is the exception and stays fused:
        there the fusion also takes in the GELU, which TensorFlow's CPU kernels
        run slowly in bfloat16 on their own. The gain is small on an idle
        machine (ELECTRA-Small encoder, bfloat16, A/B on a Sapphire
        Rapids-class 2-core VM: inference 1.07×, forward + backward 1.01×).
        Training graphs on a CPU host do not come here for the intermediate
        layer or the two residual branches: they run a plain MatMul and leave
        bias, GELU, dropout, add and LayerNorm to `fused_kernels`.

        Inference with TF_ONEDNN_ASSUME_FROZEN_WEIGHTS on
        (`onednn_assumes_frozen_weights`, read while tracing): every layer
        takes the fused kernel, which then reorders its weights once into a
        `brgemm` inner product that does use AMX (`inner_product,
        brgemm:avx10_1_512_amx`), and takes in the bias and, for the two
        residual branches, the residual add (ELECTRA-Small encoder, bfloat16,
        32 × 128 on the 2-core Xeon with AMX: see the README's Intel table).
        In a traced graph a plain Dense layer then also reads bfloat16 copies
        of its weights made once (`_frozen_dense`) instead of casting the
        float32 variables on every call.
        """
        frozen = self._frozen_dense(layer, rows, training)
        if frozen is not None:
            return frozen
        if self.compute_dtype != "bfloat16" or (training is not True
                                                and onednn_assumes_frozen_weights()):
            return layer(rows)
        # expand_dims, not rows[:, tf.newaxis]: a slice's gradient is a StridedSliceGrad
        # that writes the whole (rows, features) tensor again (~3% of a bfloat16
        # pretraining step's op time); expand_dims' gradient is a free reshape.
        return tf.squeeze(layer(tf.expand_dims(rows, 1)), axis=1)  # (rows, units)

    def _frozen_dense(self, layer, rows, training):
        """`layer(rows)` on bfloat16 weights cast once (`frozen_bfloat16_weights`), or None.

        Only where oneDNN is told the weights are frozen: a bfloat16 inference
        graph traced on a CPU host with TF_ONEDNN_ASSUME_FROZEN_WEIGHTS on, for
        a plain Keras Dense layer (not one that pruning or quantization-aware
        training wrapped). Eager calls and everything else return None.
        """
        if (training is True or self.compute_dtype != "bfloat16" or tf.executing_eagerly()
                or type(layer) is not keras.layers.Dense or layer.bias is None
                or layer.activation is not keras.activations.linear
                or has_accelerator() or not onednn_assumes_frozen_weights()):
            return None
        kernel, bias = frozen_bfloat16_weights(layer)
        return tf.nn.bias_add(tf.matmul(tf.cast(rows, tf.bfloat16), kernel), bias)  # (rows, units)

    def _fake_quant(self, name, x, training):
        """`x`, or `x` through the int8 fake quantizer that QAT put at `name`.

        Quantization-aware training (`electra_tf.compression.quantization`)
        sets `attention_quantizers`, one per point in `ATTENTION_QUANTIZE_POINTS`:
        the inputs and outputs of the two attention matmuls. Otherwise a no-op.
        """
        quantizers = getattr(self, "attention_quantizers", None)
        return x if not quantizers else quantizers[name](x, training=training)

    def get_prunable_weights(self):
        """The dense kernels, for tfmot's pruning wrapper (biases and norms stay dense)."""
        return [
            self.qkv_dense.kernel,
            self.attention_output_dense.kernel,
            self.intermediate_dense.kernel,
            self.output_dense.kernel,
        ]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_size": self.hidden_size,
                "num_heads": self.num_heads,
                "intermediate_size": self.intermediate_size,
                "dropout_rate": self.dropout_rate,
                "initializer_range": self.initializer_range,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "head_size": self._head_size_argument,
            }
        )
        return config
