"""The tagger's end-to-end SavedModel equals `electra-tf predict tag` (words, tags, entities).

A tiny tagger (random weights, fixed seed) is saved as `electra-tf finetune
tag` saves it (`save_task_model`), exported with `electra-tf export --format
saved_model` (label names and max_seq_length from its task.json), and
compared with `predict_tags` on real sentences (two from the packaged SQuAD
sample), accented text, punctuation and one long enough to be truncated.
"""

import json
import os
import random
import re
import sys
import unicodedata

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from conftest import packaged_squad_sample

import electra_tf
from electra_tf.cli.main import main
from electra_tf.data.prediction_inputs import split_words
from electra_tf.export.task_saved_model import METADATA_PATH, export_task_saved_model
from electra_tf.export.word_tags import (
    _OTHER_CHAR,
    _SPACE,
    _WORD_CHAR,
    _group_entities,
    split_words_with_char_offsets,
)
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
from electra_tf.tasks.run_tagging import predict_tags
from electra_tf.tasks.tagging_metrics import get_entities
from electra_tf.tasks.task_model_io import save_task_model

# IOB2 and IOBES tags and a bare one, so that every chunking rule is exercised.
LABEL_NAMES = ["O", "B-PER", "I-PER", "E-PER", "S-LOC", "B-LOC", "I-LOC", "I-ORG", "MISC"]
MAX_SEQ_LENGTH = 32


def _squad_sentences():
    with open(packaged_squad_sample(), encoding="utf-8") as f:
        articles = json.load(f)["data"]
    context = articles[0]["paragraphs"][-1]["context"]  # "In 1882, Albert Zahm (John Zahm's ..."
    return re.split(r"(?<=\.) ", context)[:2]


TEXTS = _squad_sentences() + [
    "José Martínez flew from São Paulo to Zürich — via Île-de-France?!",
    "Crème brûlée costs 5.50 € at Zoë's café (rue d'Amélie), says Ñandú Corp.",
    "Peter Blackburn visited New York-based EU offices on 3 May 1996 and met the "
    "commission's spokesman, Nikolaus van der Pas, who said the talks went well and that "
    "Brussels would answer by Friday.",  # truncated
]


@pytest.fixture(scope="module")
def tagger_export(tmp_path_factory):
    keras.utils.set_random_seed(2)
    encoder = electra_tf.ElectraEncoder(vocab_size=30522, hidden_size=8, num_layers=1,
                                        num_heads=2, intermediate_size=16, embedding_size=4,
                                        max_sequence_length=64)
    tagger = electra_tf.ElectraTokenClassifier(encoder, num_classes=len(LABEL_NAMES))
    root = tmp_path_factory.mktemp("tagger")
    tagger_dir, out = str(root / "tagger"), str(root / "tagger_saved_model")
    save_task_model(tagger, tagger_dir, "tag", ElectraTokenizer(), MAX_SEQ_LENGTH, LABEL_NAMES)
    assert main(["export", tagger_dir, out, "--format", "saved_model"]) == 0
    inputs = str(root / "sentences.txt")
    with open(inputs, "w", encoding="utf-8") as f:
        f.write("\n".join(TEXTS))
    serve = tf.saved_model.load(out).signatures["serving_default"]
    outputs = {name: value.numpy() for name, value in serve(text=tf.constant(TEXTS)).items()}
    return {"tagger": tagger, "dir": tagger_dir, "out": out, "outputs": outputs,
            "expected": predict_tags(tagger_dir, inputs)}


def _row(outputs, name, i, count):
    values = outputs[name][i][:outputs[count][i]].tolist()
    return [v.decode() if isinstance(v, bytes) else v for v in values]


def test_tags_offsets_and_entities_equal_predict_tags(tagger_export):
    outputs, expected = tagger_export["outputs"], tagger_export["expected"]
    with open(os.path.join(tagger_export["out"], METADATA_PATH)) as f:
        metadata = json.load(f)
    assert metadata["task"] == "token_classification"
    assert metadata["label_names"] == LABEL_NAMES and metadata["max_seq_length"] == MAX_SEQ_LENGTH
    assert sorted(outputs) == sorted(metadata["outputs"])
    tags_seen = set()
    for i, (text, prediction) in enumerate(zip(TEXTS, expected)):
        words = _row(outputs, "words", i, "num_words")
        assert words == prediction["tokens"] == split_words(text)
        tags = _row(outputs, "tags", i, "num_words")
        assert tags == prediction["tags"]
        tags_seen.update(tags)
        probabilities = _row(outputs, "tag_probability", i, "num_words")
        np.testing.assert_allclose(probabilities, [p or 0.0 for p in prediction["probabilities"]],
                                   atol=1e-5)
        starts = _row(outputs, "word_start_char", i, "num_words")
        ends = _row(outputs, "word_end_char", i, "num_words")
        assert [text[s:e] for s, e in zip(starts, ends)] == words  # code points, end exclusive
        entities = list(zip(_row(outputs, "entity_label", i, "num_entities"),
                            _row(outputs, "entity_start_char", i, "num_entities"),
                            _row(outputs, "entity_end_char", i, "num_entities"),
                            _row(outputs, "entity_text", i, "num_entities")))
        assert entities == [(e["type"], starts[e["start"]], ends[e["end"]],
                             text[starts[e["start"]]:ends[e["end"]]])
                            for e in prediction["entities"]]
        # Padding: "" and -1 after the real columns.
        assert set(outputs["tags"][i][len(tags):].tolist()) <= {b""}
        assert set(outputs["word_start_char"][i][len(tags):].tolist()) <= {-1}
    assert expected[-1]["probabilities"][-1] is None and expected[-1]["tags"][-1] == "O"
    assert len(tags_seen) >= 5  # the random tagger exercises several tags and rules
    assert sum(len(p["entities"]) for p in expected) >= 5


