"""ElectraTokenizer: in-graph BERT WordPiece tokenization, id for id what Hugging Face gives.

Runs inside `tf.data.Dataset.map`, Keras models and exported SavedModels: the
vocabulary is compiled into a `tensorflow_text.FastWordpieceTokenizer` model
(a constant), so a saved graph needs no vocabulary file next to it.

Why not `tensorflow_text.BertTokenizer` as is: it lower-cases with
`case_fold_utf8`, which is NFKC_Casefold, while BERT, ELECTRA and Hugging Face
lower-case with a plain Unicode lower-casing. NFKC rewrites characters that
occur in real text ("9 ½ Weeks" becomes "9 1⁄2 weeks", "ﬁ" becomes "fi",
"ß" becomes "ss", full-width letters become ASCII), so its ids differ. The
basic tokenization below is therefore written out with tensorflow-text and
`tf.strings` ops, step for step as `tokenizers.normalizers.BertNormalizer` and
`BertPreTokenizer` (what `transformers.BertTokenizerFast` runs) do it.
"""

import os

import tensorflow as tf
import tensorflow_text as tf_text
import tf_keras as keras

from electra_tf.preprocessing.electra_packer import ElectraPacker
from electra_tf.preprocessing.keras_hub_vocabulary import keras_hub_vocabulary
from electra_tf.utils.renamed_arguments import renamed_attribute

DEFAULT_VOCAB_PATH = os.path.join(os.path.dirname(__file__), "assets", "uncased_vocab.txt")
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# Hugging Face's WordPiece turns a word longer than 100 characters into one
# [UNK]. tensorflow-text counts bytes instead, so give it room for 100
# four-byte characters and apply the 100-character rule ourselves.
MAX_CHARS_PER_WORD = 100
MAX_BYTES_PER_WORD = 4 * MAX_CHARS_PER_WORD

# What BertNormalizer(clean_text=True) maps to a space: \t \n \r and Unicode
# separators (Zs, Zl, Zp). Done before the removal below, which would drop \t \n \r.
WHITESPACE_REGEX = r"[\t\n\r\p{Z}]"
# What clean_text deletes: control, format, private-use characters and U+FFFD.
CONTROL_REGEX = r"[\p{C}\x{FFFD}]"
# BertPreTokenizer splits off every ASCII punctuation character (which
# includes symbols such as $ + < = > ^ ` | ~) and every Unicode P* character.
PUNCTUATION_REGEX = r"[!-/:-@\[-`{-~\p{P}]"
# BertNormalizer(handle_chinese_chars=True) puts spaces around CJK ideographs.
# These are the `tokenizers` ranges; note 0x2B920 where Google's BERT and
# tensorflow-text have 0x2B820.
CJK_REGEX = (
    r"[\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}"
    r"\x{2B740}-\x{2B81F}\x{2B920}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}]"
)
KEEP_REGEX = f"{PUNCTUATION_REGEX}|{CJK_REGEX}"  # split off and kept as words
SPLIT_REGEX = f" +|{KEEP_REGEX}"  # split on, spaces dropped


def read_vocabulary(vocab_path):
    """Reads a WordPiece vocabulary file: one token per line, id = line number.

    Returns the list of tokens. Raises `ValueError` when the file is missing,
    empty, or lacks one of the special tokens [PAD] [UNK] [CLS] [SEP] [MASK].
    """
    if not tf.io.gfile.exists(vocab_path):
        raise ValueError(
            f"Vocabulary file not found: received vocab_path={vocab_path!r}. "
            "Expected a text file with one WordPiece token per line; pass "
            "vocab_path=None to use the packaged BERT uncased vocabulary."
        )
    with tf.io.gfile.GFile(vocab_path, "rb") as f:
        text = f.read().decode("utf-8")
    # Split on "\n" only: str.splitlines() would also split on \x0b, \x1c, \u2028.
    tokens = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    if tokens and tokens[-1] == "":
        tokens.pop()  # the newline that ends the last line
    missing = [token for token in SPECIAL_TOKENS if token not in tokens]
    if missing:
        raise ValueError(
            f"The vocabulary {vocab_path!r} ({len(tokens)} tokens) lacks the special "
            f"tokens {missing}. Expected every one of {list(SPECIAL_TOKENS)} "
            "on a line of its own; add them or use a BERT/ELECTRA vocabulary file."
        )
    return tokens


