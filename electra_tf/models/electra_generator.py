"""ElectraGenerator: an encoder plus the masked-LM head tied to the word embeddings."""

import tensorflow as tf
import tf_keras as keras

from electra_tf.layers.build_utils import build_in_scope
from electra_tf.layers.transformer_layer import gelu
from electra_tf.models.checkpoint_conversion_mixin import CheckpointConversionMixin
from electra_tf.models.electra_encoder import encoder_argument


def gather_positions(sequence, positions):
    """Gathers vectors at per-example positions.

    Args:
        sequence: (batch, seq, width).
        positions: (batch, num_predictions) int indices into `seq`.

    Returns:
        (batch, num_predictions, width).
    """
    return tf.gather(sequence, tf.cast(positions, tf.int32), batch_dims=1)


@keras.utils.register_keras_serializable(package="electra_tf")
class ElectraGenerator(CheckpointConversionMixin, keras.Model):
    """ELECTRA's generator: a small masked language model.

    Head: dense(embedding_size) → GELU → LayerNorm → matmul with the word
    embedding table (tied, transposed) + a per-token output bias. With
    `masked_lm_positions` (batch, num_predictions) in the inputs it computes
    vocabulary logits only at those positions: the (seq × vocab) logits of
    every token would otherwise dominate the cost of pretraining.

    Returns a dict: `logits`, float32, (batch, num_predictions, vocab_size)
    or (batch, seq, vocab_size), plus the encoder outputs.

    To tie a generator to a discriminator as the original does (shared word,
    position and type embeddings and their LayerNorm), build its encoder with
    `embedding_layer=discriminator.encoder.embedding_layer`.

    Args:
        encoder: an `ElectraEncoder`.

    Example:
    >>> from electra_tf import ElectraDiscriminator
    >>> discriminator = ElectraDiscriminator.from_preset("tiny")
    >>> generator = ElectraGenerator.from_preset(
    ...     "tiny", embedding_layer=discriminator.encoder.embedding_layer)
    >>> ids = tf.constant([[101, 103, 2023, 102]])
    >>> generator({"input_word_ids": ids,
    ...            "masked_lm_positions": tf.constant([[1]])})["logits"].shape
    TensorShape([1, 1, 30522])
    """

    model_kind = "generator"

    def __init__(self, encoder, **kwargs):
        super().__init__(**kwargs)
        encoder = encoder_argument(encoder)
        self.encoder = encoder
        # === Layers ===
        self.dense = keras.layers.Dense(
            encoder.embedding_size,
            kernel_initializer=keras.initializers.TruncatedNormal(
                stddev=encoder.initializer_range
            ),
            name="dense",
            dtype=self.dtype_policy,
        )
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=encoder.layer_norm_epsilon, name="layer_norm", dtype=self.dtype_policy
        )
        self.build()

    def build(self, input_shape=None):
        with tf.name_scope(self.name):
            build_in_scope(self.dense, (None, None, self.encoder.hidden_size))
            build_in_scope(self.layer_norm, (None, None, self.encoder.embedding_size))
            self.output_bias = self.add_weight(
                "output_bias", shape=(self.encoder.vocab_size,), initializer="zeros"
            )
        self.built = True

    def call(self, inputs, training=None):
        if not isinstance(inputs, dict):
            raise ValueError(
                "ElectraGenerator is called on a dict of encoder inputs (and optional "
                f"`masked_lm_positions`); received a {type(inputs).__name__}."
            )
        inputs = dict(inputs)
        positions = inputs.pop("masked_lm_positions", None)
        outputs = dict(self.encoder(inputs, training=training))
        hidden = outputs["sequence_output"]  # (B, T, H)
        if positions is not None:
            hidden = gather_positions(hidden, positions)  # (B, P, H)
        hidden = self.layer_norm(gelu(self.dense(hidden)))  # (B, P, E)
        embeddings = tf.cast(self.encoder.word_embeddings, hidden.dtype)  # (V, E)
        logits = tf.einsum("bpe,ve->bpv", hidden, embeddings)  # (B, P, V)
        logits = tf.cast(logits, tf.float32) + tf.cast(self.output_bias, tf.float32)
        outputs["logits"] = logits
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
