"""The encoder's element-wise training work, and the MLM loss, as single XLA kernels on CPU hosts.

On CPU, TensorFlow's executor runs each element-wise op as its own pass over
memory, and oneDNN hands each one to every thread: the GELU of a training
step is about ten such passes forward and back, a LayerNorm about twenty.
Here the two jobs of an encoder block that are all element-wise, the
feed-forward bias + GELU and each residual branch's bias + dropout + add +
LayerNorm, are each one small `tf.function(jit_compile=True)` forward and
one backward, with the gradient written out (the backward recomputes the
cheap element-wise inputs rather than keeping more tensors from the
forward). XLA fuses each into one or two loops. The matmuls
stay with TensorFlow's oneDNN kernels, which XLA's CPU backend does not
match (a whole ELECTRA-Small step under XLA ran 1.3x slower in float32).

Forward and backward over ELECTRA-Small's (2048, 1024) feed-forward
activation, 2 cores: bias + GELU 4.2-5.2 ms against 8.6-9.4 ms (float32),
4.4-4.7 against 9.5-11 ms (bfloat16); LayerNorm alone (before bias and
dropout were folded in) over (16, 128, 256) 5.3-6.0 against 7.2 ms. Both compute in float32 whatever the input dtype
and return the input's dtype, as tf-keras' LayerNormalization does.

The pretraining losses' softmax cross-entropy over the vocabulary
(`sparse_softmax_cross_entropy`) is a third pair: TensorFlow's kernel for it
runs its passes over the (batch, predictions, vocabulary) logits one after
another, XLA's forward is one max and one sum pass, and its backward one.

The encoder's kernels are used in training graphs only (`TransformerLayer(..., training=True)`)
and only on hosts without a GPU or TPU: inference graphs keep the ops the
SavedModel, TF Serving and TFLite paths expect, and accelerators fuse
element-wise work on their own. XLA compiles each kernel once per input
shape, about 0.15 s: a handful of times in a run with fixed shapes, once per
distinct length with dynamic padding. `unfused_kernels()` turns them off.
"""

import functools

import tensorflow as tf

from electra_tf.utils.thread_flag import ThreadFlag
from electra_tf.utils.xla import compiled_by_xla

_SQRT_HALF = 0.7071067811865476  # 1/√2: Φ(x) = (1 + erf(x/√2)) / 2
_INV_SQRT_2PI = 0.3989422804014327  # φ(x) = exp(-x²/2) / √(2π)
_unfused = ThreadFlag()


@functools.lru_cache(maxsize=None)
def has_accelerator():
    """Whether TensorFlow sees a GPU or TPU (fixed once its runtime has started)."""
    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def unfused_kernels():
    """Within this block, training graphs trace plain TensorFlow ops instead of the XLA kernels.

    For A/B timing, and for runtimes without XLA's CPU JIT.

    >>> with unfused_kernels():
    ...     fuses_kernels()
    False
    """
    return _unfused.on()


def fuses_kernels():
    """Whether `bias_gelu` and `dropout_add_layer_norm` trace XLA kernels here and now."""
    return not _unfused and not has_accelerator()


# === bfloat16 <-> float32 inside the kernels ===

def _cast(x, dtype):
    """`tf.cast(x, dtype)`; inside an XLA kernel, bfloat16 <-> float32 as integer bit operations.

    The kernels read bfloat16 activations and compute in float32. XLA's CPU code
    for those two converts is slower than the same conversion written with
    integer ops (`widen_bfloat16`, `round_to_bfloat16`), which it vectorises:
    with them our bfloat16 ELECTRA-Small pretraining step went from 1.37x to
    1.46x our float32 one on 2 cores of a Zen 5 EPYC (`benchmarks/pretrain_throughput.py`;
    README). The values are the same: round to nearest even, NaN stays NaN.
    """
    x = tf.convert_to_tensor(x)
    dtype = tf.as_dtype(dtype)
    if compiled_by_xla():
        if x.dtype == tf.bfloat16 and dtype == tf.float32:
            return widen_bfloat16(x)
        if x.dtype == tf.float32 and dtype == tf.bfloat16:
            return round_to_bfloat16(x)
    return tf.cast(x, dtype)


