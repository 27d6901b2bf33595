"""In-graph tagging for exported SavedModels: words with character offsets, tags, entities.

The exported tagger maps raw strings to word tags and entities with
TensorFlow and tensorflow-text ops only, as `electra-tf predict tag` does in
Python (`electra_tf.tasks.run_tagging.predict_tags`):

- words are `split_words`' (`WORD_REGEX` is its regex in RE2 syntax), with
  their Unicode code point spans in the original text;
- each word is tokenized on its own, the pieces are packed as one segment
  (`[CLS] pieces [SEP]`, truncated), and a word's tag is the arg-max at its
  first piece; a word truncated away (or without pieces) is tagged "O";
- entities are chunks of tags as `tagging_metrics.get_entities` reads them
  (seqeval's default "conlleval" mode: IOB1, IOB2/BIO and IOBES alike).
"""

import tensorflow as tf
import tensorflow_text as tf_text

from electra_tf.export.answer_spans import bytes_to_chars
from electra_tf.tasks.tagging_metrics import OUTSIDE, _split_tag

# `prediction_inputs.split_words` (`\w+(?:[-']\w+)*|[^\w\s]`, Python's Unicode
# \w and \s) in RE2, whose \w and \s are ASCII only: Python's \w is letters,
# numbers and "_" (not combining marks); its \s is \p{Z} plus these controls.
_WORD_CHAR = r"[\p{L}\p{N}_]"
_SPACE = r"[\t\n\x{0b}\f\r\x{1c}-\x{1f}\x{85}\p{Z}]"
_OTHER_CHAR = r"[^\p{L}\p{N}_\t\n\x{0b}\f\r\x{1c}-\x{1f}\x{85}\p{Z}]"
WORD_REGEX = f"{_WORD_CHAR}+(?:[-']{_WORD_CHAR}+)*|{_OTHER_CHAR}"

# Tag prefixes as small integers, for the chunking rules below.
_PREFIXES = {OUTSIDE: 0, "B": 1, "I": 2, "E": 3, "S": 4}


def split_words_with_char_offsets(strings):
    """`split_words` in the graph: words and their code point spans.

    Args:
        strings: tf.string (batch,).

    Returns:
        `(words, starts, ends)`, `tf.RaggedTensor`s (batch, (words)): tf.string
        words and int32 offsets, `strings[i][starts[i][j]:ends[i][j]] == words[i][j]`
        (Python, code points).

    >>> words, starts, ends = split_words_with_char_offsets(tf.constant(["Zoë's café, ok."]))
    >>> [w.decode() for w in words[0].numpy()], starts[0].numpy().tolist()
    (["Zoë's", 'café', ',', 'ok', '.'], [0, 6, 10, 12, 14])
    """
    words, byte_starts, byte_ends = tf_text.regex_split_with_offsets(
        strings, f"{WORD_REGEX}|{_SPACE}+", WORD_REGEX
    )  # (batch, (words)) each; whitespace runs are dropped
    starts, ends = bytes_to_chars(strings, [byte_starts, byte_ends])
    return words, starts, ends


def tokenize_words_for_tagging(tokenizer, strings):
    """Words of `strings` and their pieces, packed as the tagging job packs them.

    Returns:
        `(ids, words)`: int32 ids (batch, (pieces)), one segment for
        `tokenizer.pack`, and `(words, starts, ends, pieces_per_word)`,
        (batch, (words)) each, for `tag_words`.
    """
    words, starts, ends = split_words_with_char_offsets(strings)  # (batch, (words)) each
    pieces = tokenizer.tokenize(words.flat_values)  # (words, (pieces)), each word on its own
    ids = words.with_flat_values(pieces).merge_dims(1, 2)  # (batch, (pieces))
    per_word = words.with_flat_values(tf.cast(pieces.row_lengths(), tf.int32))
    return ids, (words, starts, ends, per_word)


