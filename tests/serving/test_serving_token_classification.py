"""A tagger export served over REST, gRPC and the demo page, as `electra-tf serve` serves it.

A tiny tagger (random weights, fixed seed) is exported with the real
`export_task_saved_model` and served by an `electra-tf serve` process on
loopback ports. Answers must equal the in-process model's word tags (the
tagging job's `tag_sentences` and `get_entities`), whatever a request's
batch-mates: each request gets its own columns (`num_words`, `num_entities`),
not the batch's padding. The page must show every word's tag and highlight
the entities at their code points, in a text that starts with an emoji.
"""

import concurrent.futures
import functools
import os
import tempfile

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from serving_helpers import ServerProcess, free_port
from test_serving_demo_page import ARTIFACTS, CHROMIUM, require_chromium

import electra_tf
from electra_tf.data.prediction_inputs import split_words
from electra_tf.tasks.tagging_metrics import get_entities

LABEL_NAMES = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
MAX_SEQ_LENGTH = 48
TEXTS = [
    "Peter Blackburn visited New York-based EU offices.",
    "José Martínez flew from São Paulo to Zürich — via Île-de-France?!",
    "\N{GRINNING FACE} Zoë met Ann in Bath, 1999.",
    "Hi.",
]


@functools.lru_cache(maxsize=None)
def tiny_tagger():
    from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer

    tf.keras.utils.set_random_seed(4)
    encoder = electra_tf.ElectraEncoder(vocab_size=30522, hidden_size=8, num_layers=1,
                                        num_heads=2, intermediate_size=16,
                                        max_sequence_length=64)
    return electra_tf.ElectraTokenClassifier(encoder, len(LABEL_NAMES)), ElectraTokenizer()


@functools.lru_cache(maxsize=None)
def in_process_tags():
    """{text: (words, tags, [(label, first word, last word)])} as `electra-tf predict tag` says."""
    from electra_tf.tasks.run_tagging import tag_sentences

    tagger, tokenizer = tiny_tagger()
    words = [split_words(text) for text in TEXTS]
    tags = tag_sentences(tagger, tokenizer, words, LABEL_NAMES, MAX_SEQ_LENGTH)[0]
    return {text: (w, t, get_entities(t)) for text, w, t in zip(TEXTS, words, tags)}


def in_process(text):
    return in_process_tags()[text]


@pytest.fixture(scope="module")
def ner_server():
    from electra_tf.export.task_saved_model import export_task_saved_model

    tagger, tokenizer = tiny_tagger()
    path = os.path.join(tempfile.mkdtemp(prefix="electra_serving_ner_"), "ner")
    export_task_saved_model(tagger, path, tokenizer, max_seq_length=MAX_SEQ_LENGTH,
                            label_names=LABEL_NAMES)
    server = ServerProcess(path, "--grpc-port", str(free_port()), "--batch-timeout-ms", "40",
                           name="ner")
    yield server
    server.stop()
    assert server.process.returncode == 0, server.log()
    assert "; gRPC: answered 1 (OK: 1)" in server.log(), server.log()


def assert_tagged_like_in_process(prediction, text):
    """One instance of a row-format answer against the in-process tagger."""
    words, tags, entities = in_process(text)
    n, m = prediction["num_words"], prediction["num_entities"]
    assert prediction["words"][:n] == words and prediction["tags"][:n] == tags
    assert set(prediction["tags"][n:]) <= {""} and set(prediction["word_end_char"][n:]) <= {-1}
    starts, ends = prediction["word_start_char"][:n], prediction["word_end_char"][:n]
    assert [text[s:e] for s, e in zip(starts, ends)] == words
    assert list(zip(prediction["entity_label"][:m], prediction["entity_start_char"][:m],
                    prediction["entity_end_char"][:m], prediction["entity_text"][:m])) == [
        (label, starts[a], ends[b], text[starts[a]:ends[b]]) for label, a, b in entities]