def widen_bfloat16(x):
    """bfloat16 -> float32, exactly: a bfloat16 is the top 16 bits of a float32.

    >>> widen_bfloat16(tf.constant([1.5, -2.0, float("inf")], tf.bfloat16)).numpy().tolist()
    [1.5, -2.0, inf]
    """
    bits = tf.cast(tf.bitcast(x, tf.uint16), tf.uint32)  # (...,)
    return tf.bitcast(tf.bitwise.left_shift(bits, tf.constant(16, tf.uint32)), tf.float32)


def round_to_bfloat16(y):
    """float32 -> bfloat16, rounded to nearest even as `tf.cast` rounds; NaN stays NaN.

    Adding 0x7FFF, plus 1 when the kept part is odd, to the float32's bits carries
    into the kept 16 bits exactly when the dropped 16 are above half, or at half
    with an odd kept part; a carry out of the largest finite float gives infinity.

    >>> x = tf.constant([1.0 + 2**-8, 1.0 + 3 * 2**-8, 3.4e38, float("nan")])
    >>> round_to_bfloat16(x).numpy().tolist()  # ties to even: 1.00390625 -> 1, 1.01171875 -> 1.015625
    [1.0, 1.015625, inf, nan]
    """
    bits = tf.bitcast(y, tf.uint32)  # (...,)
    sixteen = tf.constant(16, tf.uint32)
    odd = tf.bitwise.bitwise_and(tf.bitwise.right_shift(bits, sixteen), tf.constant(1, tf.uint32))
    rounded = tf.cast(tf.bitwise.right_shift(bits + tf.constant(0x7FFF, tf.uint32) + odd, sixteen),
                      tf.uint16)  # (...,) the top 16 bits, rounded
    # A NaN's payload could carry into the exponent's bits and read as infinity: a quiet NaN
    # instead. (Selected after the narrowing: XLA then fuses the convert with the select.)
    rounded = tf.where(tf.math.is_nan(y), tf.constant(0x7FC0, tf.uint16), rounded)
    return tf.bitcast(rounded, tf.bfloat16)


# === GELU(x + bias) ===

def _gelu_cdf(h):
    return 0.5 + 0.5 * tf.math.erf(h * _SQRT_HALF)  # Φ(h)


def _bias_gelu_forward(x, bias):
    h = _cast(x, tf.float32) + _cast(bias, tf.float32)  # (rows, I)
    return _cast(h * _gelu_cdf(h), x.dtype)


def _bias_gelu_backward(x, bias, dy):
    h = _cast(x, tf.float32) + _cast(bias, tf.float32)  # (rows, I)
    pdf = _INV_SQRT_2PI * tf.exp(-0.5 * tf.square(h))  # φ(h)
    dh = _cast(dy, tf.float32) * (_gelu_cdf(h) + h * pdf)  # d(h·Φ(h))/dh = Φ(h) + h·φ(h)
    dbias = tf.reduce_sum(dh, axis=list(range(dh.shape.rank - 1)))  # (I,)
    return _cast(dh, x.dtype), _cast(dbias, bias.dtype)


_xla_bias_gelu_forward = tf.function(_bias_gelu_forward, jit_compile=True, autograph=False)
_xla_bias_gelu_backward = tf.function(_bias_gelu_backward, jit_compile=True, autograph=False)


