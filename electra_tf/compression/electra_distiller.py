"""ElectraDistiller: knowledge distillation of a task model into a smaller one (Hinton et al. 2015).

    loss = alpha · T² · KL(softmax(teacher / T) ‖ softmax(student / T))
         + (1 − alpha) · the task model's own loss on the labels

for the three task models: a classifier (one distribution per example,
`distillation_loss`), a tagger (one per labelled word piece,
`token_distillation_loss`) and extractive QA (start and end distributions
over the sequence, `span_distillation_loss`). The teacher only predicts; the
student is trained with `model.fit`. `student_from_teacher` builds a
shallower student that starts from a subset of the teacher's layers (as
DistilBERT starts from every other BERT layer).
"""

import tensorflow as tf
import tf_keras as keras

from electra_tf.tasks.task_models import TASK_MODEL_CLASSES
from electra_tf.models.electra_encoder import ElectraEncoder
from electra_tf.tasks.electra_classifier import ElectraClassifier  # noqa: F401  (docstring examples)
from electra_tf.tasks.electra_question_answering import (
    IMPOSSIBLE_LOSS_WEIGHT,
    MASK_PENALTY,
    _check_labels,
    question_answering_loss,
)
from electra_tf.tasks.electra_token_classifier import (
    IGNORE_LABEL,
    ElectraTokenClassifier,  # noqa: F401  (docstring examples)
    masked_token_accuracy,
    masked_token_loss,
)
from electra_tf.utils.checks import is_integer

# The task models a distiller takes, by the task name task.json records (the compression
# jobs' one table).
TASK_MODELS = TASK_MODEL_CLASSES


def task_of(model):
    """The task ("classify", "tag" or "qa") of a task model, or None for anything else.

    >>> encoder = ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=1,
    ...                          num_heads=2, intermediate_size=16)
    >>> task_of(ElectraTokenClassifier(encoder, num_classes=3)), task_of(encoder)
    ('tag', None)
    """
    for task, model_class in TASK_MODELS.items():
        if isinstance(model, model_class):
            return task
    return None


def _kl_divergence(teacher_logits, student_logits, temperature, mask=None):
    """KL(softmax(teacher / T) ‖ softmax(student / T)) over the last axis.

    Args:
        teacher_logits, student_logits: float (..., C).
        temperature: T > 0.
        mask: optional (..., C), 1 where a class may be chosen: the others
            get `MASK_PENALTY` subtracted after scaling, so neither
            distribution puts probability there and they add nothing (a
            padded position of a QA window).

    Returns:
        float32 (...,).
    """
    teacher_logits = tf.cast(teacher_logits, tf.float32) / temperature
    student_logits = tf.cast(student_logits, tf.float32) / temperature
    if mask is not None:
        penalty = MASK_PENALTY * (tf.cast(mask, tf.float32) - 1.0)  # 0 kept, -1000 masked
        teacher_logits += penalty
        student_logits += penalty
    teacher_log_probs = tf.nn.log_softmax(teacher_logits, axis=-1)  # (..., C)
    student_log_probs = tf.nn.log_softmax(student_logits, axis=-1)  # (..., C)
    return tf.reduce_sum(
        tf.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs), axis=-1
    )  # (...,)


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
    student_logits = tf.cast(student_logits, tf.float32)
    kl = _kl_divergence(teacher_logits, student_logits, temperature)  # (B,)
    soft_loss = temperature**2 * tf.reduce_mean(kl)
    labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)  # (B,)
    labelled = labels >= 0  # (B,); -1: an unlabelled (e.g. augmented) example
    cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.maximum(labels, 0), logits=student_logits)  # (B,)
    hard_loss = tf.math.divide_no_nan(
        tf.reduce_sum(tf.where(labelled, cross_entropy, 0.0)),
        tf.reduce_sum(tf.cast(labelled, tf.float32)))
    return alpha * soft_loss + (1.0 - alpha) * hard_loss, soft_loss, hard_loss


