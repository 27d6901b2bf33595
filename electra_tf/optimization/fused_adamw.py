"""FusedAdamW: keras' AdamW whose Adam step is one kernel per variable.

keras' `AdamW.update_step` builds the step from about ten element-wise ops
per variable (two `assign_add`s, a square, a square root, a division, ...),
and each one reads and writes the whole variable-sized tensor. On a CPU
those passes over memory cost more than the arithmetic: in an ELECTRA-Small
pretraining step they took 143-179 ms of op time
(`benchmarks/results/profile_pretrain_step_*`). `ResourceApplyAdam` does the
same update in one pass over (variable, m, v, gradient):

    alpha = lr · sqrt(1 - β₂ᵗ) / (1 - β₁ᵗ)
    m    += (g - m) · (1 - β₁)
    v    += (g² - v) · (1 - β₂)
    var  -= alpha · m / (sqrt(v) + ε)

which is keras' formula term for term, so the slots (`m`, `v`) and the
checkpoints stay keras' own. A sparse gradient (an embedding lookup's
`IndexedSlices`) is summed into a dense one first: keras' sparse path also
decays every row of `m` and `v` and moves every row of the variable, so the
result is the same, in one pass instead of five.

Where the fused kernel does not apply (AMSGrad), keras' own step runs.
"""

import tensorflow as tf
import tf_keras as keras


def fused_adam_step(variable, m, v, gradient, learning_rate, beta_1, beta_2, epsilon, step):
    """Applies one Adam step to `variable` (and its slots `m`, `v`) in one kernel.

    Args:
        variable, m, v: resource variables of the same shape (or the
            per-replica parts of distributed ones, inside
            `strategy.extended.update`).
        gradient: a dense tensor or `tf.IndexedSlices` of the variable's shape.
        learning_rate, beta_1, beta_2, epsilon: scalars (Python or tensors).
        step: the 1-based step number t of the bias corrections β₁ᵗ, β₂ᵗ.

    Returns:
        The update op.

    >>> variable = tf.Variable([1.0, 2.0])
    >>> m, v = tf.Variable([0.0, 0.0]), tf.Variable([0.0, 0.0])
    >>> _ = fused_adam_step(variable, m, v, tf.constant([0.5, -0.5]), 0.1, 0.9, 0.999, 1e-6, 1)
    >>> [round(x, 4) for x in variable.numpy().tolist()]  # first Adam step: lr · sign(g)
    [0.9, 2.1]
    """
    dtype = variable.dtype
    if isinstance(gradient, tf.IndexedSlices):
        # Duplicate rows are summed, as keras' scatter_add sums them.
        gradient = tf.convert_to_tensor(gradient)
    step = tf.cast(step, dtype)
    beta_1 = tf.cast(beta_1, dtype)
    beta_2 = tf.cast(beta_2, dtype)
    return tf.raw_ops.ResourceApplyAdam(
        var=variable.handle,
        m=m.handle,
        v=v.handle,
        beta1_power=tf.pow(beta_1, step),
        beta2_power=tf.pow(beta_2, step),
        lr=tf.cast(learning_rate, dtype),
        beta1=beta_1,
        beta2=beta_2,
        epsilon=tf.cast(epsilon, dtype),
        grad=tf.cast(gradient, dtype),
        use_locking=False,
        use_nesterov=False,
    )


@keras.utils.register_keras_serializable(package="electra_tf")
class FusedAdamW(keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` with the Adam step fused into one kernel per variable.

    Same arguments, slots, checkpoints and results as keras' AdamW (decoupled
    weight decay still runs before the step, as keras orders it); only
    faster. See the module docstring.

    Args:
        learning_rate: a float or a `LearningRateSchedule`.
        **kwargs: keras' `AdamW` arguments (`weight_decay`, `beta_1`,
            `beta_2`, `epsilon`, `amsgrad`, `global_clipnorm`, `name`, ...).

    >>> import numpy as np
    >>> fused, plain = tf.Variable([[1.0, -2.0]]), tf.Variable([[1.0, -2.0]])
    >>> gradient = tf.constant([[0.3, 0.1]])
    >>> _ = FusedAdamW(0.1, weight_decay=0.01).apply_gradients([(gradient, fused)])
    >>> _ = keras.optimizers.AdamW(0.1, weight_decay=0.01).apply_gradients([(gradient, plain)])
    >>> bool(np.allclose(fused.numpy(), plain.numpy(), rtol=1e-6))
    True
    """

    def __init__(self, learning_rate=0.001, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)

    def update_step(self, gradient, variable):
        return self.adam_step(gradient, variable, tf.cast(self.learning_rate, variable.dtype))

    def adam_step(self, gradient, variable, learning_rate):
        """The Adam step (without weight decay) at `learning_rate`: fused where possible."""
        index = self._index_dict[self._var_key(variable)]
        if self.amsgrad:
            return self._keras_adam_step(gradient, variable, learning_rate, index)
        return fused_adam_step(
            variable,
            self._momentums[index],
            self._velocities[index],
            gradient,
            learning_rate,
            self.beta_1,
            self.beta_2,
            self.epsilon,
            self.iterations + 1,
        )

    def _keras_adam_step(self, gradient, variable, learning_rate, index):
        """keras' AdamW.update_step (dense and sparse, AMSGrad) at `learning_rate`."""
        lr = learning_rate
        local_step = tf.cast(self.iterations + 1, variable.dtype)
        beta_1_power = tf.pow(tf.cast(self.beta_1, variable.dtype), local_step)
        beta_2_power = tf.pow(tf.cast(self.beta_2, variable.dtype), local_step)
        m, v = self._momentums[index], self._velocities[index]
        alpha = lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        if isinstance(gradient, tf.IndexedSlices):
            m.assign_add(-m * (1 - self.beta_1))
            m.scatter_add(tf.IndexedSlices(gradient.values * (1 - self.beta_1), gradient.indices))
            v.assign_add(-v * (1 - self.beta_2))
            v.scatter_add(
                tf.IndexedSlices(tf.square(gradient.values) * (1 - self.beta_2), gradient.indices)
            )
        else:
            m.assign_add((gradient - m) * (1 - self.beta_1))
            v.assign_add((tf.square(gradient) - v) * (1 - self.beta_2))
        if self.amsgrad:
            v_hat = self._velocity_hats[index]
            v_hat.assign(tf.maximum(v_hat, v))
            v = v_hat
        return variable.assign_sub((m * alpha) / (tf.sqrt(v) + self.epsilon))