def bias_gelu(x, bias):
    """Exact (erf) GELU of `x + bias`, computed in float32, in `x`'s dtype.

    The feed-forward activation of a training graph: `x` is the intermediate
    dense layer's matmul, `bias` its bias, so the bias gradient comes out of
    the same pass as the activation's instead of a separate column sum.

    Args:
        x: (..., I) float32, bfloat16 or float16.
        bias: (I,).

    Returns:
        (..., I) in `x`'s dtype; gradients for `x` and `bias`.

    >>> x = tf.constant([[-3.0, -0.5, 0.0, 0.5, 3.0]])
    >>> y = bias_gelu(x, tf.zeros([5]))
    >>> bool(tf.reduce_all(tf.abs(y - tf.nn.gelu(x, approximate=False)) < 1e-6))
    True
    """
    fused = fuses_kernels()
    forward = _xla_bias_gelu_forward if fused else _bias_gelu_forward
    backward = _xla_bias_gelu_backward if fused else _bias_gelu_backward

    @tf.custom_gradient
    def call(x, bias):
        return forward(x, bias), lambda dy: backward(x, bias, dy)

    return call(x, tf.convert_to_tensor(bias))


# === LayerNorm(x + Dropout(branch + bias)) ===

def _dropped_branch(branch, bias, keep, scale):
    branch = _cast(branch, tf.float32) + _cast(bias, tf.float32)
    return tf.where(keep, branch * scale, 0.0)


def _normalized(total, mean, inverse_std):
    return (total - mean) * inverse_std  # x̂


def _dropout_add_layer_norm_forward(x, branch, bias, keep, scale, gamma, beta, epsilon):
    total = _cast(x, tf.float32) + _dropped_branch(branch, bias, keep, scale)  # (..., H)
    mean = tf.reduce_mean(total, axis=-1, keepdims=True)  # (..., 1)
    variance = tf.reduce_mean(tf.square(total - mean), axis=-1, keepdims=True)  # (..., 1)
    inverse_std = tf.math.rsqrt(variance + epsilon)  # (..., 1)
    y = _normalized(total, mean, inverse_std) * _cast(gamma, tf.float32) + _cast(
        beta, tf.float32)
    return _cast(y, x.dtype), mean, inverse_std


def _dropout_add_layer_norm_backward(x, branch, bias, keep, scale, gamma, mean, inverse_std, dy):
    total = _cast(x, tf.float32) + _dropped_branch(branch, bias, keep, scale)  # (..., H)
    normalized = _normalized(total, mean, inverse_std)
    dy = _cast(dy, tf.float32)
    rows = list(range(dy.shape.rank - 1))
    dgamma = tf.reduce_sum(dy * normalized, axis=rows)  # (H,)
    dbeta = tf.reduce_sum(dy, axis=rows)  # (H,)
    dnormalized = dy * _cast(gamma, tf.float32)
    # d/dtotal of (total - mean)·inverse_std, through the mean and the variance:
    # inverse_std · (dx̂ - mean(dx̂) - x̂ · mean(dx̂ · x̂)).
    dtotal = inverse_std * (
        dnormalized
        - tf.reduce_mean(dnormalized, axis=-1, keepdims=True)
        - normalized * tf.reduce_mean(dnormalized * normalized, axis=-1, keepdims=True)
    )
    dbranch = tf.where(keep, dtotal * scale, 0.0)  # (..., H)
    # The bias' gradient: dbranch summed over every axis it was broadcast along.
    dbias = tf.reduce_sum(dbranch, axis=list(range(dbranch.shape.rank - bias.shape.rank)))
    return (_cast(dtotal, x.dtype), _cast(dbranch, branch.dtype), _cast(dbias, bias.dtype),
            _cast(dgamma, gamma.dtype), _cast(dbeta, gamma.dtype))


_xla_dropout_add_layer_norm_forward = tf.function(
    _dropout_add_layer_norm_forward, jit_compile=True, autograph=False)
_xla_dropout_add_layer_norm_backward = tf.function(
    _dropout_add_layer_norm_backward, jit_compile=True, autograph=False)