def token_distillation_loss(labels, teacher_logits, student_logits, temperature=2.0, alpha=0.5):
    """The tagger's distillation objective: one soft target per labelled word piece.

    Only the positions the tagger's own loss counts (`masked_token_loss`:
    label != `IGNORE_LABEL`, i.e. each word's first piece) count in either
    term: [CLS], [SEP], padding and later word pieces add nothing.

    Args:
        labels: int (batch, seq), tag ids, `IGNORE_LABEL` (-100) where skipped.
        teacher_logits, student_logits: float (batch, seq, num_classes).
        temperature: T > 0 (see `distillation_loss`).
        alpha: weight of the soft term; 1 − alpha weighs the labels.

    Returns:
        `(loss, soft_loss, hard_loss)`, float32 scalars: soft_loss is T² times
        the mean KL over the kept positions, hard_loss `masked_token_loss`
        (both 0 when no position is kept).

    >>> labels = tf.constant([[-100, 0, -100]])  # only position 1 is a word's first piece
    >>> teacher = tf.constant([[[5.0, 0.0], [0.0, 0.0], [0.0, 5.0]]])
    >>> student = tf.constant([[[0.0, 5.0], [0.0, 0.0], [5.0, 0.0]]])
    >>> loss, soft, hard = token_distillation_loss(labels, teacher, student, temperature=1.0)
    >>> round(float(soft), 6), round(float(hard), 4)  # the skipped positions disagree: no matter
    (0.0, 0.6931)
    """
    labels = tf.cast(labels, tf.int32)
    student_logits = tf.cast(student_logits, tf.float32)
    kept = tf.not_equal(labels, IGNORE_LABEL)  # (B, T)
    kl = _kl_divergence(teacher_logits, student_logits, temperature)  # (B, T)
    soft_loss = temperature**2 * tf.math.divide_no_nan(
        tf.reduce_sum(tf.where(kept, kl, 0.0)), tf.reduce_sum(tf.cast(kept, tf.float32)))
    hard_loss = masked_token_loss(labels, student_logits)
    return alpha * soft_loss + (1.0 - alpha) * hard_loss, soft_loss, hard_loss


