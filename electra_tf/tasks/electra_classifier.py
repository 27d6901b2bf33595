"""ElectraClassifier: sentence (or sentence-pair) classification and regression on [CLS]."""

import tensorflow as tf
import tf_keras as keras

from electra_tf.data.labels import PROBLEM_TYPES
from electra_tf.layers.build_utils import build_in_scope
from electra_tf.layers.transformer_layer import gelu
from electra_tf.models.electra_encoder import ElectraEncoder
from electra_tf.models.electra_encoder import encoder_argument
from electra_tf.models.model_io import PretrainedModelMixin
from electra_tf.tasks.gradient_accumulation_mixin import GradientAccumulationMixin
from electra_tf.utils.checks import is_integer
from electra_tf.utils.xla import compiled_by_xla

HEADS = ("electra", "huggingface")
# The learning rate of `compile(optimizer="auto")`: the ELECTRA paper fine-tunes
# Large at 5e-5 (Base 1e-4, Small 3e-4); the lowest of these is the safe default.
DEFAULT_LEARNING_RATE = 5e-5


def classification_loss(problem_type):
    """The loss that fits `problem_type`, for the classifier's float32 logits.

    - "single_label": sparse categorical cross-entropy; labels are class ids (batch,).
    - "multi_label": sigmoid (binary) cross-entropy; labels are 0/1 (batch, num_classes).
    - "regression": mean squared error; targets are floats (batch,) or (batch, num_classes).

    >>> type(classification_loss("multi_label")).__name__
    'BinaryCrossentropy'
    """
    _check_problem_type(problem_type)
    if problem_type == "single_label":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if problem_type == "multi_label":
        return keras.losses.BinaryCrossentropy(from_logits=True)
    return keras.losses.MeanSquaredError()


def classification_keras_metrics(problem_type):
    """Keras metrics that fit `problem_type` (accuracy, or RMSE for regression).

    Matthews correlation, F1 and Pearson/Spearman, which GLUE reports, are
    computed on whole predictions by `electra_tf.tasks.classification_metrics`.

    >>> [metric.name for metric in classification_keras_metrics("single_label")]
    ['accuracy']
    """
    _check_problem_type(problem_type)
    if problem_type == "single_label":
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    if problem_type == "multi_label":
        # Logits, not probabilities: a logit above 0 is a probability above 0.5.
        return [keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)]
    return [keras.metrics.RootMeanSquaredError(name="rmse")]


def _check_problem_type(problem_type):
    if problem_type not in PROBLEM_TYPES:
        raise ValueError(
            f"`problem_type` must be one of {list(PROBLEM_TYPES)}; received "
            f"problem_type={problem_type!r}."
        )


