"""ElectraPacker: one or two segments of word-piece ids -> fixed-length model inputs.

`[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]`, truncated the way
`transformers` does with `truncation="longest_first"`, padded to
`max_seq_length`, in the graph (tf.data, SavedModel).

Why not `tensorflow_text.RoundRobinTrimmer` (nor `WaterfallTrimmer` or
`ShrinkLongestTrimmer`): when both segments overflow and the token budget
(`max_seq_length - 3`) is odd, Hugging Face gives the odd token to the longer
segment (to B on a tie), round-robin always gives it to A. Round-robin agrees
whenever the budget is even; waterfall (fill A first) is a different rule
altogether. `longest_first_lengths` below reproduces the `tokenizers` rule.
"""

import warnings

import tensorflow as tf
import tensorflow_text as tf_text
import tf_keras as keras

from electra_tf.utils.checks import is_integer
from electra_tf.utils.renamed_arguments import renamed_attribute

# Constructor arguments of earlier versions and their names now (keras-hub's).
DEPRECATED_ARGUMENTS = {"cls_id": "cls_token_id", "sep_id": "sep_token_id",
                        "pad_id": "pad_token_id"}


def longest_first_lengths(length_a, length_b, budget):
    """How many leading tokens of A and of B to keep; HF `longest_first`.

    Tokens are dropped from the end of whichever segment is longer until the
    pair fits; when both must shrink they split the budget in halves and the
    longer one (B on a tie) takes the odd token.

    Args:
        length_a, length_b: int tensors `(batch,)`, segment lengths.
        budget: int, tokens left after the special tokens.

    Returns:
        `(keep_a, keep_b)`, int tensors `(batch,)`, `keep_a + keep_b <= budget`.
    """
    budget = tf.cast(budget, length_a.dtype)
    half = budget // 2
    cap_a = tf.where(length_a > length_b, budget - half, half)  # (batch,)
    cap_b = budget - cap_a
    # A segment shorter than its cap leaves the rest of the budget to the other.
    keep_a = tf.minimum(length_a, tf.maximum(cap_a, budget - length_b))
    keep_b = tf.minimum(length_b, tf.maximum(cap_b, budget - length_a))
    return keep_a, keep_b


