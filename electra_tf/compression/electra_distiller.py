"""ElectraDistiller: knowledge distillation of a classifier into a smaller one (Hinton et al. 2015).

    loss = alpha · T² · KL(softmax(teacher / T) ‖ softmax(student / T))
         + (1 − alpha) · cross-entropy(labels, softmax(student))

The teacher only predicts; the student is trained with `model.fit`.
`student_from_teacher` builds a shallower student that starts from a subset
of the teacher's layers (as DistilBERT starts from every other BERT layer).
"""

import tensorflow as tf
import tf_keras as keras

from electra_tf.models.electra_encoder import ElectraEncoder
from electra_tf.tasks.electra_classifier import ElectraClassifier


def distillation_loss(labels, teacher_logits, student_logits, temperature=2.0, alpha=0.5):
    """The distillation objective and its two parts, averaged over the batch.

    Args:
        labels: (batch,) int class ids; -1 marks an unlabelled example (augmented
            text), which counts in the soft term only.
        teacher_logits: (batch, num_classes).
        student_logits: (batch, num_classes).
        temperature: T > 0; softens both distributions. The soft term is
            multiplied by T² so its gradients keep their scale as T changes.
        alpha: weight of the soft (teacher) term; 1 − alpha weighs the labels.

    Returns:
        `(loss, soft_loss, hard_loss)`, float32 scalars: soft_loss is
        T² · KL(teacher/T ‖ student/T), hard_loss the cross-entropy with the labels
        (over the labelled examples; 0 when there are none).

    >>> loss, soft, hard = distillation_loss(tf.constant([0]), tf.constant([[2.0, 0.0]]),
    ...                                      tf.constant([[2.0, 0.0]]), temperature=1.0)
    >>> round(float(soft), 6), round(float(hard), 4)
    (0.0, 0.1269)
    """
    teacher_logits = tf.cast(teacher_logits, tf.float32)
    student_logits = tf.cast(student_logits, tf.float32)
    teacher_log_probs = tf.nn.log_softmax(teacher_logits / temperature, axis=-1)  # (B, C)
    student_log_probs = tf.nn.log_softmax(student_logits / temperature, axis=-1)  # (B, C)
    kl = tf.reduce_sum(
        tf.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs), axis=-1
    )  # (B,)
    soft_loss = temperature**2 * tf.reduce_mean(kl)
    labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)  # (B,)
    labelled = labels >= 0  # (B,); -1: an unlabelled (e.g. augmented) example
    cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.maximum(labels, 0), logits=student_logits)  # (B,)
    hard_loss = tf.math.divide_no_nan(
        tf.reduce_sum(tf.where(labelled, cross_entropy, 0.0)),
        tf.reduce_sum(tf.cast(labelled, tf.float32)))
    return alpha * soft_loss + (1.0 - alpha) * hard_loss, soft_loss, hard_loss


