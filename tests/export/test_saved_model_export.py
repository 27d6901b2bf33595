"""SavedModel exports (TF-Hub preprocessor + encoder, end-to-end task models), reloaded in a
fresh process without electra_tf, compared with the in-memory models."""

import csv
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from conftest import make_inputs, packaged_sentiment

import electra_tf
from electra_tf.export.answer_spans import extract_answers, tokenize_with_char_offsets
from electra_tf.export.hub_saved_models import export_hub_saved_models
from electra_tf.export.task_saved_model import METADATA_PATH, export_task_saved_model
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
from electra_tf.tasks.electra_question_answering import ElectraQuestionAnswering

LABELS = ["negative", "positive"]
# Real encoder vocabulary (the packaged uncased one), tiny everything else.
TINY_ENCODER = dict(vocab_size=30522, hidden_size=8, num_layers=2, num_heads=2,
                    intermediate_size=16, embedding_size=4, max_sequence_length=128,
                    dropout_rate=0.1)


def movie_sentences(count=6):
    """Real text: the first lines of the movie-review dev set, and a few odd ones."""
    with open(packaged_sentiment("dev"), encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [row["text"] for row in rows[:count]] + ["The café's open! 9 ½ Weeks, naïve.", ""]


@pytest.fixture(scope="module")
def tokenizer():
    return ElectraTokenizer()


@pytest.fixture(scope="module")
def models():
    keras.utils.set_random_seed(0)
    encoder = electra_tf.ElectraEncoder(**TINY_ENCODER)
    classifier = electra_tf.ElectraClassifier(encoder, num_classes=2)
    qa = ElectraQuestionAnswering(electra_tf.ElectraEncoder(**TINY_ENCODER), head="simple")
    return classifier, qa


@pytest.fixture(scope="module")
def exported(models, tokenizer, tmp_path_factory):
    """Exports once, reloads once in a fresh process; returns (paths, request, result)."""
    classifier, qa = models
    root = tmp_path_factory.mktemp("exports")
    paths = {name: str(root / name) for name in ("hub", "task", "pair_task", "qa_task")}
    export_hub_saved_models(classifier, paths["hub"], tokenizer)
    export_task_saved_model(classifier, paths["task"], max_seq_length=32, label_names=LABELS)
    export_task_saved_model(classifier, paths["pair_task"], max_seq_length=128, truncate=False,
                            text_pair=True)
    export_task_saved_model(qa, paths["qa_task"], max_seq_length=48)
    texts = movie_sentences()
    request = {
        "preprocessor": os.path.join(paths["hub"], "preprocessor"),
        "encoder": os.path.join(paths["hub"], "encoder"),
        **{name: paths[name] for name in ("task", "pair_task", "qa_task")},
        "texts": texts,
        "texts_b": texts[1:] + texts[:1],
        "questions": ["What is it about?"] * len(texts),
        "labels": [0, 1] * (len(texts) // 2),
        "long_text": "a long sentence " * 40,
    }
    with open(root / "request.json", "w") as f:
        json.dump(request, f)
    script = os.path.join(os.path.dirname(__file__), "_reload_exports.py")
    process = subprocess.run(
        [sys.executable, script, str(root / "request.json"), str(root / "result.json")],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ""},
    )
    assert process.returncode == 0, process.stderr[-3000:]
    with open(root / "result.json") as f:
        return paths, request, json.load(f)


def test_reloaded_without_electra_tf(exported):
    _, _, result = exported
    assert result["electra_tf_imported"] is False


def test_preprocessor_gives_the_tokenizer_ids(exported, tokenizer):
    _, request, result = exported
    texts, texts_b = request["texts"], request["texts_b"]
    expected = tokenizer.pack([tokenizer(texts)], max_seq_length=128)
    pairs = tokenizer.pack([tokenizer(texts), tokenizer(texts_b)], max_seq_length=16)
    for key in ("input_word_ids", "input_mask", "input_type_ids"):
        np.testing.assert_array_equal(result["single"][key], expected[key].numpy())
        np.testing.assert_array_equal(result["signature_single"][key], expected[key].numpy())
        np.testing.assert_array_equal(result["pairs"][key], pairs[key].numpy())
    assert result["tokenize_rank"] == 3  # (batch, words, pieces), as TF-Hub's
    assert np.array(result["pairs"]["input_type_ids"]).max() == 1  # B segments did survive


def test_preprocessor_assets(exported):
    paths, _, _ = exported
    assets = os.path.join(paths["hub"], "preprocessor", "assets")
    assert sorted(os.listdir(assets)) == ["do_lower_case.txt", "vocab.txt"]
    with open(os.path.join(assets, "vocab.txt"), encoding="utf-8") as f:
        assert f.read().split("\n")[101:104] == ["[CLS]", "[SEP]", "[MASK]"]
    with open(os.path.join(assets, "do_lower_case.txt")) as f:
        assert f.read().strip() == "true"


def test_encoder_outputs_equal_the_in_memory_encoder(exported, models, tokenizer):
    _, request, result = exported
    encoder = models[0].encoder
    inputs = tokenizer.pack([tokenizer(request["texts"])], max_seq_length=128)
    outputs = encoder(inputs, training=False)
    for key in ("pooled_output", "sequence_output"):
        np.testing.assert_allclose(result[key], outputs[key].numpy(), atol=1e-5, rtol=0)
    assert result["num_encoder_outputs"] == 2
    assert result["encoder_signature_outputs"] == [
        "default", "encoder_outputs_0", "encoder_outputs_1", "pooled_output", "sequence_output"]


def test_hub_keras_layer_fine_tunes_one_step(exported):
    _, _, result = exported
    finetune = result["finetune"]
    assert np.isfinite(finetune["loss"])
    assert finetune["num_trainable"] == len(electra_tf.ElectraEncoder(**TINY_ENCODER)
                                            .trainable_variables)
    assert finetune["num_changed"] == finetune["num_trainable"]


def test_task_model_equals_the_in_memory_classifier(exported, models, tokenizer):
    paths, request, result = exported
    classifier = models[0]
    texts = request["texts"]
    logits = classifier(tokenizer.pack([tokenizer(texts)], max_seq_length=32), training=False)
    probabilities = tf.nn.softmax(logits).numpy()
    np.testing.assert_allclose(result["task"]["probabilities"], probabilities, atol=1e-5, rtol=0)
    label_ids = probabilities.argmax(-1)
    assert result["task"]["label_id"] == label_ids.tolist()
    assert result["task"]["label"] == [LABELS[i] for i in label_ids]
    assert result["task_inputs"] == ["text"]
    # Loaded the way TensorFlow Serving loads it (SignatureDef tensors in a session).
    assert result["session_method"] == "tensorflow/serving/predict"
    np.testing.assert_allclose(result["session_probabilities"], probabilities, atol=1e-5, rtol=0)
    # count_tokens: before truncation, with [CLS] and [SEP].
    assert result["task_count"] == [len(ids) + 2 for ids in tokenizer(texts).to_list()]
    with open(os.path.join(paths["task"], METADATA_PATH)) as f:
        metadata = json.load(f)
    assert metadata == {
        "task": "classification", "inputs": ["text"],
        "outputs": ["probabilities", "label_id", "label"], "max_seq_length": 32,
        "truncate": True, "label_names": LABELS, "problem_type": "single_label",
        "batch_parts": 1, "width_parts": 1, "electra_tf_version": electra_tf.__version__,
    }


def test_sentence_pair_task_model_and_truncate_false(exported, models, tokenizer):
    _, request, result = exported
    texts, texts_b = request["texts"], request["texts_b"]
    inputs = tokenizer.pack([tokenizer(texts), tokenizer(texts_b)], max_seq_length=128)
    probabilities = tf.nn.softmax(models[0](inputs, training=False)).numpy()
    np.testing.assert_allclose(result["pair_task"]["probabilities"], probabilities, atol=1e-5,
                               rtol=0)
    assert result["pair_task"]["label"] == [str(i) for i in probabilities.argmax(-1)]
    lengths = [len(a) + len(b) + 3 for a, b in zip(tokenizer(texts).to_list(),
                                                   tokenizer(texts_b).to_list())]
    assert result["pair_count"] == lengths
    # count_tokens answers for too-long text too, so that a server can say how long it is.
    long_pieces = len(tokenizer([request["long_text"]])[0]) + len(tokenizer(texts_b[:1])[0])
    assert result["long_count"] == [long_pieces + 3] and long_pieces + 3 > 128
    assert "max_seq_length=128" in result["too_long_error"]
    assert "truncate=False" in result["too_long_error"]


def test_question_answering_task_model(exported, models, tokenizer):
    _, request, result = exported
    qa = models[1]
    contexts = tf.constant(request["texts"])
    ids, starts, ends = tokenize_with_char_offsets(tokenizer, contexts)
    assert ids.to_list() == tokenizer(contexts).to_list()  # the ids the tokenizer gives
    inputs = tokenizer.pack([tokenizer(request["questions"]), ids], max_seq_length=48)
    expected = extract_answers(qa, inputs, contexts, starts, ends,
                               sep_token_id=tokenizer.sep_token_id)
    answers = result["qa"]
    np.testing.assert_allclose(answers["score"], expected["score"].numpy(), atol=1e-5, rtol=0)
    assert answers["start_char"] == expected["start_char"].numpy().tolist()
    assert answers["end_char"] == expected["end_char"].numpy().tolist()
    for context, answer, start, end, score in zip(request["texts"], answers["answer"],
                                                  answers["start_char"], answers["end_char"],
                                                  answers["score"]):
        assert context[start:end] == answer  # code-point offsets into the raw context
        assert (answer != "") == bool(context) and (score > -np.inf) == bool(context)


def test_answer_offsets_are_whole_words(tokenizer):
    contexts = tf.constant(["Über 9 ½ Weeks, naïve\u200bness!", "\t汉字 ok "])
    ids, starts, ends = tokenize_with_char_offsets(tokenizer, contexts)
    assert ids.to_list() == tokenizer(contexts).to_list()
    words = [[text[s:e] for s, e in zip(row_starts, row_ends)]
             for text, row_starts, row_ends in zip([c.decode() for c in contexts.numpy()],
                                                   starts.to_list(), ends.to_list())]
    assert words[1] == ["汉", "字", "ok"]
    assert words[0][:5] == ["Über", "9", "½", "Weeks", ","] and words[0][-1] == "!"
    assert set(words[0][5:-1]) == {"naïve\u200bness"}  # one word, several pieces


def test_bad_export_arguments(models, tmp_path):
    classifier, qa = models
    out = str(tmp_path / "out")
    with pytest.raises(ValueError, match="exports an ElectraClassifier, an ElectraQuestion"
                                         "Answering or an ElectraTokenClassifier; received "
                                         "ElectraEncoder"):
        export_task_saved_model(classifier.encoder, out)
    with pytest.raises(ValueError, match="was never built"):
        export_hub_saved_models(keras.Sequential([keras.layers.Dense(2)]), out)
    built = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="Expected an ElectraEncoder.*received Sequential"):
        export_hub_saved_models(built, out)
    with pytest.raises(ValueError, match=r"2 non-empty strings, one per class; received \['a'\]"):
        export_task_saved_model(classifier, out, label_names=["a"])
    with pytest.raises(ValueError, match=r"\[2, 128\].*received max_seq_length=512"):
        export_task_saved_model(classifier, out, max_seq_length=512)
    with pytest.raises(ValueError, match="`label_names` and `text_pair` are for classifiers"):
        export_task_saved_model(qa, out, text_pair=True)
    with pytest.raises(ValueError, match="tokenizer has 8 tokens but the model's encoder 30522"):
        vocab = tmp_path / "vocab.txt"
        vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\nc\n")
        export_task_saved_model(classifier, out, tokenizer=ElectraTokenizer(str(vocab)))
    assert not os.path.exists(out) and os.listdir(tmp_path) == ["vocab.txt"]


