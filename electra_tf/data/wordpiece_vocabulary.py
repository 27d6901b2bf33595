"""The job behind `electra-tf vocab`: learn a WordPiece vocabulary from a text corpus.

    tokens = train_wordpiece_vocabulary("corpus/*.txt.gz", 8000, "vocab.txt")
    tokenizer = ElectraTokenizer(vocab_path="vocab.txt")

The learner is tensorflow-text's `bert_vocab_from_dataset` (the algorithm of
BERT's own vocabulary), run on words split by BERT's basic tokenizer, which our
`ElectraTokenizer` reproduces.
"""

import os
import tempfile

import tensorflow as tf

from electra_tf.data.corpus_files import corpus_lines
from electra_tf.preprocessing.electra_tokenizer import SPECIAL_TOKENS
from electra_tf.utils.checks import is_integer

# Lines per batch handed to the learner's word counter.
_LINES_PER_BATCH = 1024
# A word piece must occur this often to enter the vocabulary (tensorflow-text's
# default): rarer pieces are noise. On a small corpus this, not `vocab_size`,
# limits the vocabulary (Persuasion alone supports ~1,500 pieces).
_MIN_PIECE_COUNT = 10


def train_wordpiece_vocabulary(file_pattern, vocab_size, output_path, lower_case=True,
                               overwrite=False):
    """Learns about `vocab_size` WordPiece tokens and writes them, one per line.

    The special tokens come first, so their ids are [PAD]=0, [UNK]=1, [CLS]=2,
    [SEP]=3, [MASK]=4; then every character seen and its "##" continuation,
    then the learned pieces. The learner aims at `vocab_size` and may return
    fewer tokens (a small corpus) or slightly more.

    Args:
        file_pattern: glob of plain or gzipped text files.
        vocab_size: the target number of tokens, special tokens included.
        output_path: the vocabulary file; written to a temporary file that
            replaces it only when complete.
        lower_case: lower-case and strip accents first (an uncased vocabulary);
            tokenize with `ElectraTokenizer(lower_case=...)` set the same way.
        overwrite: replace an existing `output_path`.

    Returns:
        The list of tokens written.

    Example, on a corpus of one sentence repeated (each word occurs often enough):

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with open(os.path.join(folder, "corpus.txt"), "w") as f:
    ...     _ = f.write("The cat sat on the mat.\\n" * 20)
    >>> tokens = train_wordpiece_vocabulary(os.path.join(folder, "*.txt"), 60,
    ...                                     os.path.join(folder, "vocab.txt"))
    >>> tokens[:5], tokens[15:20]
    (['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'], ['the', 'cat', 'mat', 'on', 'sat'])
    >>> with open(os.path.join(folder, "vocab.txt")) as f:
    ...     f.read().split() == tokens
    True
    """
    from tensorflow_text.tools.wordpiece_vocab import bert_vocab_from_dataset

    if not is_integer(vocab_size) or vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(
            f"`vocab_size` must be an int above {len(SPECIAL_TOKENS)} (the special tokens); "
            f"received {vocab_size!r}."
        )
    if os.path.isdir(output_path):
        raise ValueError(f"Output path {output_path!r} is a directory; expected a file path.")
    if os.path.exists(output_path) and not overwrite:
        raise ValueError(
            f"Vocabulary file {output_path!r} already exists; choose another path or pass "
            "overwrite=True (--overwrite)."
        )
    next(corpus_lines(file_pattern), None)  # fail now, naming the glob, if nothing matches
    lines = tf.data.Dataset.from_generator(
        lambda: corpus_lines(file_pattern), output_signature=tf.TensorSpec((), tf.string)
    ).batch(_LINES_PER_BATCH)
    tokens = bert_vocab_from_dataset.bert_vocab_from_dataset(
        lines,
        vocab_size=vocab_size,
        reserved_tokens=list(SPECIAL_TOKENS),
        bert_tokenizer_params={"lower_case": lower_case},
        learn_params={"lower_thresh": _MIN_PIECE_COUNT},
    )
    if len(tokens) == len(SPECIAL_TOKENS):
        raise ValueError(
            f"{file_pattern!r} holds no text to learn a vocabulary from; expected UTF-8 "
            "text, one sentence or paragraph per line."
        )
    directory = os.path.dirname(os.path.abspath(output_path))
    os.makedirs(directory, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(output_path)}.tmp-", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as f:
            f.write("".join(f"{token}\n" for token in tokens))
        os.chmod(tmp, 0o644)  # mkstemp's 0o600 would hide the vocabulary from other users
        os.replace(tmp, output_path)
    except BaseException:
        os.remove(tmp)
        raise
    return tokens