@keras.utils.register_keras_serializable(package="electra_tf")
class ElectraClassifier(GradientAccumulationMixin, PretrainedModelMixin, keras.Model):
    """An encoder plus a classification (or regression) head on the [CLS] vector.

    Two heads:
        - "electra" (google-research/electra's fine-tuning code):
          `pooled_output` → dropout → dense(num_classes) named "logits".
        - "huggingface" (transformers' `ElectraClassificationHead`):
          `pooled_output` → dropout → dense(hidden_size) → GELU → dropout →
          dense(num_classes) named "logits" (their `out_proj`). Checkpoints of
          `ElectraForSequenceClassification` load into this head.

    Sentence pairs need nothing here: pack them as `[CLS] A [SEP] B [SEP]`
    with `ElectraTokenizer.pack([a, b], ...)` (type ids 0 and 1).

    Returns float32 logits (batch, num_classes), also under mixed precision.
    `compile()` fills in what is left as "auto": the loss and metrics of the
    problem type (`classification_loss`, `classification_keras_metrics`) and a
    `LayerwiseDecayAdamW` at 5e-5.

    Args:
        encoder: an `ElectraEncoder`, e.g. `ElectraEncoder.from_huggingface(path)`.
        num_classes: number of logits: classes (>= 2 for "single_label"),
            labels for "multi_label", targets for "regression" (usually 1).
        head: "electra" or "huggingface", see above.
        problem_type: "single_label" (softmax over classes), "multi_label"
            (an independent sigmoid per class) or "regression" (MSE).
        dropout_rate: dropout of the head (0.1 in both codebases).
        remove_padding_in_training: training steps run the encoder's dense
            layers on the batch's real tokens only (`ElectraEncoder.call`'s
            `remove_padding`), which gives the same logits and gradients for
            less work: 1.2-1.4× faster fine-tuning steps on movie reviews
            padded per batch (`benchmarks/finetune_throughput.py`). Steps under
            XLA (`jit_compile=True`, TPUs) keep the padding, whose static shapes
            it needs. False pads as transformers does.

    Example:
    >>> encoder = ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=2,
    ...                          num_heads=2, intermediate_size=16)
    >>> classifier = ElectraClassifier(encoder, num_classes=3)
    >>> ids = tf.constant([[2, 5, 3, 7, 3, 0]])
    >>> classifier({"input_word_ids": ids, "input_mask": tf.cast(ids > 0, tf.int32),
    ...             "input_type_ids": tf.constant([[0, 0, 0, 1, 1, 0]])}).shape
    TensorShape([1, 3])
    >>> classifier.compile()
    >>> type(classifier.loss).__name__
    'SparseCategoricalCrossentropy'
    """

    def __init__(
        self,
        encoder,
        num_classes,
        head="electra",
        problem_type="single_label",
        dropout_rate=0.1,
        remove_padding_in_training=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        encoder = encoder_argument(encoder)
        if head not in HEADS:
            raise ValueError(f"`head` must be one of {list(HEADS)}; received head={head!r}.")
        _check_problem_type(problem_type)
        minimum = 2 if problem_type == "single_label" else 1
        if not is_integer(num_classes) or num_classes < minimum:
            raise ValueError(
                f"`num_classes` must be an integer >= {minimum} for "
                f"problem_type={problem_type!r}; received num_classes={num_classes!r}. "
                + ("Binary classification has 2 classes; use problem_type='regression' "
                   "for one real-valued target." if problem_type == "single_label" else "")
            )
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f"`dropout_rate` must be in [0, 1); received {dropout_rate!r}.")
        self.encoder = encoder
        self.num_classes = num_classes
        self.head = head
        self.problem_type = problem_type
        self.dropout_rate = dropout_rate
        if not isinstance(remove_padding_in_training, bool):
            raise ValueError("`remove_padding_in_training` must be True or False; received "
                             f"{remove_padding_in_training!r}.")
        self.remove_padding_in_training = remove_padding_in_training

        def initializer():  # a fresh instance per weight: reused ones repeat values
            return keras.initializers.TruncatedNormal(stddev=encoder.initializer_range)

        # === Layers ===
        self.dropout = keras.layers.Dropout(dropout_rate, name="dropout", dtype=self.dtype_policy)
        self.dense = None
        if head == "huggingface":
            self.dense = keras.layers.Dense(
                encoder.hidden_size,
                kernel_initializer=initializer(),
                name="dense",
                dtype=self.dtype_policy,
            )
        self.logits = keras.layers.Dense(
            num_classes, kernel_initializer=initializer(), name="logits", dtype=self.dtype_policy
        )
        self.build()

    def build(self, input_shape=None):
        with tf.name_scope(self.name):
            if self.dense is not None:
                build_in_scope(self.dense, (None, self.encoder.hidden_size))
            build_in_scope(self.logits, (None, self.encoder.hidden_size))
        self.built = True

    def call(self, inputs, training=None, remove_padding=None):
        """Logits (batch, num_classes).

        `remove_padding=True` (what the exported task model runs) gives the same
        logits with the encoder's dense layers on real tokens only, see
        `ElectraEncoder.call`. None (the default): True in training steps (see
        `remove_padding_in_training`), False otherwise.
        """
        if remove_padding is None:
            remove_padding = (training is True and self.remove_padding_in_training
                              and not compiled_by_xla())
        x = self.encoder(inputs, training=training, remove_padding=remove_padding)
        x = x["pooled_output"]  # (B, H), [CLS]
        x = self.dropout(x, training=training)
        if self.dense is not None:
            x = gelu(self.dense(x))  # (B, H)
            x = self.dropout(x, training=training)
        return tf.cast(self.logits(x), tf.float32)  # (B, num_classes)

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """`keras.Model.compile`, where "auto" picks what fits the problem type.

        optimizer "auto": `LayerwiseDecayAdamW(5e-5)` without a schedule; for
        the full recipe (10% warmup, linear decay) pass
        `create_finetuning_optimizer(...)`. Loss and metrics "auto":
        `classification_loss(problem_type)`, `classification_keras_metrics(problem_type)`.
        """
        if isinstance(optimizer, str) and optimizer == "auto":
            from electra_tf.optimization.layerwise_decay_adamw import LayerwiseDecayAdamW

            optimizer = LayerwiseDecayAdamW(
                DEFAULT_LEARNING_RATE, num_layers=self.encoder.num_layers
            )
        if isinstance(loss, str) and loss == "auto":
            loss = classification_loss(self.problem_type)
        if isinstance(metrics, str) and metrics == "auto":
            metrics = classification_keras_metrics(self.problem_type)
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": self.dtype_policy.name,
            "encoder": keras.layers.serialize(self.encoder),
            "num_classes": self.num_classes,
            "head": self.head,
            "problem_type": self.problem_type,
            "dropout_rate": self.dropout_rate,
            "remove_padding_in_training": self.remove_padding_in_training,
        }

    @classmethod
    def from_huggingface(cls, path):
        """Loads a local `ElectraForSequenceClassification` checkpoint directory.

        The classifier gets `head="huggingface"`, `num_classes` from the
        checkpoint's labels and `problem_type` from its config (transformers'
        rule when unset: one label means regression).
        """
        from electra_tf.checkpoint_formats import huggingface_classifier as checkpoint_format

        checkpoint, arguments = checkpoint_format.read_classifier_checkpoint(path)
        classifier = cls(ElectraEncoder.from_huggingface(path), **arguments)
        checkpoint_format.assign_classifier_head(classifier, checkpoint)
        return classifier

    def save_huggingface(self, path, overwrite=False, label_names=None):
        """Writes an `ElectraForSequenceClassification` directory that transformers loads.

        Only `head="huggingface"` has a transformers counterpart. `label_names`
        (in id order) become its config's `id2label`.
        """
        from electra_tf.checkpoint_formats.huggingface_classifier import (
            save_huggingface_classifier,
        )

        save_huggingface_classifier(self, path, overwrite=overwrite, label_names=label_names)