def test_empty_text_truncate_false_and_count_tokens(tagger_export, tmp_path):
    loaded = tf.saved_model.load(tagger_export["out"])
    outputs = loaded.signatures["serving_default"](text=tf.constant(["", "  "]))
    assert outputs["words"].shape == (2, 0) and outputs["num_entities"].numpy().tolist() == [0, 0]
    counts = loaded.signatures["count_tokens"](text=tf.constant(TEXTS[-1:]))["num_tokens"]
    assert int(counts[0]) > MAX_SEQ_LENGTH

    out = str(tmp_path / "strict")
    export_task_saved_model(tagger_export["tagger"], out, max_seq_length=MAX_SEQ_LENGTH,
                            label_names=LABEL_NAMES, truncate=False)
    strict = tf.saved_model.load(out).signatures["serving_default"]
    short = strict(text=tf.constant(TEXTS[:1]))
    assert _row({k: v.numpy() for k, v in short.items()}, "tags", 0, "num_words") == (
        tagger_export["expected"][0]["tags"])
    with pytest.raises(tf.errors.InvalidArgumentError, match="longer than max_seq_length=32"):
        strict(text=tf.constant(TEXTS[-1:]))


def test_tagger_export_refusals(tagger_export, tmp_path):
    tagger = tagger_export["tagger"]
    with pytest.raises(ValueError, match="A tagger needs `label_names`, 9 non-empty strings"):
        export_task_saved_model(tagger, str(tmp_path / "a"), max_seq_length=16)
    with pytest.raises(ValueError, match="received label_names=\\['O', 'B-PER'\\]"):
        export_task_saved_model(tagger, str(tmp_path / "b"), max_seq_length=16,
                                label_names=["O", "B-PER"])
    with pytest.raises(ValueError, match="`text_pair` is for classifiers"):
        export_task_saved_model(tagger, str(tmp_path / "c"), max_seq_length=16,
                                label_names=LABEL_NAMES, text_pair=True)


def test_word_split_matches_split_words_for_every_code_point():
    # RE2's \w and \s are ASCII; ours must be Python's Unicode ones. Code points
    # that Python's (older) Unicode tables leave unassigned may differ: RE2 knows
    # the newer letters and digits.
    characters = [chr(c) for c in range(sys.maxunicode + 1)
                  if unicodedata.category(chr(c)) not in ("Cn", "Cs")]
    tensor = tf.constant(characters)
    for pattern, python in ((_WORD_CHAR, r"\w"), (_SPACE, r"\s"), (_OTHER_CHAR, r"[^\w\s]")):
        ours = tf.strings.regex_full_match(tensor, pattern).numpy()
        theirs = np.array([re.fullmatch(python, c) is not None for c in characters])
        differ = [hex(ord(c)) for c in np.array(characters, dtype=object)[ours != theirs][:5]]
        assert not differ, (pattern, differ)
    text = "Zoë's  naïve-ish co-op\u00a0(est. 1999) — ‘ok’… x_y 5.50€ it''s -a- 'b'"
    words, starts, ends = split_words_with_char_offsets(tf.constant([text]))
    assert [w.decode() for w in words[0].numpy()] == split_words(text)
    assert [text[s:e] for s, e in zip(starts[0].numpy(), ends[0].numpy())] == split_words(text)


def test_entity_grouping_equals_get_entities_on_random_tags():
    rng = random.Random(0)
    names = LABEL_NAMES + ["S-PER", "E-LOC", "B", "I"]
    sentences = [[rng.randrange(len(names)) for _ in range(rng.randrange(0, 9))]
                 for _ in range(400)]
    texts = [" ".join(f"w{j}" for j in range(len(s))) for s in sentences]
    words, starts, ends = split_words_with_char_offsets(tf.constant(texts))
    tag_id = tf.constant([t for s in sentences for t in s], tf.int32)
    grouped = _group_entities(tag_id, words, starts, ends, tf.constant(texts), names)
    for i, (sentence, text) in enumerate(zip(sentences, texts)):
        count = int(grouped["num_entities"][i])
        found = list(zip(
            [v.decode() for v in grouped["entity_label"][i][:count].numpy()],
            [v.decode() for v in grouped["entity_text"][i][:count].numpy()]))
        tokens = text.split()
        assert found == [(type_, " ".join(tokens[a:b + 1]))
                         for type_, a, b in get_entities([names[t] for t in sentence])], sentence
