"""GradientAccumulationMixin: a Keras `train_step` that can run each batch as k micro-batches.

Mixed in before `keras.Model` by the task models. After
`compile(..., gradient_accumulation_steps=k)` every training step cuts its batch
into k micro-batches, runs them one after another (a `tf.while_loop` with one
iteration in flight, so one micro-batch's activations are alive at a time), adds
up their gradients weighted by their share of the rows, and applies the sum
once. For a loss that is a mean over examples this is the update of the whole
batch; feed batches of k × the micro-batch size (`TrainingOptions.examples_per_update`).

Why not accumulate across `fit` steps in variables and apply every k-th step:
the apply would sit in a `tf.cond`, and a replica may not enter a cross-replica
synchronisation (the gradient all-reduce) inside control flow. Here the
optimizer runs once per step as usual, so `iterations`, the learning-rate
schedule, callbacks and the progress bar all count updates.

>>> import electra_tf, numpy as np
>>> from electra_tf.tasks.electra_classifier import ElectraClassifier
>>> encoder = electra_tf.ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=1,
...                                     num_heads=2, intermediate_size=16)
>>> classifier = ElectraClassifier(encoder, num_classes=2)
>>> classifier.compile(gradient_accumulation_steps=2)
>>> ids = np.array([[2, 5, 3], [2, 6, 3], [2, 7, 3], [2, 8, 3]], np.int32)
>>> x = {"input_word_ids": ids, "input_mask": np.ones_like(ids), "input_type_ids": 0 * ids}
>>> _ = classifier.fit(x, np.array([0, 1, 0, 1]), batch_size=4, verbose=0)
>>> int(classifier.optimizer.iterations)  # one update for 2 micro-batches of 2
1
"""

import tensorflow as tf
import tf_keras as keras

from electra_tf.tasks.training_options import check_gradient_accumulation_steps


class GradientAccumulationMixin:
    """`train_step` with optional gradient accumulation, for models mixed in before `keras.Model`.

    A model changes what one (micro-)batch's loss is by overriding
    `training_loss(data)`; the default is Keras' compiled loss and metrics.
    """

    gradient_accumulation_steps = 1

    def compile(self, *args, gradient_accumulation_steps=1, **kwargs):
        """`keras.Model.compile`, plus `gradient_accumulation_steps`: micro-batches per batch."""
        self.gradient_accumulation_steps = check_gradient_accumulation_steps(
            gradient_accumulation_steps)
        super().compile(*args, **kwargs)

    def get_compile_config(self):
        """What `compile` was given, resolved (`None` before `compile`); `.keras` files keep it.

        With `compile_from_config` below, `keras.models.load_model` compiles a
        loaded task model again (and restores its optimizer state) instead of
        warning that the custom `compile()` was not called.
        """
        config = super().get_compile_config()
        if config is not None:
            config["gradient_accumulation_steps"] = self.gradient_accumulation_steps
        return config

    def compile_from_config(self, config):
        """Compiles the model from `get_compile_config`'s dict, through its own `compile`."""
        config = keras.saving.deserialize_keras_object(config)
        # Unset arguments (None) are left to `compile`'s defaults: the QA model,
        # which computes its own loss, refuses even `loss=None`.
        self.compile(**{key: value for key, value in config.items() if value is not None})
        if self.built and isinstance(self.optimizer, keras.optimizers.Optimizer):
            self.optimizer.build(self.trainable_variables)  # for the saved optimizer state

    def training_loss(self, data):
        """The loss of one (micro-)batch to differentiate; updates the metrics on the way.

        As Keras' own `train_step`: the compiled loss (already divided by the
        number of replicas) and the compiled metrics.
        """
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y_pred = self(x, training=True)
        loss = self.compute_loss(x, y, y_pred, sample_weight)
        self._validate_target_and_loss(y, loss)
        # Not `compute_metrics`: it also reads the results, which under a
        # MirroredStrategy syncs replicas, not allowed inside the micro-batch loop.
        self.compiled_metrics.update_state(y, y_pred, sample_weight)
        return loss

    def train_step(self, data):
        variables = self.trainable_variables
        if self.gradient_accumulation_steps == 1:
            with tf.GradientTape() as tape:
                loss = self.training_loss(data)
            self.optimizer.minimize(loss, variables, tape=tape)
        else:
            gradients, variables = self._accumulated_gradients(data, variables)
            self.optimizer.apply_gradients(zip(gradients, variables))
        return self.get_metrics_result()

    def _accumulated_gradients(self, data, variables):
        """(Σ share · gradient over the micro-batches, their variables) of one replica's batch."""
        rows = tf.shape(tf.nest.flatten(data)[0])[0]
        # A short last batch (fewer rows than steps) gets fewer micro-batches, none empty.
        count = tf.minimum(self.gradient_accumulation_steps, rows)

        def micro_batch_gradients(index):
            start, end = index * rows // count, (index + 1) * rows // count
            micro_batch = tf.nest.map_structure(lambda tensor: tensor[start:end], data)
            with tf.GradientTape() as tape:
                loss = self.training_loss(micro_batch)
            # The optimizer's own gradients: loss-scaled and unscaled under mixed_float16.
            pairs = self.optimizer.compute_gradients(loss, variables, tape=tape)
            share = tf.cast(end - start, tf.float32) / tf.cast(rows, tf.float32)
            # Dense: a loop variable needs one shape (the embedding's gradients are sparse).
            return [None if gradient is None else tf.convert_to_tensor(gradient) * share
                    for gradient, _ in pairs]

        # The first micro-batch outside the loop: Keras builds its loss and metric
        # containers on first use, and a loop body may not create variables. It also
        # shows which variables get no gradient; they stay out, as in `minimize`.
        first = micro_batch_gradients(0)
        kept = [i for i, gradient in enumerate(first) if gradient is not None]

        def add_micro_batch(index, total):
            gradients = micro_batch_gradients(index)
            return index + 1, [sum_ + gradients[i] for sum_, i in zip(total, kept)]

        _, total = tf.while_loop(
            lambda index, _: index < count, add_micro_batch,
            (tf.constant(1), [first[i] for i in kept]),
            parallel_iterations=1,  # one micro-batch's activations at a time
        )
        return total, [variables[i] for i in kept]