@pytest.mark.parametrize("problem_type", ["multi_label", "regression"])
def test_other_problem_types_outputs(problem_type):
    from electra_tf.export.task_saved_model import _classification_head

    encoder = electra_tf.ElectraEncoder(**{**TINY_ENCODER, "vocab_size": 37})
    model = electra_tf.ElectraClassifier(encoder, num_classes=3, problem_type=problem_type)
    predict, outputs, _ = _classification_head(model, None)
    inputs = {key: tf.constant(value) for key, value in make_inputs().items()}
    logits = model(inputs, training=False).numpy()
    result = predict(inputs)
    assert sorted(result) == sorted(outputs)
    if problem_type == "regression":
        assert outputs == ["predictions"]
        np.testing.assert_allclose(result["predictions"], logits, atol=1e-6)
    else:
        assert outputs == ["probabilities"]  # no single label for several labels
        np.testing.assert_allclose(result["probabilities"], 1 / (1 + np.exp(-logits)), atol=1e-6)


def _graph_op_count(function, op_type):
    """How many `op_type` nodes a concrete function's graph and its function library hold."""
    graph = function.graph.as_graph_def()
    return (sum(node.op == op_type for node in graph.node)
            + sum(node.op == op_type for f in graph.library.function for node in f.node_def))


def _assert_qa_exports_answer_alike(qa, tmp_path, contexts, **options):
    """`qa` exported as it is and with `options` (batch_parts, width_parts) answers alike."""
    questions = ["What is it about?", "Who?", "Why?", "When?", "Where?", "What?", "How?", "Eh?"]
    paths = [str(tmp_path / "qa_plain"), str(tmp_path / "qa_with_options")]
    export_task_saved_model(qa, paths[0], max_seq_length=48)
    export_task_saved_model(qa, paths[1], max_seq_length=48, **options)
    expected, result = (
        tf.saved_model.load(path).signatures["serving_default"](
            question=tf.constant(questions), context=tf.constant(contexts))
        for path in paths)
    assert result["answer"].numpy().tolist() == expected["answer"].numpy().tolist()
    assert result["start_char"].numpy().tolist() == expected["start_char"].numpy().tolist()
    np.testing.assert_allclose(result["score"], expected["score"], atol=1e-5, rtol=0)


