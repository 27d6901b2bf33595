"""Classification data: CSV/TSV/JSONL readers, bad rows, the tf.data pipeline, TFDS (mocked)."""

import json

import numpy as np
import pytest
import tensorflow as tf

from electra_tf.data.classification_dataset import (
    load_tfds_classification,
    make_classification_dataset,
    read_classification_file,
)
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer

tfds = pytest.importorskip("tensorflow_datasets")


@pytest.fixture(scope="module")
def tokenizer():
    return ElectraTokenizer()


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_tsv_with_quotes_as_glue_writes_it(tmp_path):
    path = write(tmp_path / "train.tsv",
                 'label\ttext\n1\tA "fine" film.\n0\tDull, "very" dull.\n')
    examples, skipped = read_classification_file(path)
    assert examples == {"text": ['A "fine" film.', 'Dull, "very" dull.'], "label": [1, 0],
                        "num_classes": 2}
    assert skipped == {"empty_text": 0, "bad_label": 0, "malformed_row": 0}


def test_csv_pairs_and_label_names(tmp_path):
    path = write(tmp_path / "pairs.csv",
                 'id,premise,hypothesis,gold\n'
                 '1,"A man, smiling.",He is happy.,entailment\n'
                 '2,A dog.,A cat.,2\n')
    examples, _ = read_classification_file(
        path, text_column="premise", text_b_column="hypothesis", label_column="gold",
        label_names=["entailment", "neutral", "contradiction"])
    assert examples["text"] == ["A man, smiling.", "A dog."]
    assert examples["text_b"] == ["He is happy.", "A cat."]
    assert examples["label"] == [0, 2] and examples["num_classes"] == 3


def test_jsonl_regression_and_multi_label(tmp_path):
    rows = [{"text": "a", "score": 3.5, "tags": [0, 2]}, {"text": "b", "score": "1", "tags": "1|2"}]
    path = write(tmp_path / "data.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    regression, _ = read_classification_file(path, label_column="score",
                                             problem_type="regression")
    assert regression["label"] == [3.5, 1.0] and "num_classes" not in regression
    multi, _ = read_classification_file(path, label_column="tags",
                                        problem_type="multi_label", num_classes=3)
    assert multi["label"] == [[0, 2], [1, 2]]


@pytest.mark.parametrize(
    "content, reason, message",
    [
        ("label\ttext\n1\tok\n0\t   \n", "empty_text", r"train.tsv:3: empty text"),
        ("label\ttext\n1\tok\n2\tbad\n", "bad_label", r"train.tsv:3: label 2 is out of range; "
                                                       r"expected \[0, 2\)"),
        ("label\ttext\n1\tok\n-1\tbad\n", "bad_label", r"label -1 is out of range"),
        ("label\ttext\n1\tok\npositive\tbad\n", "bad_label",
         r"label 'positive' is not an integer class id"),
        ("label\ttext\n1\tok\n0\tone\ttoo many\n", "malformed_row",
         r"train.tsv:3: 3 fields where the header has 2"),
    ],
)
def test_bad_rows_raise_with_the_line_or_are_skipped_and_counted(tmp_path, content, reason,
                                                                 message):
    path = write(tmp_path / "train.tsv", content)
    with pytest.raises(ValueError, match=message + r".*errors='skip'"):
        read_classification_file(path, num_classes=2)
    examples, skipped = read_classification_file(path, num_classes=2, errors="skip")
    assert examples["text"] == ["ok"] and skipped[reason] == 1
    assert sum(skipped.values()) == 1


