"""A TF-Hub style preprocessor SavedModel: strings in, encoder inputs out.

It has the interface of TF-Hub's `bert_en_uncased_preprocess`, so code written
for that model works with ours unchanged:

    preprocessor = tf.saved_model.load(path)          # after `import tensorflow_text`
    preprocessor(strings)                             # (batch,) -> encoder inputs, seq 128
    preprocessor.tokenize(strings)                    # (batch, (words), (pieces)) int32
    preprocessor.bert_pack_inputs([a, b], seq_length=64)   # sentence pairs

The ops are TensorFlow and tensorflow-text ops only: the reloading process
needs `import tensorflow_text` (as for TF-Hub's preprocessors), never
electra_tf. The ids are those of `ElectraTokenizer`, whose WordPiece model is
compiled into the graph as a constant; `assets/vocab.txt` and
`assets/do_lower_case.txt` describe it for people and other tools.
"""

import os
import shutil
import tempfile

import tensorflow as tf
import tensorflow_text as tf_text

from electra_tf.preprocessing.electra_packer import longest_first_lengths
from electra_tf.preprocessing.electra_tokenizer import DEFAULT_VOCAB_PATH, ElectraTokenizer
from electra_tf.utils.atomic_directory import atomic_directory
from electra_tf.utils.renamed_arguments import renamed_arguments
from electra_tf.utils.checks import is_integer

# TF-Hub's BERT preprocessors pack to 128 tokens unless told otherwise.
DEFAULT_SEQ_LENGTH = 128
VOCAB_ASSET = "vocab.txt"
LOWER_CASE_ASSET = "do_lower_case.txt"


@renamed_arguments(cls_id="cls_token_id", sep_id="sep_token_id", pad_id="pad_token_id",
                   seq_length="max_seq_length")
def pack_inputs(segments, max_seq_length, cls_token_id, sep_token_id, pad_token_id):
    """Packs one or two segments into encoder inputs of a run-time `max_seq_length`.

    The rule of `ElectraPacker` (`[CLS] A [SEP] B [SEP]`, Hugging Face's
    longest-first truncation), with `max_seq_length` a tensor, so that one saved
    function serves every length, as TF-Hub's `bert_pack_inputs` does.

    Args:
        segments: list of 1 or 2 int32 `tf.RaggedTensor`s, (batch, (pieces))
            or (batch, (words), (pieces)) as `tokenize` returns them.
        max_seq_length: int scalar (Python or tensor), >= 2 + len(segments) - 1.
        cls_token_id, sep_token_id, pad_token_id: the special token ids.

    Returns:
        `{"input_word_ids", "input_mask", "input_type_ids"}`, int32, (batch, max_seq_length).
    """
    segments = [
        segment.merge_dims(1, -1) if segment.ragged_rank > 1 else segment
        for segment in segments
    ]  # (batch, (pieces)) each
    max_seq_length = tf.cast(max_seq_length, tf.int64)
    budget = max_seq_length - len(segments) - 1  # minus [CLS] and each [SEP]
    lengths = [segment.row_lengths() for segment in segments]  # int64 (batch,)
    if len(segments) == 1:
        keeps = [tf.minimum(lengths[0], budget)]
    else:
        keeps = longest_first_lengths(lengths[0], lengths[1], budget)
    segments = [
        # position < keep, row by row: the first `keep` pieces.
        tf.ragged.boolean_mask(segment, tf.ragged.range(length) < keep[:, tf.newaxis])
        for segment, length, keep in zip(segments, lengths, keeps)
    ]
    word_ids, type_ids = tf_text.combine_segments(
        segments, start_of_sequence_id=cls_token_id, end_of_segment_id=sep_token_id
    )  # (batch, (pieces + specials)) each
    word_ids, mask = tf_text.pad_model_inputs(
        word_ids, max_seq_length=max_seq_length, pad_value=pad_token_id
    )  # (batch, max_seq_length) each
    type_ids, _ = tf_text.pad_model_inputs(type_ids, max_seq_length=max_seq_length)
    return {
        "input_word_ids": tf.cast(word_ids, tf.int32),
        "input_mask": tf.cast(mask, tf.int32),
        "input_type_ids": tf.cast(type_ids, tf.int32),
    }