def test_rows_columns_and_metadata(ner_server):
    rows = requests.post(ner_server.model_url(":predict"),
                         json={"instances": [{"text": text} for text in TEXTS]})
    assert rows.status_code == 200, rows.text
    predictions = rows.json()["predictions"]
    widths = {len(p["words"]) for p in predictions}
    assert widths == {max(len(split_words(text)) for text in TEXTS)}  # the request's longest
    for prediction, text in zip(predictions, TEXTS):
        assert_tagged_like_in_process(prediction, text)
    assert sum(p["num_entities"] for p in predictions) >= 3  # the random tagger finds some

    columns = requests.post(ner_server.model_url("/versions/1:predict"),
                            json={"inputs": {"text": TEXTS}})
    assert columns.status_code == 200, columns.text
    outputs = columns.json()["outputs"]
    assert outputs == {name: [p[name] for p in predictions] for name in outputs}

    metadata = requests.get(ner_server.model_url("/metadata")).json()
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sorted(signature["inputs"]) == ["text"]
    tags = signature["outputs"]["tags"]
    assert tags["dtype"] == "DT_STRING"
    assert [d["size"] for d in tags["tensor_shape"]["dim"]] == ["-1", "-1"]


def test_batch_mates_do_not_pad_a_request(ner_server):
    texts = TEXTS * 3

    def ask(text):
        response = requests.post(ner_server.model_url(":predict"), json={"instances": [text]})
        assert response.status_code == 200, response.text
        return response.json()["predictions"][0]

    def batches():  # (batches run, instances in them) so far
        lines = requests.get(ner_server.url + "/metrics").text.splitlines()
        return tuple(float(line.split()[-1]) for name in ("count", "sum") for line in lines
                     if line.startswith(f"electra_tf_batch_size_{name} "))

    before = batches()
    with concurrent.futures.ThreadPoolExecutor(len(texts)) as pool:
        answers = list(pool.map(ask, texts))
    after = batches()
    assert after[1] - before[1] == len(texts)
    assert after[0] - before[0] < len(texts), "some requests shared a batch"
    for prediction, text in zip(answers, texts):
        assert len(prediction["words"]) == prediction["num_words"] == len(split_words(text))
        assert len(prediction["entity_text"]) == prediction["num_entities"]
        assert_tagged_like_in_process(prediction, text)


def test_grpc_equals_rest(ner_server):
    import tensorflow_serving.apis.predict_pb2 as predict_pb2
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "ner"
    request.inputs["text"].CopyFrom(tf.make_tensor_proto(TEXTS))
    with grpc.insecure_channel(ner_server.grpc_target) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, 30)
    outputs = {name: tf.make_ndarray(tensor) for name, tensor in response.outputs.items()}
    rest = requests.post(ner_server.model_url(":predict"),
                         json={"inputs": {"text": TEXTS}}).json()["outputs"]
    assert sorted(outputs) == sorted(rest)
    for name, value in outputs.items():
        if value.dtype == object:
            assert [[v.decode() for v in row] for row in value] == rest[name], name
        elif value.dtype == np.float32:
            np.testing.assert_array_equal(value, np.array(rest[name], np.float32))
        else:
            assert value.tolist() == rest[name], name


def test_demo_page_shows_tags_and_highlights_entities(ner_server):
    from playwright.sync_api import sync_playwright

    require_chromium()
    text = TEXTS[2]
    words, tags, entities = in_process(text)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 900, "height": 640})
        page.goto(ner_server.url + "/")
        page.wait_for_selector("body[data-state=ready]", timeout=30_000)
        assert [label.inner_text() for label in page.query_selector_all("label")] == ["Text"]
        assert "token_classification" in page.inner_text("#meta")
        page.fill("#input-text", text)
        page.click("#predict")
        page.wait_for_selector("body[data-state=done]", timeout=30_000)
        shown = page.eval_on_selector_all(
            "#tags .token", "ts => ts.map(t => [t.dataset.word, t.dataset.tag])")
        assert shown == [list(pair) for pair in zip(words, tags)]
        marks = page.eval_on_selector_all(
            ".passage mark", "ms => ms.map(m => [m.textContent, m.dataset.label])")
        prediction = requests.post(ner_server.model_url(":predict"), json={
            "instances": [text]}).json()["predictions"][0]
        assert marks == [[prediction["entity_text"][i], label]
                         for i, (label, _, _) in enumerate(entities)]
        assert len(marks) >= 1, "the seeded tagger finds an entity in this text"
        # Python slices code points, as the page must: the text comes back whole.
        assert page.eval_on_selector(".passage", "p => p.textContent") == text
        os.makedirs(ARTIFACTS, exist_ok=True)
        path = os.path.join(ARTIFACTS, "demo_page_tagger.png")
        page.screenshot(path=path, full_page=True)
        print(f"demo page screenshot: {path}")
        browser.close()