@keras.utils.register_keras_serializable(package="electra_tf")
class ElectraPacker(keras.layers.Layer):
    """Packs one or two segments of word-piece ids into ELECTRA's inputs.

    Args:
        max_seq_length: length of every packed row, special tokens included.
        cls_token_id: id of [CLS], which starts every row (101 in BERT's vocabulary).
        sep_token_id: id of [SEP], which ends every segment (102).
        pad_token_id: id of [PAD], which fills the rest of the row (0).
            (`cls_id`, `sep_id`, `pad_id` in earlier versions, still accepted with a
            DeprecationWarning.)
        **kwargs: standard layer arguments (`name`, ...).

    Call arguments:
        inputs: one segment or a list/tuple of two: int `tf.RaggedTensor`s
            `(batch, (pieces))`, or dense `(pieces,)` tensors for one example,
            as `ElectraTokenizer` returns them.

    Returns:
        `{"input_word_ids", "input_mask", "input_type_ids"}`, int32, shape
        `(batch, max_seq_length)` (or `(max_seq_length,)` for one example).
        Type ids are 0 for `[CLS] A [SEP]`, 1 for `B [SEP]`, 0 on padding.

    Example:
    >>> packer = ElectraPacker(max_seq_length=8)
    >>> a = tf.ragged.constant([[7592, 2088, 1012]])
    >>> b = tf.ragged.constant([[2129, 2024, 2017, 1029]])
    >>> packer([a, b])["input_word_ids"]  # 5 places for 7 pieces: B, the longer, keeps 3
    <tf.Tensor: shape=(1, 8), dtype=int32, numpy=array([[ 101, 7592, 2088,  102, 2129, 2024, 2017,  102]], dtype=int32)>
    """

    def __init__(self, max_seq_length=512, cls_token_id=101, sep_token_id=102, pad_token_id=0,
                 **kwargs):
        renamed = {old: kwargs.pop(old) for old in DEPRECATED_ARGUMENTS if old in kwargs}
        for old, value in renamed.items():
            warnings.warn(f"ElectraPacker({old}=...) is deprecated; use "
                          f"{DEPRECATED_ARGUMENTS[old]}=... .", DeprecationWarning, stacklevel=2)
        cls_token_id = renamed.get("cls_id", cls_token_id)
        sep_token_id = renamed.get("sep_id", sep_token_id)
        pad_token_id = renamed.get("pad_id", pad_token_id)
        kwargs.setdefault("dtype", "int32")
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        if not is_integer(max_seq_length) or max_seq_length < 2:
            raise ValueError(
                "`max_seq_length` must be an integer >= 2 ([CLS] and [SEP] take two "
                f"positions; a pair needs >= 3); received max_seq_length={max_seq_length!r}."
            )
        for arg, value in (("cls_token_id", cls_token_id), ("sep_token_id", sep_token_id),
                           ("pad_token_id", pad_token_id)):
            if not is_integer(value) or value < 0:
                raise ValueError(
                    f"`{arg}` must be a non-negative integer id; received {arg}={value!r}."
                )
        self.max_seq_length = max_seq_length
        self.cls_token_id = cls_token_id
        self.sep_token_id = sep_token_id
        self.pad_token_id = pad_token_id

    cls_id = renamed_attribute("cls_id", "cls_token_id")
    sep_id = renamed_attribute("sep_id", "sep_token_id")
    pad_id = renamed_attribute("pad_id", "pad_token_id")

    def call(self, inputs):
        segments = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if len(segments) not in (1, 2):
            raise ValueError(
                f"`ElectraPacker` packs one or two segments; received {len(segments)}. "
                "Pass `segment` or `[segment_a, segment_b]`."
            )
        if len(segments) == 2 and self.max_seq_length < 3:
            raise ValueError(
                "A pair needs max_seq_length >= 3 for [CLS] A [SEP] B [SEP]; received "
                f"max_seq_length={self.max_seq_length}."
            )
        segments = [_check_segment(segment) for segment in segments]
        single_example = not isinstance(segments[0], tf.RaggedTensor)
        if any(isinstance(segment, tf.RaggedTensor) == single_example for segment in segments):
            raise ValueError(
                "Segments must all be ragged (a batch) or all dense (one example); "
                f"received {[type(segment).__name__ for segment in segments]}."
            )
        if single_example:
            segments = [
                tf.RaggedTensor.from_tensor(segment[tf.newaxis]) for segment in segments
            ]  # (1, (pieces))

        budget = self.max_seq_length - len(segments) - 1  # minus [CLS] and each [SEP]
        lengths = [segment.row_lengths() for segment in segments]
        if len(segments) == 1:
            keeps = [tf.minimum(lengths[0], budget)]
        else:
            keeps = longest_first_lengths(lengths[0], lengths[1], budget)
        segments = [
            # position < keep, row by row: keeps the first `keep` pieces.
            tf.ragged.boolean_mask(segment, tf.ragged.range(length) < keep[:, tf.newaxis])
            for segment, length, keep in zip(segments, lengths, keeps)
        ]

        word_ids, type_ids = tf_text.combine_segments(
            segments, start_of_sequence_id=self.cls_token_id, end_of_segment_id=self.sep_token_id
        )  # (batch, (pieces + specials)) each
        word_ids, mask = tf_text.pad_model_inputs(
            word_ids, max_seq_length=self.max_seq_length, pad_value=self.pad_token_id
        )  # (batch, max_seq_length) each
        type_ids, _ = tf_text.pad_model_inputs(type_ids, max_seq_length=self.max_seq_length)
        outputs = {
            "input_word_ids": tf.cast(word_ids, tf.int32),
            "input_mask": tf.cast(mask, tf.int32),
            "input_type_ids": tf.cast(type_ids, tf.int32),
        }
        if single_example:
            outputs = {key: value[0] for key, value in outputs.items()}
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "max_seq_length": self.max_seq_length,
                "cls_token_id": self.cls_token_id,
                "sep_token_id": self.sep_token_id,
                "pad_token_id": self.pad_token_id,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        # Layers saved by earlier versions say "cls_id", ...: read them quietly.
        config = {DEPRECATED_ARGUMENTS.get(key, key): value for key, value in config.items()}
        return cls(**config)


def _check_segment(segment):
    """Validates one segment, ragged `(batch, (pieces))` or dense `(pieces,)`; int32."""
    if isinstance(segment, tf.RaggedTensor):
        if segment.shape.rank != 2:
            raise ValueError(
                "A ragged segment must have shape (batch, (pieces)); received shape "
                f"{segment.shape}."
            )
        return tf.cast(segment, tf.int32)
    segment = tf.convert_to_tensor(segment)
    if segment.shape.rank != 1 or not segment.dtype.is_integer:
        raise ValueError(
            "A segment must be an int `tf.RaggedTensor` (batch, (pieces)) or an int "
            f"tensor (pieces,) for one example; received dtype {segment.dtype.name} "
            f"and shape {segment.shape}."
        )
    return tf.cast(segment, tf.int32)