def span_distillation_loss(labels, teacher_outputs, student_outputs, input_mask,
                           temperature=2.0, alpha=0.5):
    """The QA model's distillation objective: soft start and end distributions over the window.

    soft_loss = T² · (KL_start + KL_end) / 2, each KL over the sequence with
    the padding (input_mask 0) masked out of both distributions, plus, when
    both models have an answerability classifier (head "electra"),
    `IMPOSSIBLE_LOSS_WEIGHT` · T² · the KL of the two answerable/unanswerable
    distributions, as `question_answering_loss` weighs its terms. The hard
    term is `question_answering_loss` on the labels.

    Args:
        labels: {"start_positions", "end_positions"[, "is_impossible"]}, (batch,)
            each, as `ElectraQuestionAnswering.fit` takes them.
        teacher_outputs, student_outputs: the models' dicts; "start_logits"
            and "end_logits" (batch, seq) (the "electra" head called with
            `start_positions`), "impossible_logits" (batch,) when present.
        input_mask: int (batch, seq), 1 on real tokens.
        temperature: T > 0 (see `distillation_loss`).
        alpha: weight of the soft term; 1 − alpha weighs the labels.

    Returns:
        `(loss, soft_loss, hard_loss)`, float32 scalars.

    >>> outputs = {"start_logits": tf.constant([[0.0, 2.0, 0.0]]),
    ...            "end_logits": tf.constant([[0.0, 0.0, 2.0]])}
    >>> padded = {"start_logits": tf.constant([[0.0, 2.0, 9.0]]),  # position 2 is padding
    ...           "end_logits": tf.constant([[0.0, 0.0, -9.0]])}
    >>> labels = {"start_positions": tf.constant([1]), "end_positions": tf.constant([1])}
    >>> _, soft, _ = span_distillation_loss(labels, outputs, padded, tf.constant([[1, 1, 0]]))
    >>> round(float(soft), 6)
    0.0
    """
    mask = tf.cast(input_mask, tf.float32)  # (B, T)
    for name, outputs in (("teacher", teacher_outputs), ("student", student_outputs)):
        if not isinstance(outputs, dict) or outputs["end_logits"].shape.rank != 2:
            raise ValueError(
                f"The {name}'s outputs must be a dict with (batch, seq) 'start_logits' and "
                "'end_logits'; the 'electra' head gives those when called with "
                "`start_positions` (its end logits are otherwise per beam, (batch, beam, seq))."
            )
    soft_loss = temperature**2 * (
        tf.reduce_mean(_kl_divergence(teacher_outputs["start_logits"],
                                      student_outputs["start_logits"], temperature, mask))
        + tf.reduce_mean(_kl_divergence(teacher_outputs["end_logits"],
                                        student_outputs["end_logits"], temperature, mask))
    ) / 2.0
    if "impossible_logits" in teacher_outputs and "impossible_logits" in student_outputs:
        def two_classes(logits):  # softmax([0, z]) = [1 - sigmoid(z), sigmoid(z)]
            logits = tf.cast(logits, tf.float32)
            return tf.stack([tf.zeros_like(logits), logits], axis=-1)  # (B, 2)

        soft_loss += IMPOSSIBLE_LOSS_WEIGHT * temperature**2 * tf.reduce_mean(_kl_divergence(
            two_classes(teacher_outputs["impossible_logits"]),
            two_classes(student_outputs["impossible_logits"]), temperature))
    hard_loss = question_answering_loss(student_outputs, labels["start_positions"],
                                        labels["end_positions"], labels.get("is_impossible"))
    return alpha * soft_loss + (1.0 - alpha) * hard_loss, soft_loss, hard_loss


def student_from_teacher(teacher, num_layers, layer_indices=None):
    """A shallower copy of a task model, initialised from some of `teacher`'s layers.

    Args:
        teacher: a trained `ElectraClassifier`, `ElectraTokenClassifier` or
            `ElectraQuestionAnswering`; the student is of the same class with
            the same head (classes, tags, QA head).
        num_layers: transformer layers of the student (at most the teacher's).
        layer_indices: which teacher layers to copy, in order; default: evenly
            spaced and ending with the top layer (6 → 3 copies 1, 3, 5).
            Embeddings, projection and head are always copied.

    >>> encoder = ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=4,
    ...                          num_heads=2, intermediate_size=16)
    >>> student = student_from_teacher(ElectraClassifier(encoder, num_classes=2), num_layers=2)
    >>> student.encoder.num_layers, student.num_classes
    (2, 2)
    >>> tagger = student_from_teacher(ElectraTokenClassifier(encoder, num_classes=5), 1)
    >>> type(tagger).__name__, tagger.encoder.num_layers, tagger.num_classes
    ('ElectraTokenClassifier', 1, 5)
    """
    if task_of(teacher) is None:
        raise ValueError(
            "`teacher` must be an ElectraClassifier, ElectraTokenClassifier or "
            f"ElectraQuestionAnswering; received {type(teacher).__name__}."
        )
    teacher_layers = teacher.encoder.num_layers
    if layer_indices is None:
        if not is_integer(num_layers) or not 1 <= num_layers <= teacher_layers:
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
    encoder_config = teacher.encoder.get_config()
    encoder_config.update(num_layers=num_layers, embedding_layer=None, name="student_encoder")
    encoder = ElectraEncoder.from_config(encoder_config)
    # The same class and head: the teacher's own config with the shallower encoder.
    student = type(teacher).from_config({**teacher.get_config(), "encoder": encoder,
                                         "name": "student"})
    encoder.embedding_layer.set_weights(teacher.encoder.embedding_layer.get_weights())
    if encoder.embedding_projection is not None:
        encoder.embedding_projection.set_weights(
            teacher.encoder.embedding_projection.get_weights())
    for layer, index in zip(encoder.transformer_layers, layer_indices):
        layer.set_weights(teacher.encoder.transformer_layers[index].get_weights())
    # The head: every other layer with weights (dense, logits, qa_outputs, ...), by name.
    student_layers = {layer.name: layer for layer in student.layers}
    for layer in teacher.layers:
        if layer is not teacher.encoder and layer.weights:
            student_layers[layer.name].set_weights(layer.get_weights())
    return student


