"""CoNLL files and TFDS conll2003 (mocked) → word pieces with first-piece labels."""

import numpy as np
import pytest
import tensorflow as tf

from electra_tf.data.conll_dataset import (
    first_piece_positions,
    load_tfds_conll2003,
    make_tagging_dataset,
    read_conll_file,
)
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
from electra_tf.tasks.electra_token_classifier import IGNORE_LABEL

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O


Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC
"""


@pytest.fixture(scope="module")
def tokenizer():
    return ElectraTokenizer()


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_reads_sentences_documents_and_any_label_column(tmp_path):
    path = write(tmp_path / "train.conll", CONLL)
    examples, skipped = read_conll_file(path)
    assert examples["words"] == [["EU", "rejects", "German", "call", "."],
                                 ["Peter", "Blackburn"], ["BRUSSELS"]]
    assert examples["tags"][1] == ["B-PER", "I-PER"]
    assert examples["label_names"] == ["O", "B-LOC", "B-MISC", "B-ORG", "B-PER", "I-PER"]
    assert skipped == {"malformed_line": 0, "unknown_label": 0}
    chunks, _ = read_conll_file(path, label_column="chunk")
    assert chunks["tags"][0] == ["B-NP", "B-VP", "B-NP", "I-NP", "O"]
    assert read_conll_file(path, label_column=1)[0]["tags"][2] == ["NNP"]
    two_columns = write(tmp_path / "two.txt", "Paris\tB-LOC\nis\tO\n")
    assert read_conll_file(two_columns)[0]["tags"] == [["B-LOC", "O"]]


@pytest.mark.parametrize(
    "content, reason, message",
    [
        ("EU B-ORG\nrejects\n\nPeter B-PER\n", "malformed_line",
         r"bad.conll:2: 1 column\(s\) \['rejects'\], expected at least 2"),
        ("EU B-ORG\n\nPeter B-PERSON\n", "unknown_label",
         r"bad.conll:3: tag 'B-PERSON' is not one of the label names"),
    ],
)
def test_bad_lines_raise_with_the_line_or_drop_the_sentence(tmp_path, content, reason, message):
    path = write(tmp_path / "bad.conll", content)
    names = ["O", "B-ORG", "B-PER"]
    with pytest.raises(ValueError, match=message + r".*errors='skip'"):
        read_conll_file(path, label_names=names)
    examples, skipped = read_conll_file(path, label_names=names, errors="skip")
    assert len(examples["words"]) == 1 and skipped[reason] == 1
    assert examples["label_names"] == names


def test_file_level_errors(tmp_path):
    with pytest.raises(ValueError, match="not found: received path="):
        read_conll_file(str(tmp_path / "missing.conll"))
    with pytest.raises(ValueError, match="has no sentences"):
        read_conll_file(write(tmp_path / "empty.conll", "-DOCSTART- -X- O\n\n\n"))
    with pytest.raises(ValueError, match="label_column='tags'"):
        read_conll_file(write(tmp_path / "a.conll", "a O\n"), label_column="tags")
    with pytest.raises(ValueError, match="label_column=0"):
        read_conll_file(str(tmp_path / "a.conll"), label_column=0)


def test_labels_go_to_the_first_piece_only(tokenizer):
    words = [["Johanson", "lives", "in", "U.S."], ["Hi"]]
    examples = {"words": words, "tags": [["B-PER", "O", "O", "B-LOC"], ["O"]],
                "label_names": ["O", "B-PER", "B-LOC"]}
    features, labels = next(iter(make_tagging_dataset(examples, tokenizer, 16, batch_size=2)))
    ids = features["input_word_ids"].numpy()
    expected = tokenizer.pack(tokenizer.tokenize([" ".join(w) for w in words]), 16)
    np.testing.assert_array_equal(ids, expected["input_word_ids"])
    pieces = [tokenizer.id_to_token(i) for i in ids[0] if i]
    # "Johanson" → johan ##son; "U.S." → u . s . (4 pieces, one word).
    assert pieces == ["[CLS]", "johan", "##son", "lives", "in", "u", ".", "s", ".", "[SEP]"]
    assert labels.numpy()[0].tolist() == [IGNORE_LABEL, 1, IGNORE_LABEL, 0, 0, 2] + (
        [IGNORE_LABEL] * 10)
    assert labels.numpy()[1].tolist() == [IGNORE_LABEL, 0] + [IGNORE_LABEL] * 14
    assert first_piece_positions(tokenizer, words, 16) == [[1, 3, 4, 5], [1]]


def test_truncation_keeps_labels_of_the_words_that_fit(tokenizer):
    words = [["Johanson", "lives", "in", "Paris", "now"]]
    examples = {"words": words, "tags": [["B-PER", "O", "O", "B-LOC", "O"]],
                "label_names": ["O", "B-PER", "B-LOC"]}
    features, labels = next(iter(make_tagging_dataset(examples, tokenizer, 6)))
    assert [tokenizer.id_to_token(i) for i in features["input_word_ids"].numpy()[0]] == [
        "[CLS]", "johan", "##son", "lives", "in", "[SEP]"]
    assert labels.numpy()[0].tolist() == [IGNORE_LABEL, 1, IGNORE_LABEL, 0, 0, IGNORE_LABEL]
    assert first_piece_positions(tokenizer, words, 6) == [[1, 3, 4, -1, -1]]


def test_prediction_examples_without_tags_mark_first_pieces(tokenizer):
    data = make_tagging_dataset({"words": [["Johanson", "smiled"]]}, tokenizer, 8)
    _, labels = next(iter(data))
    assert np.flatnonzero(labels.numpy()[0] != IGNORE_LABEL).tolist() == [1, 3]


def test_shuffled_training_pipeline_feeds_a_tagger(tokenizer):
    examples = {"words": [["a", "b"]] * 5 + [["c"]], "tags": [["O", "B-X"]] * 5 + [["O"]],
                "label_names": ["O", "B-X"]}
    data = make_tagging_dataset(examples, tokenizer, 8, batch_size=4, shuffle=True, seed=0)
    assert [int(labels.shape[0]) for _, labels in data] == [4, 2]
    assert data.element_spec[1] == tf.TensorSpec((None, 8), tf.int32)


@pytest.mark.parametrize(
    "examples, message",
    [
        ({"words": []}, "non-empty 'words'"),
        ({"words": [["a"], []]}, r"Sentence 1 is empty"),
        ({"words": [["a", " "]]}, r"Sentence 0 is empty or has an empty word"),
        ({"words": [["a", "b"]], "tags": [["O"]], "label_names": ["O"]}, "one tag per word"),
        ({"words": [["a"]], "tags": [["B-X"]], "label_names": ["O"]},
         r"tag\(s\) \['B-X'\] outside the label names"),
        ({"words": [["a"]], "tags": [["O"]]}, "need 'label_names'"),
    ],
)
def test_bad_examples_are_rejected(examples, message, tokenizer):
    with pytest.raises(ValueError, match=message):
        make_tagging_dataset(examples, tokenizer)


def test_tfds_conll2003_through_tfds_load(tokenizer):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=4, policy=tfds.testing.MockPolicy.USE_CODE):
        raw = list(tfds.load("conll2003", split="train").as_numpy_iterator())
        data, names = load_tfds_conll2003("train", tokenizer, label_column="chunk",
                                          max_seq_length=64, batch_size=4)
        features, labels = next(iter(data))
    assert len(names) == 23 and names[0] == "O"  # the chunk tags
    for row, example in enumerate(raw):
        length = min(len(example["tokens"]), len(example["chunks"]))
        words = [[word.decode() for word in example["tokens"][:length]]]
        positions = first_piece_positions(tokenizer, words, 64)[0]
        kept = [(p, tag) for p, tag in zip(positions, example["chunks"][:length]) if p >= 0]
        assert kept, "the mock sentence should fit at least one word"
        expected = np.full(64, IGNORE_LABEL)
        for position, tag in kept:
            expected[position] = tag
        np.testing.assert_array_equal(labels.numpy()[row], expected)
    with pytest.raises(ValueError, match="label_column"):
        load_tfds_conll2003("train", tokenizer, label_column="tags")
