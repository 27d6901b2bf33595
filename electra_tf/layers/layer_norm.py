"""LayerNorm at inference on a CPU host: a graph TensorFlow runs as one oneDNN kernel.

Keras' `LayerNormalization` with BERT's epsilon of 1e-12 cannot use its
fused form (`fused_batch_norm` raises any epsilon below 1.001e-5), so it
traces ten small ops: mean, squared difference, mean, add, rsqrt, four
multiplies and adds. On a CPU, five of them read and write the whole
activation, and under `mixed_bfloat16` two casts to and from float32 come on
top. `layer_norm` writes the same function in the form TensorFlow's grappler
remapper recognises and replaces with `_MklLayerNorm`, one pass over the
activation in any float dtype. That kernel has a fixed cost per call, so
it pays on large activations only: `ElectraEncoder` chooses once per
forward, at run time, between its embeddings and layer stack traced with it
(inside `one_kernel_layer_norms()`) and traced with Keras' ops.

ELECTRA-Small encoder on a 2-core AVX-512 EPYC, A/B against Keras' ops in
`benchmarks/encoder_inference.py`, medians of 3 runs at ae6d9b4
(`encoder_inference*_amd5_run*`), float32 / bfloat16: batch 32 × 128
1.03× / 1.14× as fast, batch 32 reviews 1.07× / 1.11×, one review at a time
0.99× / 1.04×. With the kernel on every call, one review at a time was
0.84-0.88× / 0.75-0.79× (`*_amd3_*`); with a choice per LayerNorm (25
`tf.cond`s a forward, ~50 µs each) 0.92-1.02× / 0.84-0.93× (`*_amd4_*`).
"""

import tensorflow as tf
import tf_keras as keras

from electra_tf.layers.fused_kernels import has_accelerator
from electra_tf.utils.onednn import onednn_enabled
from electra_tf.utils.thread_flag import ThreadFlag

_plain_layer_norms = ThreadFlag()
_one_kernel_layer_norms = ThreadFlag()


def plain_layer_norms():
    """Within this block, the encoder's LayerNorms trace as Keras' own `LayerNormalization`.

    For graphs that leave TensorFlow's CPU runtime, and for A/B timing: the
    TFLite converter (which has no training-mode batch norm) traces the model
    inside it.

    >>> layer = keras.layers.LayerNormalization(epsilon=1e-12)
    >>> with plain_layer_norms():
    ...     normalizes_in_one_kernel(layer, tf.TensorSpec([None, 8, 4]), training=False)
    False
    """
    return _plain_layer_norms.on()


def normalizes_in_one_kernel(layer_norm, x, training):
    """Whether `layer_norm` on `x` may go through `layer_norm` below, here and now.

    Inference (`training` not True) on a CPU-only host, for Keras' own
    `LayerNormalization` (not one that quantization-aware training wrapped),
    built (the first call of a layer builds it, through Keras), with
    TensorFlow's oneDNN rewrites on (the x86 default; without them no remapper
    fuses the graph), outside `plain_layer_norms()`, when `x`'s row count
    (every axis but the last) is unknown while tracing: a SavedModel's or
    `tf.function`'s batch axis of None. `choose_layer_norms` then decides at
    run time. With every size known, grappler folds the graph's `Fill`s
    into constants before the remapper looks, the pattern no longer matches,
    and the unfused batch norm is ~10% slower than Keras' ops; Keras' layer
    runs then, and in eager mode.

    >>> layer = keras.layers.LayerNormalization(epsilon=1e-12)
    >>> layer.build((None, None, 4))
    >>> normalizes_in_one_kernel(layer, tf.TensorSpec([None, 8, 4]), training=False)
    True
    >>> normalizes_in_one_kernel(layer, tf.TensorSpec([None, 8, 4]), training=True)
    False
    >>> normalizes_in_one_kernel(layer, tf.zeros([2, 8, 4]), training=False)  # sizes known
    False
    """
    return (training is not True and type(layer_norm) is keras.layers.LayerNormalization
            and layer_norm.built and list(layer_norm.axis) in ([-1], [len(x.shape) - 1])
            and not x.shape[:-1].is_fully_defined()
            and not _plain_layer_norms and not has_accelerator() and onednn_enabled())