@keras.utils.register_keras_serializable(package="electra_tf")
class ElectraDistiller(keras.Model):
    """Trains a student task model to match a teacher's softened predictions and the labels.

    `fit` on `(features, labels)` batches, in the form the task model's own
    `fit` takes, updates the student only; the teacher runs in inference
    mode. The loss follows the teacher's task:

        - `ElectraClassifier` (single-label): `distillation_loss`; labels (batch,).
        - `ElectraTokenClassifier`: `token_distillation_loss`; labels
          (batch, seq) with -100 where the tagger's loss skips a position.
        - `ElectraQuestionAnswering`: `span_distillation_loss`; labels
          {"start_positions", "end_positions"[, "is_impossible"]}. The
          "electra" head's end logits are conditioned on the gold start in
          both models, as in its own training.

    Logged: `loss`, `soft_loss` (T² · KL(teacher/T ‖ student/T)), `hard_loss`
    (the task model's own loss on the labels) and, for classifiers and
    taggers, the student's `accuracy` (per labelled word piece for a tagger).
    Calling the distiller returns the student's outputs.

    Args:
        teacher: a trained `ElectraClassifier`, `ElectraTokenClassifier` or
            `ElectraQuestionAnswering`.
        student: a task model of the same class and head, e.g.
            `student_from_teacher(teacher, num_layers=2)` or a task model whose
            layers `prune_task_model` wrapped for pruning; or a functional
            model returning its outputs.
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
        task = task_of(teacher)
        if task is None:
            raise ValueError(
                "`teacher` must be an ElectraClassifier, ElectraTokenClassifier or "
                f"ElectraQuestionAnswering; received {type(teacher).__name__}."
            )
        functional = not isinstance(student, TASK_MODELS[task]) and isinstance(
            student, keras.Model) and getattr(student, "_is_graph_network", False)
        if not functional and not isinstance(student, TASK_MODELS[task]):
            raise ValueError(
                f"`student` must be an {TASK_MODELS[task].__name__}, as the teacher is (or a "
                f"functional model returning its outputs); received {type(student).__name__}."
            )
        if not temperature > 0:
            raise ValueError(f"`temperature` must be > 0; received {temperature!r}.")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"`alpha` must be in [0, 1]; received {alpha!r}.")
        _check_same_head(task, teacher, student, functional)
        self.teacher = teacher
        self.student = student
        self.task = task
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        # The "electra" QA head scores ends given a start: the gold one, in both models.
        self._condition_on_start = task == "qa" and teacher.head == "electra"
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.soft_loss_tracker = keras.metrics.Mean(name="soft_loss")
        self.hard_loss_tracker = keras.metrics.Mean(name="hard_loss")
        self.accuracy = {
            "classify": keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            "tag": keras.metrics.Mean(name="accuracy"),  # weighted by labelled pieces
            "qa": None,
        }[task]

    @property
    def metrics(self):
        # Listed here so Keras resets them at each epoch.
        trackers = [self.loss_tracker, self.soft_loss_tracker, self.hard_loss_tracker]
        return trackers + ([self.accuracy] if self.accuracy is not None else [])

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

    def _task_outputs(self, model, features, labels, training):
        if self._condition_on_start:
            return model(features, training=training, start_positions=labels["start_positions"])
        return model(features, training=training)

    def _task_losses(self, features, labels, teacher_outputs, student_outputs):
        """(loss, soft_loss, hard_loss) of the teacher's task."""
        arguments = (self.temperature, self.alpha)
        if self.task == "classify":
            return distillation_loss(labels, teacher_outputs, student_outputs, *arguments)
        if self.task == "tag":
            return token_distillation_loss(labels, teacher_outputs, student_outputs, *arguments)
        return span_distillation_loss(labels, teacher_outputs, student_outputs,
                                      features["input_mask"], *arguments)

    def _update_metrics(self, labels, student_outputs, losses):
        for tracker, value in zip(
                (self.loss_tracker, self.soft_loss_tracker, self.hard_loss_tracker), losses):
            tracker.update_state(value)
        if self.task == "classify":
            labels = tf.reshape(labels, [-1])  # (B,)
            # Accuracy against the labels, where there are any (-1: unlabelled).
            self.accuracy.update_state(tf.maximum(labels, 0), student_outputs,
                                       sample_weight=tf.cast(labels >= 0, tf.float32))
        elif self.task == "tag":
            labelled = tf.reduce_sum(tf.cast(tf.not_equal(labels, IGNORE_LABEL), tf.float32))
            self.accuracy.update_state(masked_token_accuracy(labels, student_outputs),
                                       sample_weight=labelled)
        return {metric.name: metric.result() for metric in self.metrics}

    def _unpack_batch(self, data):
        features, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        if self.task == "qa":
            _check_labels(labels)
        return features, labels

    def train_step(self, data):
        features, labels = self._unpack_batch(data)
        # No gradient needed through the teacher: (B, C) logits, (B, T, C), or a dict of (B, T).
        teacher_outputs = tf.nest.map_structure(
            tf.stop_gradient, self._task_outputs(self.teacher, features, labels, training=False))
        with tf.GradientTape() as tape:
            student_outputs = self._task_outputs(self.student, features, labels, training=True)
            losses = self._task_losses(features, labels, teacher_outputs, student_outputs)
        variables = self.student.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(losses[0], variables), variables))
        return self._update_metrics(labels, student_outputs, losses)

    def test_step(self, data):
        features, labels = self._unpack_batch(data)
        teacher_outputs = self._task_outputs(self.teacher, features, labels, training=False)
        student_outputs = self._task_outputs(self.student, features, labels, training=False)
        losses = self._task_losses(features, labels, teacher_outputs, student_outputs)
        return self._update_metrics(labels, student_outputs, losses)

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