def dropout_add_layer_norm(x, branch, bias, keep, scale, gamma, beta, epsilon):
    """LayerNorm of `x + dropout(branch + bias)` over the last axis, float32 math, `x`'s dtype.

    A post-LN encoder block's residual step: `branch` is the block's dense
    matmul, `bias` its bias, `keep` and `scale` the dropout mask (see
    `Dropout.training_keep_mask`), `x` the residual stream. The same
    function as tf-keras' `LayerNormalization(epsilon=epsilon)` on
    `x + Dropout(Dense(...))`, with the adds in float32 (the normalisation
    is in float32 under mixed precision either way).

    Args:
        x: (..., H), the residual stream.
        branch: like `x`.
        bias: (H,), or a scalar 0 for a branch that has its bias already.
        keep: bool, like `x` (or a scalar True: no dropout).
        scale: what kept units are multiplied by (1 / P(keep)).
        gamma: (H,) float32 scale.
        beta: (H,) float32 offset.
        epsilon: added to the variance (1e-12 in ELECTRA).

    Returns:
        (..., H) in `x`'s dtype; gradients for `x`, `branch`, `bias`, `gamma` and `beta`.

    >>> x = tf.constant([[1.0, 2.0, 3.0, 4.0]])
    >>> y = dropout_add_layer_norm(x, tf.zeros_like(x), tf.zeros([4]), tf.constant(True), 1.0,
    ...                            tf.ones([4]), tf.zeros([4]), 1e-12)
    >>> [round(v, 3) for v in y.numpy()[0].tolist()]
    [-1.342, -0.447, 0.447, 1.342]
    """
    fused = fuses_kernels()
    forward = _xla_dropout_add_layer_norm_forward if fused else _dropout_add_layer_norm_forward
    backward = _xla_dropout_add_layer_norm_backward if fused else _dropout_add_layer_norm_backward
    keep = tf.convert_to_tensor(keep, tf.bool)
    scale = tf.constant(scale, tf.float32)
    epsilon = tf.constant(epsilon, tf.float32)

    @tf.custom_gradient
    def call(x, branch, bias, gamma, beta):
        y, mean, inverse_std = forward(x, branch, bias, keep, scale, gamma, beta, epsilon)

        def gradient(dy):
            return backward(x, branch, bias, keep, scale, gamma, mean, inverse_std, dy)

        return y, gradient

    return call(x, branch, tf.convert_to_tensor(bias), tf.convert_to_tensor(gamma),
                tf.convert_to_tensor(beta))


# === Dropout(softmax(scores + attention bias)) ===

def _softmax_dropout_forward(scores, bias, keep, scale):
    logits = _cast(scores, tf.float32) + _cast(bias, tf.float32)  # (B, nh, T, T)
    probs = tf.nn.softmax(logits, axis=-1)
    dropped = tf.where(keep, probs * scale, 0.0)
    return _cast(dropped, scores.dtype), _cast(probs, scores.dtype)


def _softmax_dropout_backward(probs, keep, scale, dy):
    dprobs = tf.where(keep, _cast(dy, tf.float32) * scale, 0.0)  # (B, nh, T, T)
    probs = _cast(probs, tf.float32)
    # Softmax's Jacobian-vector product: p · (dp - Σ_j dp_j p_j).
    dlogits = probs * (dprobs - tf.reduce_sum(dprobs * probs, axis=-1, keepdims=True))
    return _cast(dlogits, dy.dtype)


_xla_softmax_dropout_forward = tf.function(
    _softmax_dropout_forward, jit_compile=True, autograph=False)
_xla_softmax_dropout_backward = tf.function(
    _softmax_dropout_backward, jit_compile=True, autograph=False)