def layer_norm(x, gamma, beta, epsilon):
    """LayerNorm of `x` over its last axis: (x - mean) / √(variance + epsilon) · gamma + beta.

    The rows of `x` (..., H) are viewed as the channels of a (1, rows, H, 1)
    NCHW image, normalised by `FusedBatchNormV3` in training mode (each
    channel by its own mean and variance, scale 1, offset 0), then scaled by
    `gamma` and shifted by `beta`: Keras' fused LayerNorm graph, with
    `epsilon` passed through as it is. TensorFlow's oneDNN remapper turns
    this graph into one `_MklLayerNorm` kernel when the row count is not a
    constant (see `normalizes_in_one_kernel`). Statistics in float32 for
    float32 and bfloat16 inputs; `gamma` and `beta` (float32 variables under
    mixed precision) are cast to `x`'s dtype. Differentiable: the batch
    norm's training-mode gradient is the LayerNorm's.

    ELECTRA-Small encoder, batch 32 × 128, on a 2-core AVX-512 EPYC: 25 of
    these took 0.7 ms each against 3.5 ms for Keras' ops. On a few rows
    Keras' ops are faster (see `ONE_KERNEL_MIN_ROWS`).

    >>> x = tf.constant([[1.0, 2.0, 3.0, 6.0]])
    >>> y = layer_norm(x, tf.ones([4]), tf.zeros([4]), 1e-12)
    >>> [round(float(v), 4) for v in y[0]]
    [-1.069, -0.5345, 0.0, 1.6036]
    """
    shape = tf.shape(x)
    rows = tf.reduce_prod(shape[:-1])
    images = tf.reshape(x, tf.stack([1, rows, shape[-1], 1]))  # (1, rows, H, 1), NCHW
    channels = tf.reshape(rows, [1])
    normalized, *_ = tf.raw_ops.FusedBatchNormV3(
        x=images,
        scale=tf.fill(channels, tf.constant(1.0, tf.float32)),
        offset=tf.fill(channels, tf.constant(0.0, tf.float32)),
        mean=tf.constant([], tf.float32),
        variance=tf.constant([], tf.float32),
        epsilon=epsilon,
        data_format="NCHW",
        is_training=True,
    )
    normalized = tf.reshape(normalized, shape)  # (..., H)
    return normalized * tf.cast(gamma, x.dtype) + tf.cast(beta, x.dtype)


# From this many rows up, `layer_norm`'s kernel beats Keras' ops. `_MklLayerNorm`
# builds its oneDNN primitive on every call (~150 µs on a 2-core EPYC), which Keras'
# ten small ops undercut on a few hundred rows: (n, 256) rows, float32 / bfloat16,
# one kernel against Keras' ops: n = 128: 615 / 892 µs against 350 / 407 µs; n = 512:
# 598 / 803 against 934 / 1,071 µs; n = 4096: 931 / 834 against 2,653 / 2,908 µs.
ONE_KERNEL_MIN_ROWS = 512


def one_kernel_layer_norms():
    """Within this block, `apply_layer_norm` traces `layer_norm` where it may (see below).

    The encoder traces its embeddings and layer stack inside it for the branch
    it runs on at least `ONE_KERNEL_MIN_ROWS` rows.

    >>> norm = keras.layers.LayerNormalization(epsilon=1e-12)
    >>> norm.build((None, None, 4))
    >>> def traced_ops():
    ...     function = tf.function(lambda x: apply_layer_norm(norm, x, training=False))
    ...     graph = function.get_concrete_function(tf.TensorSpec([None, 2, 4])).graph
    ...     return {op.type for op in graph.get_operations()}
    >>> with one_kernel_layer_norms():
    ...     inside = traced_ops()
    >>> "FusedBatchNormV3" in inside, "FusedBatchNormV3" in traced_ops()
    (True, False)
    """
    return _one_kernel_layer_norms.on()


def apply_layer_norm(layer_norm_layer, x, training):
    """`layer_norm_layer(x)`: through `layer_norm` inside `one_kernel_layer_norms()`
    where `normalizes_in_one_kernel` allows it, Keras' layer otherwise.

    >>> norm = keras.layers.LayerNormalization(epsilon=1e-12)
    >>> norm.build((None, None, 4))
    >>> x = tf.constant([[[1.0, 2.0, 3.0, 6.0]]])
    >>> bool(tf.reduce_all(tf.abs(apply_layer_norm(norm, x, training=False) - norm(x)) < 1e-6))
    True
    """
    if not (_one_kernel_layer_norms and normalizes_in_one_kernel(layer_norm_layer, x, training)):
        return layer_norm_layer(x)
    return layer_norm(x, layer_norm_layer.gamma, layer_norm_layer.beta, layer_norm_layer.epsilon)


def choose_layer_norms(run, x, layer_norm_layer, training):
    """`run()` traced twice, with and without the one-kernel LayerNorm, chosen at run time.

    `run` traces the layers that normalise activations with the rows of `x`
    (every axis but the last, which is not read) with `layer_norm_layer`-like
    norms. Where `normalizes_in_one_kernel` allows it, the graph runs the
    branch traced inside `one_kernel_layer_norms()` on at least
    `ONE_KERNEL_MIN_ROWS` rows (a batch of 32 reviews) and the one with
    Keras' ops on fewer (one review): one `tf.cond` per forward. Elsewhere
    just `run()`.

    >>> norm = keras.layers.LayerNormalization(epsilon=1e-12)
    >>> norm.build((None, None, 4))
    >>> x = tf.random.normal([1, 3, 4])
    >>> y = choose_layer_norms(lambda: apply_layer_norm(norm, x, False), x, norm, False)
    >>> bool(tf.reduce_all(tf.abs(y - norm(x)) < 1e-5))
    True
    """
    if not normalizes_in_one_kernel(layer_norm_layer, x, training):
        return run()

    def one_kernel():
        with one_kernel_layer_norms():
            return run()

    rows = tf.reduce_prod(tf.shape(x)[:-1])
    return tf.cond(rows >= ONE_KERNEL_MIN_ROWS, one_kernel, run)
