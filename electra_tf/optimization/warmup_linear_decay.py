"""WarmupLinearDecay: BERT/ELECTRA's learning-rate schedule."""

import tensorflow as tf
import tf_keras as keras


@keras.utils.register_keras_serializable(package="electra_tf")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to `learning_rate`, then linear decay to `end_learning_rate`.

    The decay is keras' `PolynomialDecay(power=1)` over all `decay_steps`
    (counted from step 0, as the original code does); during the first
    `warmup_steps` the rate is scaled by step / warmup_steps instead.

    Args:
        learning_rate: the peak rate (5e-4 for ELECTRA-Small pretraining).
        decay_steps: total training steps.
        warmup_steps: steps of linear warmup (10,000 in the paper; 10% for fine-tuning).
        end_learning_rate: the rate at `decay_steps`.

    Example:
    >>> schedule = WarmupLinearDecay(1e-3, decay_steps=100, warmup_steps=10)
    >>> [round(float(schedule(step)), 6) for step in (0, 5, 10, 55, 100)]
    [0.0, 0.0005, 0.0009, 0.00045, 0.0]
    """

    def __init__(self, learning_rate, decay_steps, warmup_steps=0, end_learning_rate=0.0):
        if decay_steps < 1 or warmup_steps < 0 or warmup_steps > decay_steps:
            raise ValueError(
                "Expected 0 <= warmup_steps <= decay_steps and decay_steps >= 1; received "
                f"warmup_steps={warmup_steps}, decay_steps={decay_steps}."
            )
        self.learning_rate = learning_rate
        self.decay_steps = decay_steps
        self.warmup_steps = warmup_steps
        self.end_learning_rate = end_learning_rate
        self.decay = keras.optimizers.schedules.PolynomialDecay(
            learning_rate, decay_steps, end_learning_rate=end_learning_rate, power=1.0
        )

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        decayed = self.decay(step)
        if self.warmup_steps == 0:
            return decayed
        warmup = self.learning_rate * step / float(self.warmup_steps)
        return tf.where(step < self.warmup_steps, warmup, decayed)

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "decay_steps": self.decay_steps,
            "warmup_steps": self.warmup_steps,
            "end_learning_rate": self.end_learning_rate,
        }
