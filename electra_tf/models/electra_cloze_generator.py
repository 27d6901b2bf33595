"""ElectraClozeGenerator: Electric's two-tower cloze model, q(x_t | every other token) at every position."""

import tensorflow as tf
import tf_keras as keras

from electra_tf.layers.build_utils import build_in_scope
from electra_tf.layers.transformer_layer import gelu
from electra_tf.models.electra_encoder import encoder_argument


@keras.utils.register_keras_serializable(package="electra_tf")
class ElectraClozeGenerator(keras.Model):
    """A cloze model that predicts every token from all the others in one pass, without masking.

    Two encoders read the sequence, one left to right and one right to left
    (causal attention each way). Position t takes the left-to-right state at
    t-1 (it has seen x_1..x_{t-1}) and the right-to-left state at t+1 (seen
    x_{t+1}..x_T), so x_t itself is never seen; the concatenation goes through
    dense(embedding_size) → GELU → LayerNorm → the tied word embeddings, as in
    google-research/electra's `TwoTowerClozeTransformer` (Baevski et al. 2019).
    Electric needs q(x_t | context) at every position, which a masked LM gives
    only at the positions it masked.

    Returns a dict: `logits`, float32 (batch, seq, vocab_size). The first and
    last positions of a row have one side's context only ([CLS] and [SEP]).

    Args:
        left_to_right: an `ElectraEncoder`; its word embeddings are the output layer.
        right_to_left: an `ElectraEncoder` of the same sizes (it may share the embeddings).

    Example:
    >>> from electra_tf.models.presets import build_from_preset
    >>> ltr = build_from_preset("tiny", "encoder")
    >>> rtl = build_from_preset("tiny", "encoder", embedding_layer=ltr.embedding_layer)
    >>> cloze = ElectraClozeGenerator(ltr, rtl)
    >>> cloze({"input_word_ids": tf.constant([[101, 2023, 102]])})["logits"].shape
    TensorShape([1, 3, 30522])
    """

    def __init__(self, left_to_right, right_to_left, **kwargs):
        super().__init__(**kwargs)
        left_to_right = encoder_argument(left_to_right)
        right_to_left = encoder_argument(right_to_left)
        if (left_to_right.vocab_size, left_to_right.hidden_size) != (
                right_to_left.vocab_size, right_to_left.hidden_size):
            raise ValueError(
                "The two towers must have one vocabulary and width; received (vocab_size, "
                f"hidden_size) {(left_to_right.vocab_size, left_to_right.hidden_size)} and "
                f"{(right_to_left.vocab_size, right_to_left.hidden_size)}.")
        self.left_to_right = left_to_right
        self.right_to_left = right_to_left
        # === Layers ===
        self.dense = keras.layers.Dense(
            left_to_right.embedding_size,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=left_to_right.initializer_range),
            name="dense",
            dtype=self.dtype_policy,
        )
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=left_to_right.layer_norm_epsilon, name="layer_norm", dtype=self.dtype_policy
        )
        self.build()

    @property
    def encoder(self):
        """The left-to-right tower (its embedding layer is the one tied to a discriminator)."""
        return self.left_to_right

    def build(self, input_shape=None):
        with tf.name_scope(self.name):
            build_in_scope(self.dense, (None, None, 2 * self.left_to_right.hidden_size))
            build_in_scope(self.layer_norm, (None, None, self.left_to_right.embedding_size))
            self.output_bias = self.add_weight(
                "output_bias", shape=(self.left_to_right.vocab_size,), initializer="zeros"
            )
        self.built = True

    def call(self, inputs, training=None):
        forward = self.left_to_right(inputs, training=training,
                                     attention_direction="left_to_right")["sequence_output"]  # (B, T, H)
        backward = self.right_to_left(inputs, training=training,
                                      attention_direction="right_to_left")["sequence_output"]  # (B, T, H)
        # Position t: forward state of t-1 and backward state of t+1 (wrapping at the ends,
        # where [CLS] and [SEP] sit; the original's `roll`).
        hidden = tf.concat([tf.roll(forward, 1, axis=1), tf.roll(backward, -1, axis=1)], -1)  # (B, T, 2H)
        hidden = self.layer_norm(gelu(self.dense(hidden)))  # (B, T, E)
        embeddings = tf.cast(self.left_to_right.word_embeddings, hidden.dtype)  # (V, E)
        logits = tf.einsum("bte,ve->btv", hidden, embeddings)  # (B, T, V)
        return {"logits": tf.cast(logits, tf.float32) + tf.cast(self.output_bias, tf.float32)}

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": self.dtype_policy.name,
            "left_to_right": keras.layers.serialize(self.left_to_right),
            "right_to_left": keras.layers.serialize(self.right_to_left),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
