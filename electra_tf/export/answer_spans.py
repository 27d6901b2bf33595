"""In-graph question answering for exported SavedModels: pieces with character offsets, answers.

The exported QA model maps raw (question, context) strings to an answer and
its place in the context, with TensorFlow and tensorflow-text ops only.

Offsets are those of whole words: the context is split into words on the
original text (whitespace; punctuation and CJK ideographs are words of their
own, as in `ElectraTokenizer`), each word is tokenized on its own, and every
word piece points at its word's characters. An answer therefore covers whole
words (the original BERT/ELECTRA SQuAD code also answers with whole words of
the context), while the ids are those of `ElectraTokenizer.tokenize(context)`.
"""

import tensorflow as tf
import tensorflow_text as tf_text

from electra_tf.preprocessing.electra_tokenizer import KEEP_REGEX, WHITESPACE_REGEX
from electra_tf.tasks.squad_postprocessing import best_spans, context_mask
from electra_tf.utils.renamed_arguments import renamed_arguments

# On the original text: runs of whitespace separate words; punctuation and CJK
# ideographs are words. (ElectraTokenizer maps whitespace to " " first, then splits.)
SPLIT_REGEX = f"{WHITESPACE_REGEX}+|{KEEP_REGEX}"


def tokenize_with_char_offsets(tokenizer, strings):
    """Word pieces of `strings`, each with its word's Unicode character span.

    Args:
        tokenizer: an `ElectraTokenizer`.
        strings: tf.string (batch,).

    Returns:
        `(ids, starts, ends)`, int32 `tf.RaggedTensor`s (batch, (pieces)):
        `strings[i][starts[i][j]:ends[i][j]]` (Python, code points) is the word
        that piece j comes from.
    """
    words, byte_starts, byte_ends = tf_text.regex_split_with_offsets(
        strings, SPLIT_REGEX, KEEP_REGEX
    )  # (batch, (words)) each, byte offsets
    char_starts, char_ends = bytes_to_chars(strings, [byte_starts, byte_ends])
    # Each word on its own; a word that cleaning empties (control characters) gets no pieces.
    pieces = tokenizer.tokenize(words.flat_values)  # (words, (pieces))
    per_word = pieces.row_lengths()  # (words,)
    ids = words.with_flat_values(pieces).merge_dims(1, 2)  # (batch, (pieces))

    def per_piece(values):  # (batch, (words)) -> (batch, (pieces)): the value of each piece's word
        return ids.with_flat_values(tf.repeat(values.flat_values, per_word))

    return ids, per_piece(char_starts), per_piece(char_ends)


def bytes_to_chars(strings, byte_offsets):
    """UTF-8 byte offsets into `strings` -> Unicode code point offsets.

    Args:
        strings: tf.string (batch,).
        byte_offsets: a list of int `tf.RaggedTensor`s (batch, (n)), each offset
            at a character boundary (or at the end of its string).

    Returns:
        The same list as int32 code point offsets.

    >>> starts = tf.ragged.constant([[0, 3, 6]], dtype=tf.int64)
    >>> bytes_to_chars(tf.constant(["é é x"]), [starts])[0].to_list()
    [[0, 2, 4]]
    """
    # The index of the character at each offset's byte.
    _, char_bytes = tf.strings.unicode_decode_with_offsets(strings, "UTF-8")  # (batch, (chars))
    num_bytes = tf.strings.length(strings)[:, tf.newaxis]  # (batch, 1)
    char_bytes = tf.concat([char_bytes, tf.cast(num_bytes, char_bytes.dtype)], axis=1)
    # Pad past the end with a byte offset larger than any, to keep rows sorted.
    sorted_bytes = char_bytes.to_tensor(default_value=tf.int64.max)  # (batch, chars + 1)

    def to_chars(offsets):  # (batch, (n)) byte offsets -> character offsets
        dense = offsets.to_tensor()  # (batch, max_n)
        chars = tf.searchsorted(sorted_bytes, tf.cast(dense, tf.int64), out_type=tf.int32)
        return tf.RaggedTensor.from_tensor(chars, lengths=offsets.row_lengths())

    return [to_chars(offsets) for offsets in byte_offsets]


@renamed_arguments(sep_id="sep_token_id")
def extract_answers(model, inputs, contexts, starts, ends, sep_token_id):
    """Runs a QA model on packed `[CLS] question [SEP] context [SEP]` rows and reads the answers.

    Args:
        model: an `ElectraQuestionAnswering`.
        inputs: the packed inputs, int32 (batch, seq).
        contexts: tf.string (batch,), the raw contexts.
        starts, ends: int32 (batch, (pieces)), character spans of the context's
            pieces (from `tokenize_with_char_offsets`).
        sep_token_id: the [SEP] id.

    Returns:
        {"answer" tf.string, "start_char" int32, "end_char" int32 (exclusive),
        "score" float32}, each (batch,). A row with no context gets "" and score -inf.
    """
    outputs = model(inputs, training=False, remove_padding=True)  # dense layers on real tokens
    mask = context_mask(inputs, sep_token_id=sep_token_id)  # (batch, seq)
    start_index, end_index, score = best_spans(
        outputs["start_logits"], outputs["end_logits"], mask,
        start_top_index=outputs.get("start_top_index"),
    )  # (batch,) each
    # The context's first piece sits after [CLS] question [SEP]: the first type id 1.
    offset = tf.argmax(tf.cast(inputs["input_type_ids"], tf.int32), axis=1, output_type=tf.int32)
    found = tf.math.is_finite(score)  # False: no context piece in the window
    last = tf.maximum(tf.cast(starts.row_lengths(), tf.int32) - 1, 0)

    def char_at(spans, index):  # spans (batch, (pieces)), index (batch,) of the row
        piece = tf.clip_by_value(index - offset, 0, last)  # valid even where not found
        # A zero column keeps the gather valid when every context is empty.
        dense = tf.concat([spans.to_tensor(), tf.zeros_like(found[:, tf.newaxis], tf.int32)], 1)
        value = tf.gather(dense, piece, batch_dims=1)  # (batch,)
        return tf.where(found, value, 0)

    start_char, end_char = char_at(starts, start_index), char_at(ends, end_index)
    answer = tf.strings.substr(contexts, start_char, end_char - start_char, unit="UTF8_CHAR")
    return {"answer": answer, "start_char": start_char, "end_char": end_char, "score": score}
