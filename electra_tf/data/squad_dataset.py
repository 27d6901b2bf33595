"""SQuAD 1.1/2.0 for extractive QA: read examples, cut them into windows of word pieces, batch them.

    examples, skipped = read_squad_file("dev-v2.0.json")       # or load_squad_tfds("squad/v2.0")
    features = create_squad_features(examples, ElectraTokenizer())
    dataset = make_squad_dataset(features, batch_size=32)      # (inputs, labels)

Windows are `[CLS] question [SEP] context piece [SEP]` (type ids 0, then 1),
the original code's layout: the question is cut to `max_query_length` (64)
word pieces, and a context longer than what is left of `max_seq_length`
(384) is covered by overlapping windows `doc_stride` (128) pieces apart.

Offsets: the tokenizer lower-cases, strips accents and splits off
punctuation, so word pieces are not substrings of the context. As in the
original and Hugging Face code, the context is split into its
whitespace-separated words; each word's pieces are then aligned, character
by character, with the word's normalized text, which gives every piece its
character span in the *original* context. An answer is the context slice
from its first piece's start to its last piece's end ("Nieuwl" of
"Nieuwland" is the pieces "ni ##eu ##wl").

Bad data: a question or context that is empty, or an answer whose text is
not at its `answer_start` in the context, raises a ValueError naming the
question, or with `errors="skip"` is skipped and counted by reason.
"""

import collections
import dataclasses
import json
import re
import unicodedata

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from electra_tf.utils.checks import is_integer

DEFAULT_MAX_SEQ_LENGTH = 384
DEFAULT_DOC_STRIDE = 128
DEFAULT_MAX_QUERY_LENGTH = 64
ERRORS = ("raise", "skip")
# Words per tokenizer call: large enough to amortize the call, small enough for memory.
_WORDS_PER_CALL = 50_000


@dataclasses.dataclass
class SquadExample:
    """One question about one context; `answers` are [{"text", "answer_start"}] (may be [])."""

    id: str
    question: str
    context: str
    answers: list = dataclasses.field(default_factory=list)
    is_impossible: bool = False


@dataclasses.dataclass
class SquadFeatures:
    """Model inputs for every window of every example, and what maps them back.

    inputs: {"input_word_ids", "input_mask", "input_type_ids"}, int32 (windows, seq).
    labels: {"start_positions", "end_positions", "is_impossible"}, int32 (windows,):
        the gold answer's first and last piece, or 0 ([CLS]) and is_impossible 1
        when the window does not hold it (or the question has no answer).
    example_index: int (windows,), the window's example in `examples`.
    token_char_spans: int32 (windows, seq, 2), [start, end) characters of
        each context piece in its example's context; -1 elsewhere.
    token_is_max_context: bool (windows, seq), True where no other window
        sees the piece with more context on both sides.
    skipped: {reason: count} of examples left out.
    """

    examples: list
    inputs: dict
    labels: dict
    example_index: np.ndarray
    token_char_spans: np.ndarray
    token_is_max_context: np.ndarray
    skipped: dict


def _check_errors(errors):
    if errors not in ERRORS:
        raise ValueError(f"`errors` must be one of {list(ERRORS)}; received errors={errors!r}.")


def check_example(example):
    """None if `example` is usable, else the reason ("empty_question", ...) and a message."""
    if not example.question or not example.question.strip():
        return "empty_question", f"question {example.id!r} has an empty question text"
    if not example.context or not example.context.strip():
        return "empty_context", f"question {example.id!r} has an empty context"
    for answer in example.answers:
        start, text = answer.get("answer_start"), answer.get("text")
        if not is_integer(start) or not isinstance(text, str) or not text.strip():
            return "bad_answer", (
                f"question {example.id!r} has an answer {answer!r}; expected "
                '{"text": non-empty string, "answer_start": int}')
        if example.context[start:start + len(text)] != text:
            return "answer_not_in_context", (
                f"question {example.id!r}: answer {text!r} is not at answer_start={start} of "
                f"the context (found {example.context[start:start + len(text)]!r})")
    return None


def filter_examples(examples, errors="raise"):
    """Keeps the usable examples; returns (examples, {reason: count})."""
    _check_errors(errors)
    kept, skipped = [], collections.Counter()
    for example in examples:
        problem = check_example(example)
        if problem is None:
            kept.append(example)
        elif errors == "skip":
            skipped[problem[0]] += 1
        else:
            raise ValueError(f"{problem[1]}. Fix the data, or skip and count such questions "
                             "with errors='skip' (--skip-bad-examples).")
    return kept, dict(skipped)


