"""ElectraEncoder: the BERT-shaped transformer that ELECTRA's generator and discriminator share in shape."""

import math

import tensorflow as tf
import tf_keras as keras

from electra_tf.layers.build_utils import build_in_scope
from electra_tf.layers.electra_embeddings import ElectraEmbeddings
from electra_tf.layers.fused_kernels import fuses_kernels
from electra_tf.layers.layer_norm import choose_layer_norms
from electra_tf.models.checkpoint_conversion_mixin import CheckpointConversionMixin
from electra_tf.layers.transformer_layer import TransformerLayer, attention_bias_from_mask
from electra_tf.utils.renamed_arguments import renamed_arguments

INPUT_KEYS = ("input_word_ids", "input_mask", "input_type_ids")


def validate_inputs(inputs, max_sequence_length):
    """Checks an encoder input dict and returns (word_ids, mask, type_ids), int32.

    Missing `input_mask` means no padding; missing `input_type_ids` means one
    segment. Unknown keys, non-matching shapes and sequences longer than the
    position table raise a ValueError saying what was received.
    """
    if not isinstance(inputs, dict):
        raise ValueError(
            "ELECTRA models are called on a dict with keys "
            f"{list(INPUT_KEYS)}; received a {type(inputs).__name__}."
        )
    unknown = sorted(set(inputs) - set(INPUT_KEYS))
    if unknown or "input_word_ids" not in inputs:
        raise ValueError(
            f"Expected input keys {list(INPUT_KEYS)} (`input_word_ids` required); "
            f"received keys {sorted(inputs)}."
        )
    word_ids = tf.cast(inputs["input_word_ids"], tf.int32)
    if word_ids.shape.rank != 2:
        raise ValueError(
            "`input_word_ids` must have shape (batch, seq); received shape "
            f"{word_ids.shape}."
        )
    mask = tf.cast(inputs.get("input_mask", tf.ones_like(word_ids)), tf.int32)
    type_ids = tf.cast(inputs.get("input_type_ids", tf.zeros_like(word_ids)), tf.int32)
    for key, tensor in (("input_mask", mask), ("input_type_ids", type_ids)):
        if not tensor.shape.is_compatible_with(word_ids.shape):
            raise ValueError(
                f"`{key}` must have the shape of `input_word_ids` {word_ids.shape}; "
                f"received shape {tensor.shape}."
            )
    seq_length = word_ids.shape[1]
    if seq_length is not None and seq_length > max_sequence_length:
        raise ValueError(
            f"Sequence length {seq_length} exceeds the model's "
            f"max_sequence_length={max_sequence_length}. Truncate the inputs "
            "(the tokenizer's `max_seq_length`) or use a model with more positions."
        )
    return word_ids, mask, type_ids


ATTENTION_DIRECTIONS = ("left_to_right", "right_to_left")


def padding_free_rows(num_real):
    """How many rows the dense layers of a training step run on in padding-free mode.

    `num_real` rounded up to one of eight sizes per octave (…, 64, 72, 80,
    …, 120, 128, 144, …; at most 1/8 more rows): the XLA kernels of a
    training step (`fused_kernels`) compile once per shape, and the number
    of real tokens changes with nearly every batch. Inference runs on the
    `num_real` rows themselves.

    >>> [int(padding_free_rows(n)) for n in (0, 7, 9, 65, 100, 1000)]
    [0, 7, 9, 72, 104, 1024]
    """
    num_real = tf.cast(num_real, tf.int32)
    octave = tf.floor(tf.math.log(tf.cast(tf.maximum(num_real, 1), tf.float32))
                      / math.log(2.0))  # ⌊log2 n⌋
    step = tf.cast(tf.maximum(tf.pow(2.0, octave - 3.0), 1.0), tf.int32)
    return (num_real + step - 1) // step * step


@renamed_arguments(seq_length="sequence_length")
def directional_attention_bias(sequence_length, direction, dtype):
    """An additive (1, 1, T, T) bias that hides the future ("left_to_right") or the past.

    `sequence_length` is T, the length of the inputs' sequence axis (a tensor's
    dimension, not a job's `max_seq_length`).

    Query row i may attend to key column j when j <= i (left to right) or
    j >= i (right to left); other pairs get -10000, like padding.

    >>> bias = directional_attention_bias(3, "left_to_right", tf.float32)
    >>> (bias[0, 0] < 0).numpy().astype(int).tolist()
    [[0, 1, 1], [0, 0, 1], [0, 0, 0]]
    """
    if direction not in ATTENTION_DIRECTIONS:
        raise ValueError(f"`attention_direction` must be one of {ATTENTION_DIRECTIONS} or None; "
                         f"received {direction!r}.")
    ones = tf.ones((sequence_length, sequence_length), dtype)
    # band_part(-1, 0): the lower triangle (j <= i); (0, -1): the upper one (j >= i).
    allowed = tf.linalg.band_part(ones, -1, 0) if direction == "left_to_right" else \
        tf.linalg.band_part(ones, 0, -1)  # (T, T)
    return ((1.0 - allowed) * tf.cast(-10000.0, dtype))[None, None]  # (1, 1, T, T)