def softmax_dropout(scores, bias, keep, scale):
    """Dropout of softmax(`scores` + `bias`) over the last axis: attention probabilities, trained.

    The attention of a training step between its two matmuls: the padding
    bias, the softmax and dropout, computed in float32 and returned in
    `scores`' dtype, one XLA kernel forward and one backward (the gradient of
    `scores` only: the bias comes from the padding mask and has none).

    Args:
        scores: (B, nh, T, T) query-key products.
        bias: broadcastable to `scores`, e.g. (B, 1, 1, T) from
            `attention_bias_from_mask` (0 or -10000).
        keep: bool like `scores` (or a scalar True: no dropout), see
            `Dropout.training_keep_mask`.
        scale: what kept units are multiplied by (1 / P(keep)).

    Returns:
        (B, nh, T, T) in `scores`' dtype; a gradient for `scores`.

    >>> probs = softmax_dropout(tf.zeros([1, 1, 1, 4]), tf.constant([0.0, 0.0, 0.0, -10000.0]),
    ...                         tf.constant(True), 1.0)
    >>> [round(v, 4) for v in probs.numpy().ravel().tolist()]
    [0.3333, 0.3333, 0.3333, 0.0]
    """
    fused = fuses_kernels()
    forward = _xla_softmax_dropout_forward if fused else _softmax_dropout_forward
    backward = _xla_softmax_dropout_backward if fused else _softmax_dropout_backward
    bias = tf.convert_to_tensor(bias)
    keep = tf.convert_to_tensor(keep, tf.bool)
    scale = tf.constant(scale, tf.float32)

    @tf.custom_gradient
    def call(scores):
        dropped, probs = forward(scores, bias, keep, scale)
        return dropped, lambda dy: backward(probs, keep, scale, dy)

    return call(tf.convert_to_tensor(scores))


# === softmax cross-entropy over the vocabulary ===

def _cross_entropy_forward(logits, labels):
    logits = _cast(logits, tf.float32)  # (..., V)
    top = tf.reduce_max(logits, axis=-1, keepdims=True)  # (..., 1)
    log_total = top + tf.math.log(
        tf.reduce_sum(tf.exp(logits - top), axis=-1, keepdims=True))  # (..., 1) logsumexp
    picked = tf.gather(logits, labels[..., None], batch_dims=labels.shape.rank)  # (..., 1)
    return (log_total - picked)[..., 0], log_total  # (...,) NLL


def _cross_entropy_backward(logits, labels, log_total, dnll):
    probabilities = tf.exp(_cast(logits, tf.float32) - log_total)  # (..., V) softmax
    targets = tf.one_hot(labels, tf.shape(logits)[-1], dtype=tf.float32)  # (..., V)
    return _cast((probabilities - targets) * dnll[..., None], logits.dtype)


_xla_cross_entropy_forward = tf.function(
    _cross_entropy_forward, jit_compile=True, autograph=False)
_xla_cross_entropy_backward = tf.function(
    _cross_entropy_backward, jit_compile=True, autograph=False)


def sparse_softmax_cross_entropy(logits, labels):
    """-log softmax(logits)[label] per position, in float32: the MLM loss over a vocabulary.

    The same values and gradient as `tf.nn.sparse_softmax_cross_entropy_with_logits`
    on float32 logits. On CPU hosts the forward (max, log-sum-exp, the label's
    logit) and the backward (softmax minus the one-hot label, times the incoming
    gradient) are each one XLA kernel: over ELECTRA-Small's (16, 19, 30522)
    generator logits, forward and backward took 21 ms against TensorFlow's
    kernel's 47 ms in float32 (18 against 28 ms from bfloat16 logits), on 2 cores
    of an Intel Xeon. Labels must lie in [0, vocab_size): in the fused form an
    id outside it is not reported (the embedding lookup of the same ids is).

    Args:
        logits: (..., V) float32, bfloat16 or float16.
        labels: (...) int32 or int64 ids in [0, V).

    Returns:
        (...) float32 negative log-likelihoods; the gradient for `logits` comes
        back in their dtype.

    >>> nll = sparse_softmax_cross_entropy(tf.zeros([1, 2, 4]), tf.constant([[1, 3]]))
    >>> [round(v, 4) for v in nll.numpy()[0].tolist()]  # log(4): uniform over 4 tokens
    [1.3863, 1.3863]
    """
    labels = tf.cast(labels, tf.int32)
    if not fuses_kernels():
        return tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=tf.cast(logits, tf.float32))

    @tf.custom_gradient
    def call(logits):
        nll, log_total = _xla_cross_entropy_forward(logits, labels)

        def gradient(dnll):
            return _xla_cross_entropy_backward(logits, labels, log_total, dnll)

        return nll, gradient

    return call(tf.convert_to_tensor(logits))