def tag_words(model, inputs, strings, words, label_names):
    """Runs a tagger on packed `[CLS] pieces [SEP]` rows; reads word tags and entities.

    Args:
        model: an `ElectraTokenClassifier`.
        inputs: the packed inputs, int32 (batch, seq).
        strings: tf.string (batch,), the raw texts.
        words: `(words, starts, ends, pieces_per_word)` from `tokenize_words_for_tagging`.
        label_names: tag names in id order.

    Returns:
        Dense outputs, padded to the batch's most words (W) and entities (E):
        "words", "tags" tf.string (batch, W) ("" padded); "tag_probability"
        float32 (batch, W) (softmax of the chosen tag; 0 for words truncated
        away and padding); "word_start_char", "word_end_char" int32 (batch, W)
        (-1 padded); "num_words" int32 (batch,); "entity_text", "entity_label"
        tf.string (batch, E); "entity_start_char", "entity_end_char" int32
        (batch, E); "num_entities" int32 (batch,).
    """
    words, starts, ends, per_word = words
    logits = model(inputs, training=False)  # (batch, seq, num_classes)
    row = tf.cast(words.value_rowids(), tf.int32)  # (words,): the text of each word
    # A word's first piece: after [CLS] and the pieces of the words before it in its text.
    flat_counts = per_word.flat_values  # (words,)
    before = tf.cumsum(flat_counts, exclusive=True)  # pieces before each word, over the batch
    text_pieces = tf.reduce_sum(per_word, axis=1)  # (batch,)
    pieces_before_text = tf.cumsum(text_pieces, exclusive=True)  # (batch,)
    position = 1 + before - tf.gather(pieces_before_text, row)  # (words,)
    # Kept (as first_piece_positions): the word has pieces and its first one
    # was packed, i.e. lies before the row's final [SEP].
    num_real = tf.reduce_sum(inputs["input_mask"], axis=1)  # (batch,) [CLS] pieces [SEP]
    kept = (flat_counts > 0) & (position < tf.gather(num_real, row) - 1)
    safe = tf.where(kept, position, 0)
    word_logits = tf.gather_nd(logits, tf.stack([row, safe], axis=1))  # (words, num_classes)
    names = list(label_names) + [OUTSIDE]  # the last: words truncated away
    tag_id = tf.where(kept, tf.argmax(word_logits, axis=-1, output_type=tf.int32),
                      len(label_names))  # (words,)
    probability = tf.where(kept, tf.reduce_max(tf.nn.softmax(word_logits), axis=-1), 0.0)
    entities = _group_entities(tag_id, words, starts, ends, strings, names)

    def dense(values, default):  # (words,) -> (batch, W)
        return words.with_flat_values(values).to_tensor(default_value=default)

    return {
        "words": words.to_tensor(default_value=""),
        "tags": dense(tf.gather(tf.constant(names), tag_id), ""),
        "tag_probability": dense(probability, 0.0),
        "word_start_char": starts.to_tensor(default_value=-1),
        "word_end_char": ends.to_tensor(default_value=-1),
        "num_words": tf.cast(words.row_lengths(), tf.int32),
        **entities,
    }


def _group_entities(tag_id, words, starts, ends, strings, names):
    """`get_entities` on every text at once: tag ids (words,) -> padded entity outputs."""
    parts = [_split_tag(name) for name in names]
    types = sorted({type_ for _, type_ in parts})  # "" (of "O") first
    prefix = tf.gather([_PREFIXES[p] for p, _ in parts], tag_id)  # (words,)
    type_id = tf.gather([types.index(t) for _, t in parts], tag_id)  # (words,)
    index_in_row = tf.range(tf.size(tag_id)) - tf.gather(
        tf.cast(words.row_starts(), tf.int32), tf.cast(words.value_rowids(), tf.int32))
    first = tf.equal(index_in_row, 0)
    last = tf.equal(index_in_row, tf.gather(tf.cast(words.row_lengths(), tf.int32),
                                            tf.cast(words.value_rowids(), tf.int32)) - 1)
    o, b, i, e, s = (_PREFIXES[p] for p in (OUTSIDE, "B", "I", "E", "S"))

    def shifted(values, by, edge, fill):  # the previous (by=1) or next (by=-1) word's value
        padded = tf.concat([[fill], values, [fill]], 0)
        moved = padded[1 - by:tf.size(values) + 1 - by]
        return tf.where(edge, fill, moved)

    def isin(values, *codes):
        return tf.reduce_any(tf.stack([tf.equal(values, c) for c in codes]), axis=0)

    previous_prefix, previous_type = shifted(prefix, 1, first, o), shifted(type_id, 1, first, 0)
    next_prefix, next_type = shifted(prefix, -1, last, o), shifted(type_id, -1, last, 0)
    # get_entities' rules; a text's end reads as an "O" after it.
    starts_chunk = (isin(prefix, b, s) | (isin(previous_prefix, e, s, o) & isin(prefix, i, e))
                    | (tf.not_equal(prefix, o) & tf.not_equal(previous_type, type_id)))
    ends_chunk = (isin(prefix, e, s) | (isin(prefix, b, i) & isin(next_prefix, b, s, o))
                  | (tf.not_equal(prefix, o) & tf.not_equal(type_id, next_type)))
    # Every chunk starts before it ends and none overlap: the k-th start pairs
    # with the k-th end.
    first_word = tf.where(starts_chunk)[:, 0]  # (entities,)
    last_word = tf.where(ends_chunk)[:, 0]  # (entities,)
    entity_row = tf.gather(words.value_rowids(), first_word)  # (entities,)
    start_char = tf.gather(starts.flat_values, first_word)
    end_char = tf.gather(ends.flat_values, last_word)
    text = tf.strings.substr(tf.gather(strings, entity_row), start_char, end_char - start_char,
                             unit="UTF8_CHAR")
    label = tf.gather(tf.constant(types), tf.gather(type_id, first_word))

    def dense(values, default):  # (entities,) -> (batch, E)
        ragged = tf.RaggedTensor.from_value_rowids(values, entity_row, nrows=words.nrows())
        return ragged.to_tensor(default_value=default)

    return {
        "entity_text": dense(text, ""),
        "entity_label": dense(label, ""),
        "entity_start_char": dense(start_char, -1),
        "entity_end_char": dense(end_char, -1),
        "num_entities": tf.math.bincount(tf.cast(entity_row, tf.int32),
                                         minlength=tf.cast(words.nrows(), tf.int32),
                                         maxlength=tf.cast(words.nrows(), tf.int32),
                                         dtype=tf.int32),
    }
