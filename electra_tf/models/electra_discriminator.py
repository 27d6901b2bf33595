"""ElectraDiscriminator: an encoder plus the replaced-token-detection head."""

import tensorflow as tf
import tf_keras as keras

from electra_tf.layers.build_utils import build_in_scope
from electra_tf.layers.transformer_layer import gelu
from electra_tf.models.checkpoint_conversion_mixin import CheckpointConversionMixin
from electra_tf.models.electra_encoder import encoder_argument


@keras.utils.register_keras_serializable(package="electra_tf")
class ElectraDiscriminator(CheckpointConversionMixin, keras.Model):
    """ELECTRA's discriminator: for every token, the logit that it was replaced.

    Head: dense(hidden_size) → GELU → dense(1), applied to every position.
    This is the model kept after pretraining; its `encoder` is what
    fine-tuning starts from.

    Returns a dict: `logits` (batch, seq), float32 even under mixed precision,
    plus the encoder's `sequence_output`, `pooled_output`, `encoder_outputs`.

    Args:
        encoder: an `ElectraEncoder`.

    Example:
    >>> discriminator = ElectraDiscriminator.from_preset("tiny")
    >>> ids = tf.constant([[101, 2023, 102]])
    >>> discriminator({"input_word_ids": ids})["logits"].shape
    TensorShape([1, 3])
    """

    model_kind = "discriminator"

    def __init__(self, encoder, **kwargs):
        super().__init__(**kwargs)
        encoder = encoder_argument(encoder)
        self.encoder = encoder
        def initializer():  # a fresh instance per weight: reused ones repeat values
            return keras.initializers.TruncatedNormal(stddev=encoder.initializer_range)

        # === Layers ===
        self.dense = keras.layers.Dense(
            encoder.hidden_size,
            kernel_initializer=initializer(),
            name="dense",
            dtype=self.dtype_policy,
        )
        self.dense_prediction = keras.layers.Dense(
            1, kernel_initializer=initializer(), name="dense_prediction", dtype=self.dtype_policy
        )
        self.build()

    def build(self, input_shape=None):
        with tf.name_scope(self.name):
            build_in_scope(self.dense, (None, None, self.encoder.hidden_size))
            build_in_scope(self.dense_prediction, (None, None, self.encoder.hidden_size))
        self.built = True

    def call(self, inputs, training=None):
        outputs = dict(self.encoder(inputs, training=training))
        hidden = gelu(self.dense(outputs["sequence_output"]))  # (B, T, H)
        logits = tf.squeeze(self.dense_prediction(hidden), axis=-1)  # (B, T)
        outputs["logits"] = tf.cast(logits, tf.float32)
        return outputs

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": self.dtype_policy.name,
            "encoder": keras.layers.serialize(self.encoder),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