def test_batch_parts_run_a_batch_as_parts_with_the_whole_batch_outputs(models, tokenizer,
                                                                        tmp_path):
    """`batch_parts=3`: a batch of at least 3 texts is split into 3 contiguous parts, each
    tokenized and classified on its own (independent ops that the executor's threads run at
    the same time); the outputs, concatenated, are the whole batch's, in order. Fewer texts
    than parts run whole. Question answering too."""
    classifier, qa = models
    texts = movie_sentences()  # 8: parts of 2, 3 and 3 (the last two hold "" and odd text)
    paths = {name: str(tmp_path / name) for name in ("whole", "parts")}
    export_task_saved_model(classifier, paths["whole"], max_seq_length=32, label_names=LABELS)
    metadata = export_task_saved_model(classifier, paths["parts"], max_seq_length=32,
                                       label_names=LABELS, batch_parts=3)
    assert metadata["batch_parts"] == 3
    with open(os.path.join(paths["parts"], METADATA_PATH)) as f:
        assert json.load(f)["batch_parts"] == 3
    whole = tf.saved_model.load(paths["whole"]).signatures["serving_default"]
    parts = tf.saved_model.load(paths["parts"]).signatures["serving_default"]
    tokenizers = [_graph_op_count(f, "FastWordpieceTokenizeWithOffsets") for f in (whole, parts)]
    assert tokenizers[0] >= 1 and tokenizers[1] == 4 * tokenizers[0]  # 3 parts + 1 whole
    for batch in (texts, texts[:4], texts[:3], texts[:2], texts[:1]):
        expected, result = (f(text=tf.constant(batch)) for f in (whole, parts))
        assert result["probabilities"].shape == (len(batch), 2)
        np.testing.assert_allclose(result["probabilities"], expected["probabilities"],
                                   atol=1e-6, rtol=0)
        assert result["label"].numpy().tolist() == expected["label"].numpy().tolist()
    assert parts(text=tf.constant([], tf.string))["label_id"].shape == (0,)

    _assert_qa_exports_answer_alike(qa, tmp_path, texts, batch_parts=2)