@keras.utils.register_keras_serializable(package="electra_tf")
class ElectraEncoder(CheckpointConversionMixin, keras.Model):
    """The ELECTRA/BERT transformer encoder.

    Embeddings (word + position + token type, LayerNorm eps 1e-12, dropout),
    a dense projection when `embedding_size != hidden_size` (ELECTRA-Small
    projects 128 → 256), then `num_layers` post-LN transformer blocks with
    exact GELU.

    Called on `{"input_word_ids", "input_mask", "input_type_ids"}` (int32,
    (batch, seq)), it returns:
        - `sequence_output`: (batch, seq, hidden_size), the last layer.
        - `pooled_output`: (batch, hidden_size), the last layer's [CLS] vector.
          ELECTRA has no pooler: the original fine-tuning code classifies from
          this vector directly (BERT's tanh pooler is not part of the model).
        - `encoder_outputs`: list of `num_layers` (batch, seq, hidden_size)
          tensors, one per block.

    Args:
        vocab_size: number of WordPiece ids (30522 for the released models).
        hidden_size: transformer width.
        num_layers: number of transformer blocks.
        num_heads: attention heads.
        intermediate_size: feed-forward width.
        head_size: width of each head; None means `hidden_size // num_heads`.
            Set by structured pruning (`prune_heads_and_neurons`), which
            removes heads and keeps the width of the others.
        embedding_size: embedding table width; None means `hidden_size`.
        max_sequence_length: number of learned positions.
        type_vocab_size: number of segment ids.
        dropout_rate: dropout everywhere (the releases use 0.1).
        initializer_range: stddev of the truncated-normal initializer (0.02).
        layer_norm_epsilon: LayerNorm epsilon (1e-12 in the releases).
        embedding_layer: an `ElectraEmbeddings` to share, e.g. the
            discriminator's when building a generator. Its sizes must match.

    Example:
    >>> encoder = ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=2,
    ...                          num_heads=2, intermediate_size=16, embedding_size=4)
    >>> ids = tf.constant([[2, 5, 3, 0]])
    >>> out = encoder({"input_word_ids": ids, "input_mask": tf.constant([[1, 1, 1, 0]]),
    ...                "input_type_ids": tf.zeros_like(ids)})
    >>> out["sequence_output"].shape, out["pooled_output"].shape, len(out["encoder_outputs"])
    (TensorShape([1, 4, 8]), TensorShape([1, 8]), 2)
    """

    model_kind = "encoder"

    def __init__(
        self,
        vocab_size,
        hidden_size,
        num_layers,
        num_heads,
        intermediate_size,
        embedding_size=None,
        max_sequence_length=512,
        type_vocab_size=2,
        dropout_rate=0.1,
        initializer_range=0.02,
        layer_norm_epsilon=1e-12,
        embedding_layer=None,
        head_size=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        embedding_size = embedding_size or hidden_size
        if isinstance(embedding_layer, dict):
            # From get_config(): a part of this encoder, so in this encoder's dtype policy (a
            # config whose "dtype" was changed, e.g. to "mixed_bfloat16", changes it too).
            embedding_layer = keras.layers.deserialize({
                **embedding_layer, "config": {**embedding_layer["config"], "dtype": self.dtype_policy}})
        if embedding_layer is not None:
            expected = (vocab_size, embedding_size, max_sequence_length, type_vocab_size)
            received = (
                embedding_layer.vocab_size,
                embedding_layer.embedding_size,
                embedding_layer.max_sequence_length,
                embedding_layer.type_vocab_size,
            )
            if expected != received:
                raise ValueError(
                    "The shared `embedding_layer` does not fit this encoder: "
                    "(vocab_size, embedding_size, max_sequence_length, type_vocab_size) "
                    f"is {received} for the layer but {expected} for the encoder."
                )
        if num_layers < 1:
            raise ValueError(f"`num_layers` must be >= 1; received {num_layers}.")
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.embedding_size = embedding_size
        self.max_sequence_length = max_sequence_length
        self.type_vocab_size = type_vocab_size
        self.dropout_rate = dropout_rate
        self.initializer_range = initializer_range
        self.layer_norm_epsilon = layer_norm_epsilon
        self.head_size = head_size

        # === Layers ===
        self.embedding_layer = embedding_layer or ElectraEmbeddings(
            vocab_size=vocab_size,
            embedding_size=embedding_size,
            max_sequence_length=max_sequence_length,
            type_vocab_size=type_vocab_size,
            dropout_rate=dropout_rate,
            initializer_range=initializer_range,
            layer_norm_epsilon=layer_norm_epsilon,
            name="embeddings",
            dtype=self.dtype_policy,
        )
        self.embedding_projection = None
        if embedding_size != hidden_size:
            self.embedding_projection = keras.layers.Dense(
                hidden_size,
                kernel_initializer=keras.initializers.TruncatedNormal(
                    stddev=initializer_range
                ),
                name="embeddings_project",
                dtype=self.dtype_policy,
            )
        self.transformer_layers = [
            TransformerLayer(
                hidden_size=hidden_size,
                num_heads=num_heads,
                intermediate_size=intermediate_size,
                dropout_rate=dropout_rate,
                initializer_range=initializer_range,
                layer_norm_epsilon=layer_norm_epsilon,
                head_size=head_size,
                name=f"transformer_layer_{i}",
                dtype=self.dtype_policy,
            )
            for i in range(num_layers)
        ]
        self.build()

    def build(self, input_shape=None):
        with tf.name_scope(self.name):
            if not self.embedding_layer.built:
                build_in_scope(self.embedding_layer)
            if self.embedding_projection is not None:
                build_in_scope(self.embedding_projection, (None, None, self.embedding_size))
            for layer in self.transformer_layers:
                build_in_scope(layer, (None, None, self.hidden_size))
        self.built = True

    def call(self, inputs, training=None, remove_padding=False, attention_direction=None):
        """The encoder outputs (see the class docstring) for an input dict.

        `attention_direction="left_to_right"` lets each position attend only to
        itself and the positions before it, `"right_to_left"` only to itself and
        those after it: the two towers of Electric's cloze generator. None (the
        default) attends both ways, as BERT and ELECTRA do.

        `remove_padding=True` embeds, normalises and runs every dense layer
        on the batch's real tokens only (FasterTransformer's "remove
        padding"): attention gathers them back onto the padded grid, so the
        real positions get the same values, and a batch of uneven lengths
        costs its number of real tokens
        rather than batch × longest. Padded positions of `sequence_output` and
        `encoder_outputs` are then 0. A row with no real token at all is
        run on its first position alone (its outputs are its own, but not
        those of the padded grid). The dynamic shapes keep it from XLA.
        In a training step on a CPU host the rows are padded up to one of a
        few sizes (`padding_free_rows`) for the XLA kernels' sake.
        """
        word_ids, mask, type_ids = validate_inputs(inputs, self.max_sequence_length)
        attention_bias = attention_bias_from_mask(mask, self.compute_dtype)  # (B, 1, 1, T)
        if attention_direction is not None:
            if remove_padding:
                raise ValueError("`attention_direction` and `remove_padding=True` do not combine; "
                                 "received both. Pass one of them.")
            attention_bias += directional_attention_bias(tf.shape(word_ids)[1], attention_direction,
                                                         self.compute_dtype)  # (B, 1, T, T)
        row_index = grid_index = position_ids = None
        if remove_padding:
            grid_shape = tf.shape(word_ids)  # (B, T)
            real = mask > 0  # (B, T)
            # A row without any real token keeps its first position, so that its
            # outputs come from its own tokens, as in the padded grid, and not
            # from another row's.
            empty_row = tf.logical_not(tf.reduce_any(real, axis=1, keepdims=True))  # (B, 1)
            real = tf.reshape(real | (empty_row & (tf.range(grid_shape[1]) == 0)), [-1])  # (B·T,)
            token_index = tf.cast(tf.where(real)[:, 0], tf.int32)  # (N,) real tokens
            num_real = tf.size(token_index)
            # The rows every layer runs on, embeddings included: the N real tokens,
            # then copies of the grid's first position up to R (see
            # `padding_free_rows`), which no grid position reads and no output keeps.
            row_index = token_index  # (R,), R = N at inference
            if training is True and fuses_kernels():
                num_rows = padding_free_rows(num_real)
                row_index = tf.pad(token_index, [[0, num_rows - num_real]])  # (R,)
            # Each grid position's row among the N real tokens (padding: the
            # previous real token, masked out in attention).
            grid_index = tf.maximum(tf.cumsum(tf.cast(real, tf.int32)) - 1, 0)  # (B·T,)
            # expand_dims, not [tf.newaxis]: grappler's shape inference then knows the rows'
            # count is row_index's, the same as the attention output's, and TF's oneDNN
            # rewrite runs the residual adds inside the dense kernels (a slice's unknown
            # axis is a new unknown: without a projection, no fused add).
            word_ids, type_ids = [tf.expand_dims(tf.gather(tf.reshape(ids, [-1]), row_index), 0)
                                  for ids in (word_ids, type_ids)]  # (1, R)
            position_ids = tf.expand_dims(row_index % grid_shape[1], 0)  # (1, R)

        def embed_and_stack():  # [embeddings, each layer's output], (B, T, H) or (1, R, H)
            x = self.embedding_layer(word_ids, type_ids, training=training,
                                     position_ids=position_ids)  # (B, T, E) or (1, R, E)
            # A shared embedding layer may compute in another dtype than this encoder (a
            # float32 generator on a mixed_bfloat16 discriminator's embeddings).
            x = tf.cast(x, self.compute_dtype)
            if self.embedding_projection is not None:
                x = self.embedding_projection(x)  # (B, T, H) or (1, R, H)
            states = [x]
            for layer in self.transformer_layers:
                states.append(layer(states[-1], attention_bias, training=training,
                                    token_index=row_index, grid_index=grid_index))
            return states

        # At inference on a CPU host the LayerNorms (the embeddings' and the stack's) are
        # one oneDNN kernel each on many rows, Keras' ops on few (see layers/layer_norm.py);
        # `rows` has the shape of the rows they normalise. Layers inside a wrapper (pruning's)
        # have no norm of their own here: Keras' ops.
        first_norm = getattr(next(iter(self.transformer_layers), None), "attention_layer_norm",
                             None)
        rows = tf.expand_dims(word_ids, -1)  # (B, T, 1) or (1, R, 1)
        states = choose_layer_norms(embed_and_stack, rows, first_norm, training)
        encoder_outputs = states[1:]
        x = states[-1]
        if not remove_padding:
            return {
                "sequence_output": x,
                "pooled_output": x[:, 0, :],  # [CLS]
                "encoder_outputs": encoder_outputs,
            }
        padded = [
            tf.reshape(
                tf.scatter_nd(token_index[:, None], output[0, :num_real],
                              [grid_shape[0] * grid_shape[1], self.hidden_size]),
                [grid_shape[0], grid_shape[1], self.hidden_size],
            )  # (B, T, H), 0 at padding
            for output in encoder_outputs
        ]
        # [CLS] straight from the real tokens: a classifier then needs no scatter.
        cls_index = tf.gather(grid_index, tf.range(grid_shape[0]) * grid_shape[1])  # (B,)
        return {
            "sequence_output": padded[-1],
            "pooled_output": tf.gather(x[0], cls_index),  # (B, H), [CLS]
            "encoder_outputs": padded,
        }

    @property
    def word_embeddings(self):
        """The (vocab_size, embedding_size) table, tied to the generator's output layer."""
        return self.embedding_layer.word_embeddings

    def get_config(self):
        # Keras' own Model.get_config() is for functional models; a subclassed
        # model lists its constructor arguments, exactly.
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": self.dtype_policy.name,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "intermediate_size": self.intermediate_size,
            "embedding_size": self.embedding_size,
            "max_sequence_length": self.max_sequence_length,
            "type_vocab_size": self.type_vocab_size,
            "dropout_rate": self.dropout_rate,
            "initializer_range": self.initializer_range,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            # A shared layer is serialized by value; the owner of both models
            # (the pretrainer) re-ties it when it is rebuilt.
            "embedding_layer": keras.layers.serialize(self.embedding_layer),
            "head_size": self.head_size,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def encoder_argument(encoder):
    """The `encoder` a wrapping model was given: an `ElectraEncoder`, or its config from `get_config`.

    Raises a ValueError naming what was received for anything else.
    """
    if isinstance(encoder, dict):  # from get_config()
        encoder = keras.layers.deserialize(encoder)
    if not isinstance(encoder, ElectraEncoder):
        raise ValueError(
            f"`encoder` must be an ElectraEncoder; received {type(encoder).__name__}."
        )
    return encoder