@renamed_arguments(seq_length="max_seq_length")
def build_preprocessor_module(tokenizer, max_seq_length=DEFAULT_SEQ_LENGTH):
    """The `tf.Module` that `export_preprocessor_saved_model` saves (vocabulary asset aside).

    Functions are closures over `tokenizer`, so the Keras layer itself is not
    saved: only its graph and the constant WordPiece model.
    """
    _check_seq_length(max_seq_length, minimum=2)
    special_ids = dict(cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id,
                       pad_token_id=tokenizer.pad_token_id)
    strings_spec = tf.TensorSpec([None], tf.string, name="strings")
    # autograph=False throughout: no Python control flow on tensors here, and
    # converting the tokenizer's code only slows the export down.

    tokenize = tf.Module()
    tokenize.__call__ = tf.function(
        tokenizer.tokenize_words, input_signature=[strings_spec], autograph=False
    )

    @tf.function(input_signature=[], autograph=False)
    def get_special_tokens_dict():
        # The keys of TF-Hub's preprocessors (Model Garden's BertTokenizer).
        return {
            "vocab_size": tf.constant(tokenizer.vocab_size, tf.int32),
            "start_of_sequence_id": tf.constant(tokenizer.cls_token_id, tf.int32),
            "end_of_segment_id": tf.constant(tokenizer.sep_token_id, tf.int32),
            "padding_id": tf.constant(tokenizer.pad_token_id, tf.int32),
            "mask_id": tf.constant(tokenizer.mask_token_id, tf.int32),
        }

    tokenize.get_special_tokens_dict = get_special_tokens_dict

    # The packing graph is large (~1,500 ops): trace it once per number of
    # segments and call it from every signature, rather than once per signature.
    @tf.function(autograph=False)
    def pack(segments, max_seq_length):
        return pack_inputs(segments, max_seq_length, **special_ids)

    pieces_spec = tf.RaggedTensorSpec([None, None], tf.int32, 1)  # (batch, (pieces))
    for num_segments in (1, 2):
        pack.get_concrete_function([pieces_spec] * num_segments, tf.TensorSpec([], tf.int32))

    @tf.function(autograph=False)
    def bert_pack(inputs, seq_length=max_seq_length):  # TF-Hub's keyword
        segments = [
            segment.merge_dims(1, -1) if segment.ragged_rank > 1 else segment
            for segment in inputs
        ]  # (batch, (pieces)) each
        return pack(segments, tf.cast(seq_length, tf.int32))

    for ragged_rank in (1, 2):  # (batch, (pieces)) and (batch, (words), (pieces))
        for num_segments in (1, 2):
            segment_spec = tf.RaggedTensorSpec([None] * (ragged_rank + 1), tf.int32, ragged_rank)
            bert_pack.get_concrete_function(
                [segment_spec] * num_segments, seq_length=tf.TensorSpec([], tf.int32)
            )
    bert_pack_inputs = tf.Module()
    bert_pack_inputs.__call__ = bert_pack

    @tf.function(input_signature=[strings_spec], autograph=False)
    def preprocess(strings):
        return pack([tokenizer.tokenize(strings)], tf.constant(max_seq_length, tf.int32))

    module = tf.Module()
    module.__call__ = preprocess
    module.tokenize = tokenize
    module.bert_pack_inputs = bert_pack_inputs
    module.do_lower_case = tf.Variable(tokenizer.lower_case, trainable=False, name="do_lower_case")
    # TF-Hub's preprocessors name it seq_length.
    module.seq_length = tf.Variable(max_seq_length, trainable=False, name="seq_length")
    return module


@renamed_arguments(seq_length="max_seq_length")
def save_preprocessor(tokenizer, path, max_seq_length=DEFAULT_SEQ_LENGTH):
    """Writes the preprocessor SavedModel into the (new, empty) directory `path`."""
    module = build_preprocessor_module(tokenizer, max_seq_length)
    with tempfile.TemporaryDirectory() as staging:
        # Assets keep their file names: copy them under the names users look for.
        vocab = os.path.join(staging, VOCAB_ASSET)
        shutil.copyfile(tokenizer.vocab_path or DEFAULT_VOCAB_PATH, vocab)
        lower_case = os.path.join(staging, LOWER_CASE_ASSET)
        with open(lower_case, "w") as f:
            f.write(f"{str(tokenizer.lower_case).lower()}\n")
        module.vocab_file = tf.saved_model.Asset(vocab)
        module.do_lower_case_file = tf.saved_model.Asset(lower_case)
        tf.saved_model.save(
            module, path, signatures={"serving_default": module.__call__.get_concrete_function()}
        )


@renamed_arguments(seq_length="max_seq_length")
def export_preprocessor_saved_model(
    path, tokenizer=None, max_seq_length=DEFAULT_SEQ_LENGTH, overwrite=False
):
    """Exports a TF-Hub style preprocessor SavedModel (see the module docstring).

    Args:
        path: output directory, written atomically.
        tokenizer: an `ElectraTokenizer`; None means the packaged uncased one.
        max_seq_length: the length `preprocessor(strings)` packs to.
        overwrite: replace an existing `path`.

    >>> import tempfile, tensorflow_text
    >>> path = tempfile.mkdtemp() + "/preprocessor"
    >>> export_preprocessor_saved_model(path, max_seq_length=8)
    >>> preprocessor = tf.saved_model.load(path)
    >>> preprocessor(tf.constant(["Hello world."]))["input_word_ids"].numpy()
    array([[ 101, 7592, 2088, 1012,  102,    0,    0,    0]], dtype=int32)
    >>> preprocessor.tokenize(tf.constant(["Hello tokenizers"])).to_list()
    [[[7592], [19204, 17629, 2015]]]
    >>> sorted(os.listdir(os.path.join(path, "assets")))
    ['do_lower_case.txt', 'vocab.txt']
    """
    tokenizer = ElectraTokenizer() if tokenizer is None else tokenizer
    if not isinstance(tokenizer, ElectraTokenizer):
        raise ValueError(
            f"`tokenizer` must be an ElectraTokenizer or None; received {type(tokenizer).__name__}."
        )
    _check_seq_length(max_seq_length, minimum=2)
    with atomic_directory(path, overwrite=overwrite) as tmp:
        save_preprocessor(tokenizer, tmp, max_seq_length)


def _check_seq_length(max_seq_length, minimum):
    if not is_integer(max_seq_length) or max_seq_length < minimum:
        raise ValueError(
            f"`max_seq_length` must be an integer >= {minimum} ([CLS] and [SEP] take "
            f"positions); received max_seq_length={max_seq_length!r}."
        )
