"""ElectraEmbeddings: word + position + token-type embeddings, LayerNorm, dropout.

This is the block that ELECTRA's generator and discriminator share: the
original code builds it once under the `electra/embeddings` scope and the
generator reuses it. Pass one instance to both encoders to tie them.
"""

import tensorflow as tf
import tf_keras as keras

from electra_tf.layers.build_utils import build_in_scope
from electra_tf.layers.dropout import Dropout
from electra_tf.layers.layer_norm import apply_layer_norm
from electra_tf.utils.checks import is_integer


@keras.utils.register_keras_serializable(package="electra_tf")
class ElectraEmbeddings(keras.layers.Layer):
    """Sums word, position and token-type embeddings, then LayerNorm and dropout.

    Args:
        vocab_size: number of WordPiece ids.
        embedding_size: width of the embedding table (128 for ELECTRA-Small).
        max_sequence_length: number of learned positions (512 in the releases).
        type_vocab_size: number of segment ids (2: sentence A and B).
        dropout_rate: dropout after the LayerNorm.
        initializer_range: stddev of the truncated-normal initializer.
        layer_norm_epsilon: 1e-12, as BERT and ELECTRA were trained with.

    Example:
    >>> layer = ElectraEmbeddings(vocab_size=10, embedding_size=4,
    ...                           max_sequence_length=8, type_vocab_size=2)
    >>> ids = tf.constant([[2, 5, 3]])
    >>> layer(ids, tf.zeros_like(ids)).shape
    TensorShape([1, 3, 4])
    """

    def __init__(
        self,
        vocab_size,
        embedding_size,
        max_sequence_length=512,
        type_vocab_size=2,
        dropout_rate=0.1,
        initializer_range=0.02,
        layer_norm_epsilon=1e-12,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for arg, value in (
            ("vocab_size", vocab_size),
            ("embedding_size", embedding_size),
            ("max_sequence_length", max_sequence_length),
            ("type_vocab_size", type_vocab_size),
        ):
            if not is_integer(value) or value < 1:
                raise ValueError(
                    f"`{arg}` must be a positive integer; received {arg}={value!r}."
                )
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.max_sequence_length = max_sequence_length
        self.type_vocab_size = type_vocab_size
        self.dropout_rate = dropout_rate
        self.initializer_range = initializer_range
        self.layer_norm_epsilon = layer_norm_epsilon

        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, name="layer_norm", dtype=self.dtype_policy
        )
        self.dropout = Dropout(dropout_rate, name="dropout", dtype=self.dtype_policy)

    def build(self, input_shape=None):
        def initializer():  # a fresh instance per weight: reused ones repeat values
            return keras.initializers.TruncatedNormal(stddev=self.initializer_range)

        self.word_embeddings = self.add_weight(
            "word_embeddings",
            shape=(self.vocab_size, self.embedding_size),
            initializer=initializer(),
        )
        self.position_embeddings = self.add_weight(
            "position_embeddings",
            shape=(self.max_sequence_length, self.embedding_size),
            initializer=initializer(),
        )
        self.token_type_embeddings = self.add_weight(
            "token_type_embeddings",
            shape=(self.type_vocab_size, self.embedding_size),
            initializer=initializer(),
        )
        build_in_scope(self.layer_norm, (None, None, self.embedding_size))
        super().build(input_shape)

    def call(self, input_word_ids, input_type_ids, training=None, position_ids=None):
        """Embeddings (B, T, E) of `input_word_ids` and `input_type_ids` (B, T).

        `position_ids` (B, T): each token's position; None: 0 .. T-1 in every
        row. The encoder's `remove_padding` passes the real tokens alone, as
        one row (1, R) with their positions in the padded grid.
        """
        if not self.built:
            self.build()
        word = tf.gather(self.word_embeddings, input_word_ids)  # (B, T, E)
        token_type = tf.gather(self.token_type_embeddings, input_type_ids)  # (B, T, E)
        if position_ids is None:
            seq_length = tf.shape(input_word_ids)[1]
            position = self.position_embeddings[:seq_length][None]  # (1, T, E), broadcast over B
        else:
            position = tf.gather(self.position_embeddings, position_ids)  # (B, T, E)
        embeddings = word + token_type + tf.cast(position, word.dtype)
        # One oneDNN kernel on large inputs, inside the encoder's `choose_layer_norms`.
        embeddings = apply_layer_norm(self.layer_norm, embeddings, training)
        return self.dropout(embeddings, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocab_size": self.vocab_size,
                "embedding_size": self.embedding_size,
                "max_sequence_length": self.max_sequence_length,
                "type_vocab_size": self.type_vocab_size,
                "dropout_rate": self.dropout_rate,
                "initializer_range": self.initializer_range,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