def read_squad_file(path, errors="raise"):
    """Reads an official SQuAD v1.1 or v2.0 JSON file.

    Args:
        path: the file ({"version", "data": [{"title", "paragraphs": [{"context",
            "qas": [{"id", "question", "answers", "is_impossible"?}]}]}]}).
        errors: "raise" on the first bad question, or "skip" and count.

    Returns:
        (list of `SquadExample`, {reason: count} of skipped questions).

    >>> import json, tempfile
    >>> path = tempfile.mkdtemp() + "/squad.json"
    >>> _ = open(path, "w").write(json.dumps({"data": [{"paragraphs": [{
    ...     "context": "ELECTRA was published in 2020.", "qas": [
    ...     {"id": "q1", "question": "When?", "answers": [{"text": "2020", "answer_start": 25}]},
    ...     {"id": "q2", "question": "Who?", "answers": [], "is_impossible": True}]}]}]}))
    >>> examples, skipped = read_squad_file(path)
    >>> [(e.id, e.is_impossible) for e in examples], skipped
    ([('q1', False), ('q2', True)], {})
    """
    try:
        with tf.io.gfile.GFile(path, "r") as f:
            data = json.load(f)
    except (OSError, tf.errors.OpError) as error:
        raise ValueError(f"Cannot read the SQuAD file {path!r}: {error}") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path!r} is not JSON ({error}); expected an official SQuAD "
                         "v1.1/v2.0 file.") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ValueError(
            f"{path!r} is not a SQuAD file: expected a JSON object with a 'data' list of "
            '{"title", "paragraphs": [{"context", "qas"}]}; received '
            f"{type(data).__name__} with keys {sorted(data) if isinstance(data, dict) else []}.")
    examples = []
    for article in data["data"]:
        for paragraph in article.get("paragraphs", []):
            if "context" not in paragraph or "qas" not in paragraph:
                raise ValueError(f"{path!r}: a paragraph lacks 'context' or 'qas'; it has "
                                 f"keys {sorted(paragraph)}.")
            for qa in paragraph["qas"]:
                missing = {"id", "question"} - set(qa)
                if missing:
                    raise ValueError(f"{path!r}: a question lacks {sorted(missing)}; it has "
                                     f"keys {sorted(qa)}.")
                examples.append(SquadExample(
                    id=str(qa["id"]),
                    question=qa["question"],
                    context=paragraph["context"],
                    answers=list(qa.get("answers", [])),
                    is_impossible=bool(qa.get("is_impossible", False)),
                ))
    return filter_examples(examples, errors)


def load_squad_tfds(name="squad/v1.1", split="train", data_dir=None, errors="raise"):
    """SQuAD from tensorflow-datasets ("squad/v1.1" or "squad/v2.0"), as `SquadExample`s.

    Returns (examples, {reason: count}) like `read_squad_file`. Needs the
    dataset downloaded (or prepared) under `data_dir`.
    """
    import tensorflow_datasets as tfds

    if name not in ("squad/v1.1", "squad/v2.0"):
        raise ValueError(f"`name` must be 'squad/v1.1' or 'squad/v2.0'; received {name!r}.")
    examples = []
    for row in tfds.as_numpy(tfds.load(name, split=split, data_dir=data_dir)):
        answers = row["answers"]
        examples.append(SquadExample(
            id=row["id"].decode("utf-8"),
            question=row["question"].decode("utf-8"),
            context=row["context"].decode("utf-8"),
            answers=[{"text": text.decode("utf-8"), "answer_start": int(start)}
                     for text, start in zip(answers["text"], answers["answer_start"])],
            is_impossible=bool(row.get("is_impossible", False)),
        ))
    return filter_examples(examples, errors)


def _normalized_characters(word, lower_case):
    """The word as the tokenizer sees it, and each character's source index in `word`."""
    characters, sources = [], []
    for index, character in enumerate(word):
        if lower_case:  # the tokenizer's order: NFD, drop accents (Mn), lower-case
            decomposed = unicodedata.normalize("NFD", character)
            character = "".join(c for c in decomposed if unicodedata.category(c) != "Mn").lower()
        for c in character:
            if unicodedata.category(c).startswith("C") or c == "\ufffd":
                continue  # deleted by the tokenizer's cleaning
            characters.append(c)
            sources.append(index)
    return "".join(characters), sources


