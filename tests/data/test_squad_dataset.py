"""SQuAD reading (JSON and tfds), windows, character offsets and labels."""

import json
import os
import unicodedata

import numpy as np
import pytest
import tensorflow as tf

from conftest import packaged_squad_sample
from electra_tf.data.squad_dataset import (
    SquadExample,
    create_squad_features,
    load_squad_tfds,
    make_squad_dataset,
    piece_char_spans,
    read_squad_file,
)
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer

SAMPLE = packaged_squad_sample()


@pytest.fixture(scope="module")
def tokenizer():
    return ElectraTokenizer()


@pytest.fixture(scope="module")
def sample():
    examples, skipped = read_squad_file(SAMPLE)
    return examples


def write_squad(path, qas, context="ELECTRA was published in 2020 by Clark et al."):
    with open(path, "w") as f:
        json.dump({"version": "v2.0", "data": [{"title": "t", "paragraphs": [
            {"context": context, "qas": qas}]}]}, f)
    return str(path)


def normalized(text):
    text = unicodedata.normalize("NFD", text)
    return "".join(c for c in text if unicodedata.category(c) != "Mn").lower()


def test_reads_the_official_v1_sample(sample):
    assert len(sample) == 5 and not any(e.is_impossible for e in sample)
    assert sample[3].answers == [{"answer_start": 222, "text": "Father Julius Nieuwl"}]


def test_reads_v2_unanswerable_questions(tmp_path):
    path = write_squad(tmp_path / "v2.json", [
        {"id": "a", "question": "When?", "answers": [{"text": "2020", "answer_start": 25}]},
        {"id": "b", "question": "Where?", "answers": [], "is_impossible": True,
         "plausible_answers": [{"text": "Clark", "answer_start": 33}]}])
    examples, skipped = read_squad_file(path)
    assert [(e.id, e.is_impossible, len(e.answers)) for e in examples] == [
        ("a", False, 1), ("b", True, 0)]
    features = create_squad_features(examples, ElectraTokenizer(), max_seq_length=32,
                                     max_query_length=8, training=True)
    assert features.labels["is_impossible"].tolist() == [0, 1]
    assert features.labels["start_positions"][1] == features.labels["end_positions"][1] == 0


@pytest.mark.parametrize("qa, reason", [
    ({"id": "x", "question": "When?", "answers": [{"text": "2021", "answer_start": 25}]},
     "answer_not_in_context"),
    ({"id": "x", "question": "  ", "answers": [{"text": "2020", "answer_start": 25}]},
     "empty_question"),
])
def test_bad_questions_raise_or_are_counted(tmp_path, qa, reason):
    good = {"id": "g", "question": "When?", "answers": [{"text": "2020", "answer_start": 25}]}
    path = write_squad(tmp_path / "bad.json", [good, qa])
    with pytest.raises(ValueError, match="question 'x'.*errors='skip'"):
        read_squad_file(path)
    examples, skipped = read_squad_file(path, errors="skip")
    assert [e.id for e in examples] == ["g"] and skipped == {reason: 1}


def test_empty_context_and_malformed_files_are_rejected(tmp_path):
    path = write_squad(tmp_path / "empty.json", [{"id": "e", "question": "Q?", "answers": []}],
                       context="")
    assert read_squad_file(path, errors="skip") == ([], {"empty_context": 1})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not JSON"):
        read_squad_file(str(tmp_path / "bad.json"))
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object with a 'data' list"):
        read_squad_file(str(tmp_path / "list.json"))
    with pytest.raises(ValueError, match="Cannot read"):
        read_squad_file(str(tmp_path / "missing.json"))


def test_training_questions_need_an_answer(tokenizer):
    example = SquadExample("n", "Who?", "Nobody knows.")
    with pytest.raises(ValueError, match="'n' has no answer"):
        create_squad_features([example], tokenizer, training=True)
    features = create_squad_features([example], tokenizer, training=True, errors="skip")
    assert features.skipped == {"no_answer": 1} and len(features.example_index) == 0
    assert len(create_squad_features([example], tokenizer).example_index) == 1  # prediction


def test_pieces_map_to_their_characters_in_the_original_text(tokenizer, sample):
    contexts = [e.context for e in sample] + ["Café's  Zürich-born ÉLAN (naïve)\tco-op 9½ x"]
    for context in contexts:
        features = create_squad_features([SquadExample("c", "q?", context)], tokenizer,
                                         max_seq_length=512)
        ids = features.inputs["input_word_ids"][0]
        spans = features.token_char_spans[0]
        context_rows = np.nonzero(spans[:, 0] >= 0)[0]
        assert len(context_rows) == len(tokenizer(context).numpy())  # every piece, once
        for row in context_rows:
            piece = tokenizer.id_to_token(ids[row])
            if piece != "[UNK]":
                assert normalized(context[spans[row, 0]:spans[row, 1]]) == piece.lstrip("#"), piece
        assert np.all(np.diff(spans[context_rows, 0]) > 0)  # in order, no overlap


