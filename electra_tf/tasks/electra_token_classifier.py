"""ElectraTokenClassifier: a label per word piece (NER, chunking, POS) on `sequence_output`."""

import warnings

import tensorflow as tf
import tf_keras as keras

from electra_tf.data.labels import IGNORE_LABEL  # -100: the positions the loss skips
from electra_tf.layers.build_utils import build_in_scope
from electra_tf.models.electra_encoder import ElectraEncoder
from electra_tf.models.electra_encoder import encoder_argument
from electra_tf.models.model_io import PretrainedModelMixin
from electra_tf.tasks.gradient_accumulation_mixin import GradientAccumulationMixin
from electra_tf.utils.checks import is_integer

# See ElectraClassifier: ELECTRA-Large's 5e-5 is the safe default.
DEFAULT_LEARNING_RATE = 5e-5


@keras.saving.register_keras_serializable(package="electra_tf")  # .keras compile configs
def masked_token_loss(labels, logits):
    """Mean cross-entropy over the positions whose label is not `IGNORE_LABEL`.

    Args:
        labels: int (batch, seq): label ids, `IGNORE_LABEL` where skipped.
        logits: float (batch, seq, num_classes).

    Returns:
        A float32 scalar: the mean over kept positions (0 when none is kept),
        as transformers' `CrossEntropyLoss(ignore_index=-100)` computes it.

    >>> labels = tf.constant([[-100, 1, -100]])
    >>> logits = tf.constant([[[9.0, -9.0], [0.0, 0.0], [9.0, -9.0]]])
    >>> round(float(masked_token_loss(labels, logits)), 4)  # log(2): only position 1 counts
    0.6931
    """
    labels = tf.cast(labels, tf.int32)
    logits = tf.cast(logits, tf.float32)
    keep = tf.not_equal(labels, IGNORE_LABEL)  # (B, T)
    per_token = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.where(keep, labels, 0), logits=logits
    )  # (B, T); the 0 put at skipped positions is masked out below
    keep = tf.cast(keep, tf.float32)
    return tf.math.divide_no_nan(tf.reduce_sum(per_token * keep), tf.reduce_sum(keep))


@keras.saving.register_keras_serializable(package="electra_tf")  # .keras compile configs
def masked_token_accuracy(labels, logits):
    """The fraction of kept positions (label != `IGNORE_LABEL`) whose arg-max is the label.

    Args:
        labels: int (batch, seq).
        logits: float (batch, seq, num_classes).

    Returns:
        A float32 scalar (0 when no position is kept).

    >>> labels = tf.constant([[-100, 1, 0, -100]])
    >>> logits = tf.constant([[[0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]])
    >>> float(masked_token_accuracy(labels, logits))
    0.5
    """
    labels = tf.cast(labels, tf.int32)
    keep = tf.cast(tf.not_equal(labels, IGNORE_LABEL), tf.float32)  # (B, T)
    predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)  # (B, T)
    correct = tf.cast(tf.equal(predictions, labels), tf.float32) * keep
    return tf.math.divide_no_nan(tf.reduce_sum(correct), tf.reduce_sum(keep))