@keras.utils.register_keras_serializable(package="electra_tf")
class ElectraTokenizer(keras.layers.Layer):
    """Turns strings into BERT WordPiece ids, inside the TensorFlow graph.

    The steps are BERT's "basic tokenization" followed by WordPiece:
    1. clean: map whitespace to " ", delete control and format characters;
    2. if `lower_case`: NFD, strip accents (Mn), lower-case;
    3. split on spaces, split off punctuation and CJK ideographs;
    4. greedy longest-match WordPiece with "##" continuations; a word with no
       match or more than 100 characters becomes [UNK].
    On 71,347 lines of movie reviews and Jane Austen the ids equal those of
    `transformers.BertTokenizerFast` line for line. Text such as "[MASK]" in a
    string is tokenized as text ("[", "mask", "]"), never as the special token.

    Args:
        vocab_path: WordPiece vocabulary file, one token per line. `None`
            means the packaged BERT uncased vocabulary (30,522 tokens) that the
            published ELECTRA checkpoints use.
        lower_case: lower-case and strip accents, as uncased vocabularies
            expect. Set `False` for a cased vocabulary.
        **kwargs: standard layer arguments (`name`, ...).

    Call arguments:
        inputs: string tensor of any shape, e.g. `(batch,)`.

    Returns:
        int32 ids, shape `inputs.shape + (None,)`: a `tf.RaggedTensor`
        `(batch, (pieces))` for a batch of strings, a dense `(pieces,)` tensor
        for one scalar string.

    Example:
    >>> tokenizer = ElectraTokenizer()
    >>> tokenizer(tf.constant(["The café's open!", ""]))
    <tf.RaggedTensor [[1996, 7668, 1005, 1055, 2330, 999], []]>
    >>> tokenizer.pack(tokenizer(["Hello world."]), max_seq_length=6)["input_word_ids"]
    <tf.Tensor: shape=(1, 6), dtype=int32, numpy=array([[ 101, 7592, 2088, 1012,  102,    0]], dtype=int32)>
    """

    def __init__(self, vocab_path=None, lower_case=True, **kwargs):
        kwargs.setdefault("dtype", "int32")
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        if not isinstance(lower_case, bool):
            raise ValueError(
                f"`lower_case` must be True or False; received lower_case={lower_case!r}."
            )
        self.vocab_path = vocab_path
        self.lower_case = lower_case

        tokens = read_vocabulary(DEFAULT_VOCAB_PATH if vocab_path is None else vocab_path)
        # Plain Python containers that Keras does not wrap or track.
        self._vocabulary = _Vocabulary(tokens)
        self.pad_token_id = self._vocabulary.token_to_id["[PAD]"]
        self.unk_token_id = self._vocabulary.token_to_id["[UNK]"]
        self.cls_token_id = self._vocabulary.token_to_id["[CLS]"]
        self.sep_token_id = self._vocabulary.token_to_id["[SEP]"]
        self.mask_token_id = self._vocabulary.token_to_id["[MASK]"]

        # no_pretokenization: the words come from our own basic tokenization.
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=tokens,
            suffix_indicator="##",
            max_bytes_per_word=MAX_BYTES_PER_WORD,
            token_out_type=tf.int32,
            unknown_token="[UNK]",
            no_pretokenization=True,
            support_detokenization=True,
        )

    @classmethod
    def from_keras_hub(cls, preset_dir):
        """The tokenizer of a keras-hub ELECTRA preset directory: its vocabulary and casing.

        The companion of `ElectraEncoder.from_keras_hub(preset_dir)`, which loads the weights;
        see `electra_tf.conversion.keras_hub.load_keras_hub_tokenizer` for how keras-hub's
        case folding differs from BERT's on accented text.

        >>> import tempfile
        >>> from electra_tf import ElectraEncoder
        >>> preset = tempfile.mkdtemp() + "/preset"
        >>> ElectraEncoder.from_preset("tiny").save_keras_hub(preset)
        >>> ElectraTokenizer.from_keras_hub(preset).vocab_size
        30522
        """
        vocab_path, lower_case = keras_hub_vocabulary(preset_dir)
        return cls(vocab_path, lower_case=lower_case)

    # The names of earlier versions; keras-hub's tokenizers say `*_token_id`.
    pad_id = renamed_attribute("pad_id", "pad_token_id")
    unk_id = renamed_attribute("unk_id", "unk_token_id")
    cls_id = renamed_attribute("cls_id", "cls_token_id")
    sep_id = renamed_attribute("sep_id", "sep_token_id")
    mask_id = renamed_attribute("mask_id", "mask_token_id")

    @property
    def vocab_size(self):
        return len(self._vocabulary.tokens)

    def id_to_token(self, id):
        """The token string of one id (a Python int)."""
        if not 0 <= int(id) < self.vocab_size:
            raise ValueError(
                f"`id` must be in [0, {self.vocab_size}); received id={id!r}."
            )
        return self._vocabulary.tokens[int(id)]

    def token_to_id(self, token):
        """The id of one token string, e.g. `token_to_id("##ing")`."""
        if token not in self._vocabulary.token_to_id:
            raise ValueError(
                f"Token {token!r} is not in the vocabulary ({self.vocab_size} tokens). "
                "Use `tokenize` for running text; word pieces after the first "
                "start with '##'."
            )
        return self._vocabulary.token_to_id[token]

    def _words(self, strings):
        """BERT basic tokenization: strings (...) -> words (..., (words))."""
        strings = tf.strings.regex_replace(strings, WHITESPACE_REGEX, " ")
        strings = tf.strings.regex_replace(strings, CONTROL_REGEX, "")
        if self.lower_case:
            # tokenizers' order: decompose, drop accents, then lower-case.
            strings = tf_text.normalize_utf8(strings, "NFD")
            strings = tf.strings.regex_replace(strings, r"\p{Mn}", "")
            # ICU lower-cases a word-final Σ to ς; tokenizers maps each
            # character on its own (Σ -> σ), so do that first.
            strings = tf.strings.regex_replace(strings, "Σ", "σ")
            strings = tf.strings.lower(strings, encoding="utf-8")
        return tf_text.regex_split(strings, SPLIT_REGEX, KEEP_REGEX)

    def tokenize(self, strings):
        """Strings (...) -> int32 word-piece ids (..., (pieces)); see the class."""
        strings = tf.convert_to_tensor(strings)
        scalar = strings.shape.rank == 0
        if scalar:
            strings = strings[tf.newaxis]
        ids = self.tokenize_words(strings).merge_dims(-2, -1)  # (batch, (words * pieces))
        return ids[0] if scalar else ids

    def tokenize_words(self, strings):
        """Strings (batch, ...) -> int32 ids (batch, ..., (words), (pieces)), by word.

        What TF-Hub's `bert_en_uncased_preprocess` calls `tokenize`; `tokenize`
        is this with the word dimension merged away.
        """
        strings = tf.convert_to_tensor(strings)
        if strings.dtype != tf.string or strings.shape.rank == 0:
            raise ValueError(
                f"`ElectraTokenizer` expects strings, batched; received a tensor of "
                f"dtype {strings.dtype.name} and shape {strings.shape}."
            )
        words = self._words(strings)  # (batch, (words))
        too_long = tf.strings.length(words.flat_values, unit="UTF8_CHAR") > MAX_CHARS_PER_WORD
        words = words.with_flat_values(tf.where(too_long, "[UNK]", words.flat_values))
        return self._wordpiece.tokenize(words)  # (batch, (words), (pieces))

    def call(self, inputs):
        return self.tokenize(inputs)

    def detokenize(self, ids):
        """Ids (..., pieces) -> strings (...): pieces joined, "##" merged.

        Lossy: case, accents and the spacing around punctuation are gone, and
        special tokens such as [CLS] or [PAD] come back as text.
        """
        return self._wordpiece.detokenize(ids)

    def pack(self, segments, max_seq_length):
        """Packs one or two segments of ids into fixed-length model inputs.

        See `ElectraPacker`: `[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]`,
        truncated longest-first as `transformers` does, padded with [PAD].
        Returns `{"input_word_ids", "input_mask", "input_type_ids"}`, int32,
        `(batch, max_seq_length)`.
        """
        packer = ElectraPacker(
            max_seq_length=max_seq_length,
            cls_token_id=self.cls_token_id,
            sep_token_id=self.sep_token_id,
            pad_token_id=self.pad_token_id,
        )
        return packer(segments)

    def get_config(self):
        config = super().get_config()
        config.update({"vocab_path": self.vocab_path, "lower_case": self.lower_case})
        return config


class _Vocabulary:
    """Tokens and their ids, kept out of Keras attribute tracking."""

    def __init__(self, tokens):
        self.tokens = tuple(tokens)
        self.token_to_id = {token: index for index, token in enumerate(self.tokens)}