def _check_same_head(task, teacher, student, functional):
    """Raises a ValueError unless `student` predicts what `teacher` does (classes, tags, head)."""
    if task == "classify":
        models = (("teacher", teacher),) + ((("student", student),) if not functional else ())
        for name, model in models:
            if model.problem_type != "single_label":
                raise ValueError(
                    f"Distillation needs single-label classifiers; the {name} has "
                    f"problem_type={model.problem_type!r}."
                )
        student_classes = student.output_shape[-1] if functional else student.num_classes
        if teacher.num_classes != student_classes:
            raise ValueError(
                f"Teacher and student must have the same classes; received "
                f"num_classes={teacher.num_classes} (teacher) and {student_classes} (student)."
            )
    elif task == "tag":
        student_classes = student.output_shape[-1] if functional else student.num_classes
        if teacher.num_classes != student_classes:
            raise ValueError(
                f"Teacher and student must have the same tags; received "
                f"num_classes={teacher.num_classes} (teacher) and {student_classes} (student)."
            )
    elif functional and teacher.head == "electra":
        raise ValueError(
            "A functional student cannot be called with the gold `start_positions` that the "
            "teacher's 'electra' QA head conditions its end logits on; distil it into an "
            "ElectraQuestionAnswering (student_from_teacher)."
        )
    elif not functional and teacher.head != student.head:
        raise ValueError(
            f"Teacher and student must have the same QA head; received head={teacher.head!r} "
            f"(teacher) and {student.head!r} (student)."
        )