def test_batch_parts_keep_the_too_long_text_check(models, tmp_path):
    path = str(tmp_path / "parts")
    export_task_saved_model(models[0], path, max_seq_length=16, truncate=False, batch_parts=2)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    texts = ["fine", "dull", "a long sentence " * 10, "ok"]  # the long one is in the 2nd part
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_seq_length=16"):
        serve(text=tf.constant(texts))
    assert serve(text=tf.constant(["fine", "ok", "dull"]))["label"].shape == (3,)


def test_width_parts_serve_the_same_outputs_from_grouped_blocks(models, tmp_path):
    """`width_parts=2`: each transformer block traced in two groups of heads and neurons
    (`electra_tf.width_parts`: per block four more dense matmuls in the served graph, on the
    real tokens as exports run them) serves the same probabilities and answers."""
    classifier, qa = models
    texts = movie_sentences()
    paths = {name: str(tmp_path / name) for name in ("whole", "width")}
    export_task_saved_model(classifier, paths["whole"], max_seq_length=32, label_names=LABELS)
    metadata = export_task_saved_model(classifier, paths["width"], max_seq_length=32,
                                       label_names=LABELS, width_parts=2, batch_parts=2)
    assert (metadata["width_parts"], metadata["batch_parts"]) == (2, 2)
    with open(os.path.join(paths["width"], METADATA_PATH)) as f:
        assert json.load(f)["width_parts"] == 2
    whole, width = (tf.saved_model.load(paths[name]).signatures["serving_default"]
                    for name in ("whole", "width"))
    matmuls = [_graph_op_count(f, "MatMul") for f in (whole, width)]
    assert matmuls[1] - matmuls[0] >= 4 * classifier.encoder.num_layers, matmuls
    for batch in (texts, texts[:1]):
        expected, result = (f(text=tf.constant(batch)) for f in (whole, width))
        np.testing.assert_allclose(result["probabilities"], expected["probabilities"],
                                   atol=1e-6, rtol=0)
        assert result["label"].numpy().tolist() == expected["label"].numpy().tolist()

    _assert_qa_exports_answer_alike(qa, tmp_path, texts, width_parts=2)


@pytest.mark.parametrize("argument, message", [
    ("batch_parts", r"`batch_parts` must be a positive integer.*received batch_parts={}"),
    ("width_parts", r"width_parts takes a positive integer number of groups; received {}"),
])
@pytest.mark.parametrize("value", [0, -2, 2.0, True, "2"])
def test_bad_part_counts_are_refused_before_writing(models, tmp_path, argument, message, value):
    out = str(tmp_path / "out")
    with pytest.raises(ValueError, match=message.format(re.escape(repr(value)))):
        export_task_saved_model(models[0], out, **{argument: value})
    assert not os.path.exists(out)


def test_a_tagger_refuses_batch_parts(tmp_path):
    encoder = electra_tf.ElectraEncoder(**TINY_ENCODER)
    tagger = electra_tf.ElectraTokenClassifier(encoder, num_classes=3)
    tagger({key: tf.constant(value) for key, value in make_inputs().items()})
    out = str(tmp_path / "out")
    with pytest.raises(ValueError, match="padded to each batch's most words.*batch_parts=2 for "
                                         "an ElectraTokenClassifier"):
        export_task_saved_model(tagger, out, label_names=["O", "B-X", "I-X"], batch_parts=2)
    assert not os.path.exists(out)