@keras.utils.register_keras_serializable(package="electra_tf")
class ElectraTokenClassifier(GradientAccumulationMixin, PretrainedModelMixin, keras.Model):
    """An encoder plus a per-token classification head, for tagging (NER, chunking).

    `sequence_output` → dropout → dense(num_classes) named "logits", as
    google-research/electra's tagging head and transformers'
    `ElectraForTokenClassification` (whose checkpoints load with
    `from_huggingface`). Returns float32 logits (batch, seq, num_classes), also
    under mixed precision.

    Words are labelled on their first word piece; the other pieces, [CLS],
    [SEP] and padding carry the label -100 (`IGNORE_LABEL`), which
    `masked_token_loss` and `masked_token_accuracy` skip. `compile()` fills
    in what is left as "auto": those two and a `LayerwiseDecayAdamW` at 5e-5.
    `electra_tf.data.conll_dataset` makes such labels from CoNLL files.

    Args:
        encoder: an `ElectraEncoder`, e.g. `ElectraEncoder.from_huggingface(path)`.
        num_classes: number of tags (>= 2), e.g. 9 for CoNLL-2003 NER in IOB2
            (`num_labels` in earlier versions, still accepted with a DeprecationWarning).
        dropout_rate: dropout before the head (0.1 in both codebases).

    Example:
    >>> encoder = ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=2,
    ...                          num_heads=2, intermediate_size=16)
    >>> tagger = ElectraTokenClassifier(encoder, num_classes=5)
    >>> ids = tf.constant([[2, 5, 6, 3, 0]])
    >>> tagger({"input_word_ids": ids, "input_mask": tf.cast(ids > 0, tf.int32),
    ...         "input_type_ids": tf.zeros_like(ids)}).shape
    TensorShape([1, 5, 5])
    >>> tagger.compile()
    >>> tagger.loss.__name__
    'masked_token_loss'
    """

    def __init__(self, encoder, num_classes=None, dropout_rate=0.1, **kwargs):
        if "num_labels" in kwargs:  # the name of earlier versions
            warnings.warn("ElectraTokenClassifier(num_labels=...) is deprecated; use "
                          "num_classes=... .", DeprecationWarning, stacklevel=2)
            num_classes = kwargs.pop("num_labels")
        super().__init__(**kwargs)
        encoder = encoder_argument(encoder)
        if not is_integer(num_classes) or num_classes < 2:
            raise ValueError(
                f"`num_classes` must be an integer >= 2 (the number of tags, 'O' included); "
                f"received num_classes={num_classes!r}."
            )
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f"`dropout_rate` must be in [0, 1); received {dropout_rate!r}.")
        self.encoder = encoder
        self.num_classes = num_classes
        self.dropout_rate = dropout_rate

        # === Layers ===
        self.dropout = keras.layers.Dropout(dropout_rate, name="dropout", dtype=self.dtype_policy)
        self.logits = keras.layers.Dense(
            num_classes,
            kernel_initializer=keras.initializers.TruncatedNormal(
                stddev=encoder.initializer_range
            ),
            name="logits",
            dtype=self.dtype_policy,
        )
        self.build()

    def build(self, input_shape=None):
        with tf.name_scope(self.name):
            build_in_scope(self.logits, (None, None, self.encoder.hidden_size))
        self.built = True

    def call(self, inputs, training=None):
        x = self.encoder(inputs, training=training)["sequence_output"]  # (B, T, H)
        x = self.dropout(x, training=training)
        return tf.cast(self.logits(x), tf.float32)  # (B, T, num_classes)

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """`keras.Model.compile`, where "auto" picks ELECTRA's tagging choices.

        optimizer "auto": `LayerwiseDecayAdamW(5e-5)`; pass
        `create_finetuning_optimizer(...)` for warmup and linear decay. Loss
        "auto": `masked_token_loss`; metrics "auto": `masked_token_accuracy`
        (per batch). Entity-level F1 needs whole sentences:
        `electra_tf.tasks.tagging_metrics`.
        """
        if isinstance(optimizer, str) and optimizer == "auto":
            from electra_tf.optimization.layerwise_decay_adamw import LayerwiseDecayAdamW

            optimizer = LayerwiseDecayAdamW(
                DEFAULT_LEARNING_RATE, num_layers=self.encoder.num_layers
            )
        if isinstance(loss, str) and loss == "auto":
            loss = masked_token_loss
        if isinstance(metrics, str) and metrics == "auto":
            metrics = [keras.metrics.MeanMetricWrapper(masked_token_accuracy, name="accuracy")]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": self.dtype_policy.name,
            "encoder": keras.layers.serialize(self.encoder),
            "num_classes": self.num_classes,
            "dropout_rate": self.dropout_rate,
        }

    @classmethod
    def from_config(cls, config):
        # Models saved by earlier versions say "num_labels": read them quietly.
        config = dict(config)
        if "num_labels" in config:
            config["num_classes"] = config.pop("num_labels")
        return super().from_config(config)

    @property
    def num_labels(self):
        """Deprecated: `num_classes`."""
        warnings.warn("ElectraTokenClassifier.num_labels is deprecated; use num_classes.",
                      DeprecationWarning, stacklevel=2)
        return self.num_classes

    @classmethod
    def from_huggingface(cls, path):
        """Loads a local `ElectraForTokenClassification` checkpoint directory.

        `num_classes` comes from the checkpoint's `id2label`; read the names
        with `electra_tf.checkpoint_formats.huggingface_token_classifier.read_label_names`.
        """
        from electra_tf.checkpoint_formats import (
            huggingface_token_classifier as checkpoint_format,
        )

        checkpoint, arguments = checkpoint_format.read_token_classifier_checkpoint(path)
        tagger = cls(ElectraEncoder.from_huggingface(path), **arguments)
        checkpoint_format.assign_token_classifier_head(tagger, checkpoint)
        return tagger

    def save_huggingface(self, path, label_names=None, overwrite=False):
        """Writes an `ElectraForTokenClassification` directory that transformers loads.

        `label_names` (in id order) become the config's `id2label`; default
        LABEL_0, LABEL_1, ...
        """
        from electra_tf.checkpoint_formats.huggingface_token_classifier import (
            save_huggingface_token_classifier,
        )

        save_huggingface_token_classifier(
            self, path, label_names=label_names, overwrite=overwrite
        )