def test_bad_json_lines_and_missing_keys(tmp_path):
    path = write(tmp_path / "data.jsonl", '{"text": "ok", "label": 1}\n{oops\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"data.jsonl:2: not valid JSON"):
        read_classification_file(path)
    _, skipped = read_classification_file(path, errors="skip")
    assert skipped["malformed_row"] == 2
    path = write(tmp_path / "keys.jsonl", '{"sentence": "ok", "label": 1}\n')
    with pytest.raises(ValueError, match=r"no key\(s\) \['text'\]; its keys are "
                                         r"\['label', 'sentence'\]"):
        read_classification_file(path)


def test_file_level_errors(tmp_path):
    with pytest.raises(ValueError, match="not found: received path="):
        read_classification_file(str(tmp_path / "missing.tsv"))
    with pytest.raises(ValueError, match=r"suffix '.txt'; expected one of"):
        read_classification_file(write(tmp_path / "data.txt", "label\ttext\n"))
    with pytest.raises(ValueError, match=r"no column\(s\) \['text'\]; its header is "
                                         r"\['label', 'sentence'\]"):
        read_classification_file(write(tmp_path / "a.tsv", "label\tsentence\n1\tok\n"))
    with pytest.raises(ValueError, match=r"b.tsv is empty"):
        read_classification_file(write(tmp_path / "b.tsv", ""))
    with pytest.raises(ValueError, match=r"no usable examples .*'empty_text': 1"):
        read_classification_file(write(tmp_path / "c.tsv", "label\ttext\n1\t\n"), errors="skip")
    with pytest.raises(ValueError, match="multi_label' needs `num_classes`"):
        read_classification_file(write(tmp_path / "d.tsv", "label\ttext\n1\tok\n"),
                                 problem_type="multi_label")
    with pytest.raises(ValueError, match="num_classes=3 but 2 label_names"):
        read_classification_file(write(tmp_path / "e.tsv", "label\ttext\n1\tok\n"),
                                 num_classes=3, label_names=["a", "b"])
    with pytest.raises(ValueError, match="errors='ignore'"):
        read_classification_file(str(tmp_path / "e.tsv"), errors="ignore")


def test_pipeline_tokenizes_and_packs_like_the_tokenizer(tokenizer):
    texts = ["A fine film.", "Dull, very dull, and far too long for its own good."]
    data = make_classification_dataset({"text": texts, "label": [1, 0]}, tokenizer,
                                       max_seq_length=10, batch_size=2)
    features, labels = next(iter(data))
    expected = tokenizer.pack(tokenizer.tokenize(texts), max_seq_length=10)
    for key in ("input_word_ids", "input_mask", "input_type_ids"):
        np.testing.assert_array_equal(features[key], expected[key])
    assert labels.dtype == tf.int32 and features["input_word_ids"].shape == (2, 10)


def test_pipeline_pairs_multi_hot_and_regression(tokenizer):
    pairs = {"text": ["Is it good?", "Is it bad?"], "text_b": ["Yes.", "No."],
             "label": [[0, 2], []], "num_classes": 3}
    features, labels = next(iter(make_classification_dataset(pairs, tokenizer, 12, 2)))
    np.testing.assert_array_equal(labels, [[1, 0, 1], [0, 0, 0]])
    assert labels.dtype == tf.float32
    np.testing.assert_array_equal(features["input_type_ids"][0], [0] * 6 + [1] * 3 + [0] * 3)
    _, targets = next(iter(make_classification_dataset(
        {"text": ["a", "b"], "label": [0.5, 2.0]}, tokenizer, 8, 2)))
    assert targets.dtype == tf.float32


def test_shuffle_is_seeded_and_keeps_every_example(tokenizer):
    examples = {"text": [f"review {i}" for i in range(10)], "label": list(range(10))}

    def order(seed):
        data = make_classification_dataset(examples, tokenizer, 8, batch_size=4, shuffle=True,
                                           seed=seed)
        return np.concatenate([labels.numpy() for _, labels in data])

    assert sorted(order(1)) == list(range(10))
    np.testing.assert_array_equal(order(1), order(1))
    assert list(order(1)) != list(range(10))
    data = make_classification_dataset(examples, tokenizer, 8, 4, drop_remainder=True)
    assert [labels.shape[0] for _, labels in data] == [4, 4]


def test_pipeline_rejects_bad_examples(tokenizer):
    with pytest.raises(ValueError, match=r"lacks \['label'\]"):
        make_classification_dataset({"text": ["a"]}, tokenizer)
    with pytest.raises(ValueError, match=r"one length; received lengths \{'text': 2, 'label': 1\}"):
        make_classification_dataset({"text": ["a", "b"], "label": [1]}, tokenizer)
    with pytest.raises(ValueError, match="num_classes"):
        make_classification_dataset({"text": ["a"], "label": [[1]]}, tokenizer)


def test_read_then_fit_input_end_to_end(tmp_path, tokenizer):
    path = write(tmp_path / "train.tsv", "label\ttext\n1\tgreat\n0\tawful\n1\tfine\n")
    examples, _ = read_classification_file(path)
    data = make_classification_dataset(examples, tokenizer, max_seq_length=6, batch_size=2)
    assert [labels.numpy().tolist() for _, labels in data] == [[1, 0], [1]]


MOCK = dict(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE)


@pytest.mark.parametrize(
    "name, text_keys",
    [("imdb_reviews", ("text",)), ("glue/sst2", ("sentence",)),
     ("glue/mrpc", ("sentence1", "sentence2"))],
)
def test_tfds_tasks_through_tfds_load(name, text_keys, tokenizer):
    with tfds.testing.mock_data(**MOCK):
        raw = list(tfds.load(name, split="train").take(4).as_numpy_iterator())
        data = load_tfds_classification(name, "train", tokenizer, max_seq_length=16,
                                        batch_size=4)
        features, labels = next(iter(data))
    segments = [tokenizer.tokenize([r[key] for r in raw]) for key in text_keys]
    expected = tokenizer.pack(segments, max_seq_length=16)
    np.testing.assert_array_equal(features["input_word_ids"], expected["input_word_ids"])
    np.testing.assert_array_equal(labels, [r["label"] for r in raw])
    assert features["input_type_ids"].numpy().max() == (1 if len(text_keys) == 2 else 0)


def test_tfds_shuffle_and_unknown_task(tokenizer):
    with tfds.testing.mock_data(**MOCK):
        data = load_tfds_classification("glue/sst2", "validation", tokenizer, 16, batch_size=3,
                                        shuffle=True, seed=0)
        assert sum(int(labels.shape[0]) for _, labels in data) == 6
    with pytest.raises(ValueError, match="Unknown TFDS classification task 'glue/cola_plus'"):
        load_tfds_classification("glue/cola_plus", "train", tokenizer)


@pytest.mark.parametrize(
    "row, problem_type, reason, message",
    [
        ({"text": None, "label": 1}, "single_label", "empty_text", r"empty text None"),
        ({"text": "ok", "text_b": "  ", "label": 1}, "single_label", "empty_text", "empty text"),
        ({"text": "ok", "label": [0, 5]}, "multi_label", "bad_label",
         r"label 5 is out of range; expected \[0, 3\)"),
        ({"text": "ok", "label": 2.5}, "single_label", "bad_label",
         "label 2.5 is not an integer class id"),
        ({"text": "ok", "label": "nan"}, "regression", "bad_label",
         "regression target .nan. is not finite"),
    ],
)
def test_bad_json_rows_raise_or_are_skipped_and_counted(tmp_path, row, problem_type, reason,
                                                        message):
    good = {"text": "fine", "text_b": "yes", "label": [1] if problem_type == "multi_label" else 1}
    path = write(tmp_path / "rows.jsonl", json.dumps(good) + "\n" + json.dumps(row) + "\n")
    options = dict(text_b_column="text_b" if "text_b" in row else None,
                   problem_type=problem_type, num_classes=None if problem_type == "regression"
                   else 3)
    with pytest.raises(ValueError, match=r"rows.jsonl:2: " + message):
        read_classification_file(path, **options)
    examples, skipped = read_classification_file(path, errors="skip", **options)
    assert examples["text"] == ["fine"] and skipped[reason] == 1


def test_read_tfds_classification_gives_examples_lists():
    import tensorflow_datasets as tfds

    from electra_tf.data.classification_dataset import read_tfds_classification

    with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
        single = read_tfds_classification("glue/sst2", "validation", limit=4)
        pair = read_tfds_classification("glue/mrpc", "train")
    assert sorted(single) == ["label", "text"] and len(single["text"]) == 4
    assert all(isinstance(text, str) for text in single["text"])
    assert set(single["label"]) <= {0, 1}
    assert sorted(pair) == ["label", "text", "text_b"] and len(pair["text_b"]) == 6
    with pytest.raises(ValueError, match="Unknown TFDS classification task 'glue/cola_plus'"):
        read_tfds_classification("glue/cola_plus", "train")


@pytest.mark.parametrize("task", ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte",
                                  "wnli", "ax"])
def test_glue_tasks_match_their_tfds_builders(task):
    import tensorflow_datasets as tfds

    from electra_tf.data.classification_dataset import TFDS_TASKS

    spec = TFDS_TASKS[f"glue/{task}"]
    features = tfds.builder(f"glue/{task}").info.features  # offline: the builder's code
    for column in (spec["text"], spec["text_b"]):
        assert column is None or column in features
    label = features["label"]
    if task == "stsb":  # similarity scores: a regression
        assert spec["problem_type"] == "regression" and spec["label_names"] is None
    else:
        assert spec["label_names"] == label.names and spec["num_classes"] == label.num_classes