def student_from_teacher(teacher, num_layers, layer_indices=None):
    """A shallower `ElectraClassifier` initialised from some of `teacher`'s layers.

    Args:
        teacher: a trained `ElectraClassifier`.
        num_layers: transformer layers of the student (fewer than the teacher's).
        layer_indices: which teacher layers to copy, in order; default: evenly
            spaced and ending with the top layer (6 → 3 copies 1, 3, 5).
            Embeddings, projection and head are always copied.

    >>> encoder = ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=4,
    ...                          num_heads=2, intermediate_size=16)
    >>> student = student_from_teacher(ElectraClassifier(encoder, num_classes=2), num_layers=2)
    >>> student.encoder.num_layers, student.num_classes
    (2, 2)
    """
    if not isinstance(teacher, ElectraClassifier):
        raise ValueError(f"`teacher` must be an ElectraClassifier; received {type(teacher).__name__}.")
    teacher_layers = teacher.encoder.num_layers
    if layer_indices is None:
        if not isinstance(num_layers, int) or not 1 <= num_layers <= teacher_layers:
            raise ValueError(
                f"`num_layers` must be an integer in [1, {teacher_layers}] (the teacher's "
                f"layers); received num_layers={num_layers!r}."
            )
        layer_indices = [(i + 1) * teacher_layers // num_layers - 1 for i in range(num_layers)]
    layer_indices = list(layer_indices)
    if len(layer_indices) != num_layers or not all(
            0 <= i < teacher_layers for i in layer_indices):
        raise ValueError(
            f"`layer_indices` must list {num_layers} teacher layers in [0, {teacher_layers}); "
            f"received {layer_indices}."
        )
    config = teacher.encoder.get_config()
    config.update(num_layers=num_layers, embedding_layer=None, name="student_encoder")
    encoder = ElectraEncoder.from_config(config)
    student = ElectraClassifier(
        encoder,
        num_classes=teacher.num_classes,
        head=teacher.head,
        problem_type=teacher.problem_type,
        dropout_rate=teacher.dropout_rate,
        name="student",
    )
    encoder.embedding_layer.set_weights(teacher.encoder.embedding_layer.get_weights())
    if encoder.embedding_projection is not None:
        encoder.embedding_projection.set_weights(
            teacher.encoder.embedding_projection.get_weights())
    for layer, index in zip(encoder.transformer_layers, layer_indices):
        layer.set_weights(teacher.encoder.transformer_layers[index].get_weights())
    if student.dense is not None:
        student.dense.set_weights(teacher.dense.get_weights())
    student.logits.set_weights(teacher.logits.get_weights())
    return student


@keras.utils.register_keras_serializable(package="electra_tf")
class ElectraDistiller(keras.Model):
    """Trains a student classifier to match a teacher's softened predictions and the labels.

    `fit` on `(features, labels)` batches updates the student only; the
    teacher runs in inference mode. Logged: `loss`, `soft_loss`
    (T² · KL(teacher/T ‖ student/T)), `hard_loss` (cross-entropy with the
    labels) and the student's `accuracy`. Calling the distiller returns the
    student's logits. For single-label classifiers.

    Args:
        teacher: a trained `ElectraClassifier`.
        student: an `ElectraClassifier` with the same classes, e.g.
            `student_from_teacher(teacher, num_layers=2)`; or a functional
            model returning a classifier's logits, such as the pruning-wrapped
            `functional_classifier` that `prune_classifier` trains.
        temperature: softmax temperature T of the soft targets (2.0).
        alpha: weight of the soft term; 1 − alpha weighs the labels (0.5).

    Example:
    >>> import numpy as np
    >>> def tiny(num_layers):
    ...     return ElectraClassifier(ElectraEncoder(vocab_size=10, hidden_size=8,
    ...         num_layers=num_layers, num_heads=2, intermediate_size=16), num_classes=2)
    >>> distiller = ElectraDistiller(tiny(4), tiny(2), temperature=2.0, alpha=0.5)
    >>> distiller.compile(optimizer=keras.optimizers.Adam(1e-3))
    >>> features = {"input_word_ids": np.array([[2, 5, 3], [2, 7, 3]]),
    ...             "input_mask": np.ones((2, 3)), "input_type_ids": np.zeros((2, 3))}
    >>> history = distiller.fit(features, np.array([0, 1]), epochs=1, verbose=0)
    >>> sorted(history.history)
    ['accuracy', 'hard_loss', 'loss', 'soft_loss']
    """

    def __init__(self, teacher, student, temperature=2.0, alpha=0.5, **kwargs):
        super().__init__(**kwargs)
        if isinstance(teacher, dict):  # from get_config()
            teacher = keras.layers.deserialize(teacher)
        if isinstance(student, dict):
            student = keras.layers.deserialize(student)
        num_classes = {}
        for name, model in (("teacher", teacher), ("student", student)):
            if isinstance(model, ElectraClassifier):
                if model.problem_type != "single_label":
                    raise ValueError(
                        f"Distillation needs single-label classifiers; the {name} has "
                        f"problem_type={model.problem_type!r}."
                    )
                num_classes[name] = model.num_classes
            elif name == "student" and isinstance(model, keras.Model) and getattr(
                    model, "_is_graph_network", False):
                num_classes[name] = model.output_shape[-1]  # e.g. pruning's functional_classifier
            else:
                raise ValueError(
                    f"`{name}` must be an ElectraClassifier"
                    + (" (or, for the student, a functional model returning its logits)"
                       if name == "student" else "")
                    + f"; received {type(model).__name__}."
                )
        if num_classes["teacher"] != num_classes["student"]:
            raise ValueError(
                f"Teacher and student must have the same classes; received "
                f"num_classes={num_classes['teacher']} (teacher) and {num_classes['student']} "
                "(student)."
            )
        if not temperature > 0:
            raise ValueError(f"`temperature` must be > 0; received {temperature!r}.")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"`alpha` must be in [0, 1]; received {alpha!r}.")
        self.teacher = teacher
        self.student = student
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.soft_loss_tracker = keras.metrics.Mean(name="soft_loss")
        self.hard_loss_tracker = keras.metrics.Mean(name="hard_loss")
        self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @property
    def metrics(self):
        # Listed here so Keras resets them at each epoch.
        return [self.loss_tracker, self.soft_loss_tracker, self.hard_loss_tracker, self.accuracy]

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def compile(self, optimizer="auto", **kwargs):
        """`keras.Model.compile`; the loss is the distillation loss, so none is taken.

        optimizer "auto": `LayerwiseDecayAdamW(5e-5)` over the student's layers.
        """
        for name in ("loss", "metrics"):
            if name in kwargs:
                raise ValueError(
                    f"ElectraDistiller computes its own loss and metrics; received {name}=. "
                    "Set `temperature` and `alpha` instead."
                )
        if isinstance(optimizer, str) and optimizer == "auto":
            from electra_tf.optimization.layerwise_decay_adamw import LayerwiseDecayAdamW
            from electra_tf.tasks.electra_classifier import DEFAULT_LEARNING_RATE

            optimizer = LayerwiseDecayAdamW(
                DEFAULT_LEARNING_RATE, num_layers=self.student.encoder.num_layers)
        super().compile(optimizer=optimizer, **kwargs)

    def _update_metrics(self, labels, student_logits, losses):
        for tracker, value in zip(
                (self.loss_tracker, self.soft_loss_tracker, self.hard_loss_tracker), losses):
            tracker.update_state(value)
        labels = tf.reshape(labels, [-1])  # (B,)
        # Accuracy against the labels, where there are any (-1: unlabelled).
        self.accuracy.update_state(tf.maximum(labels, 0), student_logits,
                                   sample_weight=tf.cast(labels >= 0, tf.float32))
        return {metric.name: metric.result() for metric in self.metrics}

    def train_step(self, data):
        features, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        teacher_logits = self.teacher(features, training=False)  # (B, C), no gradient needed
        with tf.GradientTape() as tape:
            student_logits = self.student(features, training=True)  # (B, C)
            losses = distillation_loss(
                labels, tf.stop_gradient(teacher_logits), student_logits,
                self.temperature, self.alpha,
            )
        variables = self.student.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(losses[0], variables), variables))
        return self._update_metrics(labels, student_logits, losses)

    def test_step(self, data):
        features, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        teacher_logits = self.teacher(features, training=False)
        student_logits = self.student(features, training=False)
        losses = distillation_loss(
            labels, teacher_logits, student_logits, self.temperature, self.alpha)
        return self._update_metrics(labels, student_logits, losses)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "teacher": keras.layers.serialize(self.teacher),
            "student": keras.layers.serialize(self.student),
            "temperature": self.temperature,
            "alpha": self.alpha,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