def piece_char_spans(word, pieces, lower_case=True):
    """[start, end) characters of `word` covered by each of its word pieces.

    Args:
        word: one whitespace-free word of the original text.
        pieces: its word-piece strings ("##" continuations, "[UNK]").
        lower_case: whether the tokenizer lower-cases and strips accents.

    Returns:
        list of (start, end), one per piece.

    >>> piece_char_spans("Café's", ["cafe", "'", "s"])
    [(0, 4), (4, 5), (5, 6)]
    >>> piece_char_spans("x☃y", ["x", "[UNK]", "y"])
    [(0, 1), (1, 2), (2, 3)]
    """
    text, sources = _normalized_characters(word, lower_case)
    if not text:
        return [(0, len(word))] * len(pieces)
    spans, unknown, position = [], [], 0

    def to_word(begin, end):  # normalized [begin, end) -> word characters
        begin = min(begin, len(text) - 1)
        end = max(min(end, len(text)), begin + 1)
        return sources[begin], sources[end - 1] + 1

    for piece in pieces:
        if piece == "[UNK]":
            unknown.append(len(spans))
            spans.append(None)
            continue
        body = piece[2:] if piece.startswith("##") else piece
        found = text.find(body, position)
        if found < 0:
            found = position  # never seen: keep going from where we are
        for index in unknown:  # an [UNK] covers what lies between its neighbours
            spans[index] = to_word(position, max(found, position + 1))
        unknown = []
        spans.append(to_word(found, found + len(body)))
        position = found + len(body)
    for index in unknown:
        spans[index] = to_word(position, len(text))
    return spans


def _tokenize_contexts(contexts, tokenizer, piece_strings):
    """{context: (piece ids, (pieces, 2) char spans)} for each distinct context."""
    words = {}  # context -> list of (start, end) of its words
    flat = []
    for context in contexts:
        if context not in words:
            words[context] = [(m.start(), m.end()) for m in re.finditer(r"\S+", context)]
            flat += [context[start:end] for start, end in words[context]]
    pieces = []
    for begin in range(0, len(flat), _WORDS_PER_CALL):
        pieces += tokenizer(tf.constant(flat[begin:begin + _WORDS_PER_CALL])).to_list()
    tokenized, cursor = {}, 0
    for context, spans in words.items():
        ids, char_spans = [], []
        for start, end in spans:
            word_pieces = pieces[cursor]
            cursor += 1
            strings = [piece_strings[i] for i in word_pieces]
            for a, b in piece_char_spans(context[start:end], strings, tokenizer.lower_case):
                char_spans.append((start + a, start + b))
            ids += word_pieces
        tokenized[context] = (ids, np.array(char_spans, np.int32).reshape(-1, 2))
    return tokenized


def _windows(num_pieces, window_length, doc_stride):
    """(start, length) of the windows over `num_pieces` context pieces (the original rule)."""
    windows, start = [], 0
    while True:
        length = min(num_pieces - start, window_length)
        windows.append((start, length))
        if start + length >= num_pieces:
            return windows
        start += min(length, doc_stride)


def _answer_pieces(char_spans, answer):
    """First and last context piece of `answer`, or None when no piece overlaps it."""
    start = answer["answer_start"]
    end = start + len(answer["text"])
    overlapping = np.nonzero((char_spans[:, 1] > start) & (char_spans[:, 0] < end))[0]
    if len(overlapping) == 0:
        return None
    return int(overlapping[0]), int(overlapping[-1])