def test_piece_char_spans_handle_unknown_pieces():
    assert piece_char_spans("a☃☃b", ["a", "[UNK]", "b"]) == [(0, 1), (1, 3), (3, 4)]
    assert piece_char_spans("☃", ["[UNK]"]) == [(0, 1)]


def test_long_contexts_become_overlapping_windows(tokenizer, sample):
    features = create_squad_features(sample, tokenizer, max_seq_length=48, doc_stride=16,
                                     max_query_length=12, training=True)
    assert np.bincount(features.example_index).min() >= 5  # every context spans many windows
    for index, example in enumerate(features.examples):
        windows = np.nonzero(features.example_index == index)[0]
        spans = features.token_char_spans[windows]
        starts = [s[s[:, 0] >= 0][0, 0] for s in spans]  # first character of each window
        assert starts == sorted(starts)
        # Each context piece is the max-context piece of exactly one window.
        max_context = features.token_is_max_context[windows]
        covered = [tuple(span) for s, m in zip(spans, max_context) for span in s[m]]
        assert len(covered) == len(set(covered)) == len(tokenizer(example.context).numpy())
        # The windows that hold the whole answer point at it; the others at [CLS].
        answer = example.answers[0]
        labels = {key: value[windows] for key, value in features.labels.items()}
        holding = np.nonzero(labels["is_impossible"] == 0)[0]
        assert len(holding) >= 1
        for w in holding:
            begin = spans[w][labels["start_positions"][w], 0]
            end = spans[w][labels["end_positions"][w], 1]
            assert example.context[begin:end] == answer["text"]
        assert np.all(labels["start_positions"][labels["is_impossible"] == 1] == 0)
    assert features.inputs["input_word_ids"].shape[1] == 48
    assert np.all(features.inputs["input_mask"].sum(1) <= 48)


def test_questions_are_cut_and_windows_fit(tokenizer):
    example = SquadExample("q", " ".join(["why"] * 100) + "?", "Because it works.")
    features = create_squad_features([example], tokenizer, max_seq_length=24, max_query_length=5)
    type_ids = features.inputs["input_type_ids"][0]
    assert type_ids.tolist().index(1) == 7  # [CLS] 5 pieces [SEP]
    with pytest.raises(ValueError, match="max_seq_length=8 leaves no room"):
        create_squad_features([example], tokenizer, max_seq_length=8, max_query_length=5)


def test_dataset_batches_inputs_and_labels(tokenizer, sample):
    features = create_squad_features(sample, tokenizer, max_seq_length=64, doc_stride=32,
                                     max_query_length=16, training=True)
    inputs, labels = next(iter(make_squad_dataset(features, batch_size=4)))
    assert inputs["input_word_ids"].shape == (4, 64) and labels["start_positions"].shape == (4,)
    unlabelled = next(iter(make_squad_dataset(features, batch_size=2, labels=False)))
    assert sorted(unlabelled) == ["input_mask", "input_type_ids", "input_word_ids"]


def test_tfds_loader_reads_squad_through_tensorflow_datasets(sample):
    tfds = pytest.importorskip("tensorflow_datasets")

    def as_dataset(builder, *args, **kwargs):  # the five real questions, in tfds' features
        rows = [{"id": e.id, "title": "t", "context": e.context, "question": e.question,
                 "answers": {"text": [a["text"] for a in e.answers],
                             "answer_start": [a["answer_start"] for a in e.answers]}}
                for e in sample]
        if builder.info.full_name.startswith("squad/v2.0"):
            for row in rows:
                row.update(is_impossible=False, plausible_answers={"text": [], "answer_start": []})
        return tf.data.Dataset.from_generator(
            lambda: iter(rows), output_signature=builder.info.features.get_tensor_spec())

    for name in ("squad/v1.1", "squad/v2.0"):
        with tfds.testing.mock_data(as_dataset_fn=as_dataset):
            examples, skipped = load_squad_tfds(name, split="validation")
        assert examples == sample and skipped == {}
    with tfds.testing.mock_data(num_examples=3):  # random text: answers are not in the context
        examples, skipped = load_squad_tfds("squad/v1.1", errors="skip")
    assert examples == [] and sum(skipped.values()) == 3
    with pytest.raises(ValueError, match="'squad/v1.1' or 'squad/v2.0'"):
        load_squad_tfds("squad")