def create_squad_features(examples, tokenizer, max_seq_length=DEFAULT_MAX_SEQ_LENGTH,
                          doc_stride=DEFAULT_DOC_STRIDE,
                          max_query_length=DEFAULT_MAX_QUERY_LENGTH, training=False,
                          errors="raise", progress=False):
    """Cuts every example into windows of word pieces; see the module docstring.

    Args:
        examples: `SquadExample`s (from `read_squad_file` or `load_squad_tfds`).
        tokenizer: an `ElectraTokenizer` with the encoder's vocabulary.
        max_seq_length: pieces per window, special tokens included (384).
        doc_stride: pieces between the starts of consecutive windows (128).
        max_query_length: the question is cut to this many pieces (64).
        training: examples for training need an answer (or is_impossible);
            those without one are skipped ("no_answer") or raise.
        errors: "raise" or "skip" (and count) for bad examples.
        progress: show a progress bar over the examples (full SQuAD takes minutes).

    Returns:
        `SquadFeatures`.
    """
    _check_errors(errors)
    if max_query_length < 1 or doc_stride < 1:
        raise ValueError("`max_query_length` and `doc_stride` must be >= 1; received "
                         f"max_query_length={max_query_length}, doc_stride={doc_stride}.")
    if max_seq_length < max_query_length + 4:
        raise ValueError(
            f"max_seq_length={max_seq_length} leaves no room for the context after a question "
            f"of up to max_query_length={max_query_length} pieces and 3 special tokens; "
            f"expected max_seq_length >= max_query_length + 4.")
    examples, skipped = filter_examples(examples, errors)
    skipped = collections.Counter(skipped)
    if training:
        kept = []
        for example in examples:
            if example.answers or example.is_impossible:
                kept.append(example)
            elif errors == "skip":
                skipped["no_answer"] += 1
            else:
                raise ValueError(f"Training question {example.id!r} has no answer and is not "
                                 "marked is_impossible; fix the data or pass errors='skip'.")
        examples = kept

    piece_strings = [tokenizer.id_to_token(i) for i in range(tokenizer.vocab_size)]
    contexts = _tokenize_contexts([e.context for e in examples], tokenizer, piece_strings)
    questions = tokenizer(tf.constant([e.question for e in examples] or [""])).to_list()

    rows = collections.defaultdict(list)
    bar = tqdm(examples, desc="SQuAD windows", unit="question", disable=not progress)
    for index, example in enumerate(bar):
        question = questions[index][:max_query_length]
        doc_ids, doc_spans = contexts[example.context]
        offset = len(question) + 2  # [CLS] question [SEP]
        windows = _windows(len(doc_ids), max_seq_length - offset - 1, doc_stride)
        gold = None
        if example.answers and not example.is_impossible:
            gold = _answer_pieces(doc_spans, example.answers[0])
        for window_start, length in windows:
            ids = np.zeros(max_seq_length, np.int32)
            ids[:offset + length + 1] = ([tokenizer.cls_token_id] + question
                                         + [tokenizer.sep_token_id]
                                         + doc_ids[window_start:window_start + length]
                                         + [tokenizer.sep_token_id])
            type_ids = np.zeros(max_seq_length, np.int32)
            type_ids[offset:offset + length + 1] = 1
            mask = np.zeros(max_seq_length, np.int32)
            mask[:offset + length + 1] = 1
            spans = np.full((max_seq_length, 2), -1, np.int32)
            spans[offset:offset + length] = doc_spans[window_start:window_start + length]
            max_context = np.zeros(max_seq_length, bool)
            for i in range(length):
                max_context[offset + i] = _is_max_context(windows, (window_start, length),
                                                          window_start + i)
            start_position = end_position = 0
            if gold is not None and window_start <= gold[0] and gold[1] < window_start + length:
                start_position = gold[0] - window_start + offset
                end_position = gold[1] - window_start + offset
            rows["input_word_ids"].append(ids)
            rows["input_mask"].append(mask)
            rows["input_type_ids"].append(type_ids)
            rows["start_positions"].append(start_position)
            rows["end_positions"].append(end_position)
            # 1 where this window cannot answer: no answer at all, or not in this window.
            rows["is_impossible"].append(int(start_position == 0))
            rows["example_index"].append(index)
            rows["token_char_spans"].append(spans)
            rows["token_is_max_context"].append(max_context)

    def stack(name, shape, dtype):
        return np.array(rows[name], dtype).reshape((-1,) + shape)

    sequence = (max_seq_length,)
    return SquadFeatures(
        examples=examples,
        inputs={name: stack(name, sequence, np.int32)
                for name in ("input_word_ids", "input_mask", "input_type_ids")},
        labels={name: stack(name, (), np.int32)
                for name in ("start_positions", "end_positions", "is_impossible")},
        example_index=stack("example_index", (), np.int64),
        token_char_spans=stack("token_char_spans", sequence + (2,), np.int32),
        token_is_max_context=stack("token_is_max_context", sequence, bool),
        skipped=dict(skipped),
    )


def _is_max_context(windows, current, position):
    """Whether `current` is the window that sees context piece `position` with most context.

    The original rule: score = min(pieces left, pieces right) + 0.01 · window length.
    """
    best_score, best = None, None
    for start, length in windows:
        if not start <= position < start + length:
            continue
        score = min(position - start, start + length - 1 - position) + 0.01 * length
        if best_score is None or score > best_score:
            best_score, best = score, (start, length)
    return best == current


def make_squad_dataset(features, batch_size, shuffle=False, seed=0, labels=True):
    """A tf.data pipeline of (inputs, labels) batches, or of inputs with `labels=False`.

    Windows keep their order unless `shuffle`, so predictions line up with
    `features` for `postprocess_predictions`.
    """
    data = (features.inputs, features.labels) if labels else features.inputs
    dataset = tf.data.Dataset.from_tensor_slices(data)
    if shuffle:
        dataset = dataset.shuffle(len(features.example_index), seed=seed,
                                  reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
