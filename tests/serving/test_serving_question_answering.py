"""A question-answering export served over the same API, and its demo page in Chromium.

The tiny QA model (random weights) is exported with the real
`export_task_saved_model` and served as the classifier is, by an `electra-tf
serve` process on loopback ports (REST and gRPC); answers must equal the
SavedModel's own over both APIs, and the page must highlight code points
[start_char, end_char) of the passage, which starts with an emoji (two UTF-16
units).
"""

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

QUESTIONS = ["Who wrote it?", "When was it written?"]
CONTEXTS = ["\N{GRINNING FACE} Ann wrote it in 1999, in Bath.",
            "The café opened in 1999 and closed in 2004."]


@pytest.fixture(scope="module")
def qa_export():
    from electra_tf.export.task_saved_model import export_task_saved_model
    from electra_tf.tasks.electra_question_answering import ElectraQuestionAnswering

    tf.keras.utils.set_random_seed(1)
    encoder = electra_tf.ElectraEncoder(vocab_size=30522, hidden_size=8, num_layers=2,
                                        num_heads=2, intermediate_size=16,
                                        max_sequence_length=64)
    path = os.path.join(tempfile.mkdtemp(prefix="electra_serving_qa_"), "qa")
    export_task_saved_model(ElectraQuestionAnswering(encoder), path, max_seq_length=48)
    return path


@pytest.fixture(scope="module")
def qa_server(qa_export):
    server = ServerProcess(qa_export, "--grpc-port", str(free_port()), name="qa")
    yield server
    server.stop()
    assert server.process.returncode == 0, server.log()
    assert "; gRPC: answered 1 (OK: 1)" in server.log(), server.log()


@pytest.fixture(scope="module")
def server(qa_server):
    return qa_server.url


@functools.lru_cache(maxsize=None)  # loading the SavedModel in process takes seconds
def saved_model_answers(path):
    serve = tf.saved_model.load(path).signatures["serving_default"]
    outputs = serve(question=tf.constant(QUESTIONS), context=tf.constant(CONTEXTS))
    return {name: value.numpy() for name, value in outputs.items()}


def test_question_answering_rows_and_columns_equal_the_saved_model(server, qa_export):
    expected = saved_model_answers(qa_export)
    rows = requests.post(server + "/v1/models/qa:predict", json={"instances": [
        {"question": q, "context": c} for q, c in zip(QUESTIONS, CONTEXTS)]})
    assert rows.status_code == 200, rows.text
    predictions = rows.json()["predictions"]
    assert [p["answer"] for p in predictions] == [a.decode() for a in expected["answer"]]
    assert [p["start_char"] for p in predictions] == expected["start_char"].tolist()
    assert [p["end_char"] for p in predictions] == expected["end_char"].tolist()
    np.testing.assert_allclose([p["score"] for p in predictions], expected["score"], atol=1e-6)
    for p, context in zip(predictions, CONTEXTS):
        assert context[p["start_char"]:p["end_char"]] == p["answer"]

    columns = requests.post(server + "/v1/models/qa/versions/1:predict",
                            json={"inputs": {"question": QUESTIONS, "context": CONTEXTS}})
    assert columns.status_code == 200, columns.text
    assert columns.json()["outputs"]["answer"] == [p["answer"] for p in predictions]
    missing = requests.post(server + "/v1/models/qa:predict", json={"instances": QUESTIONS})
    assert missing.status_code == 400
    assert "each instance must be an object with keys ['context', 'question']" in (
        missing.json()["error"])


def test_question_answering_over_grpc_equals_rest(qa_server, qa_export):
    import tensorflow_serving.apis.predict_pb2 as predict_pb2
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "qa"
    request.inputs["question"].CopyFrom(tf.make_tensor_proto(QUESTIONS))
    request.inputs["context"].CopyFrom(tf.make_tensor_proto(CONTEXTS))
    with grpc.insecure_channel(qa_server.grpc_target) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, 30)
    outputs = {name: tf.make_ndarray(tensor) for name, tensor in response.outputs.items()}
    rest = requests.post(qa_server.model_url(":predict"), json={
        "inputs": {"question": QUESTIONS, "context": CONTEXTS}}).json()["outputs"]
    assert sorted(outputs) == sorted(rest)
    assert [answer.decode() for answer in outputs["answer"]] == rest["answer"]
    assert outputs["start_char"].tolist() == rest["start_char"]
    assert outputs["end_char"].tolist() == rest["end_char"]
    np.testing.assert_array_equal(outputs["score"], np.array(rest["score"], np.float32))
    expected = saved_model_answers(qa_export)
    assert outputs["start_char"].tolist() == expected["start_char"].tolist()


def test_demo_page_highlights_the_answer(server):
    from playwright.sync_api import sync_playwright

    require_chromium()
    expected = requests.post(server + "/v1/models/qa:predict", json={"instances": [
        {"question": QUESTIONS[0], "context": CONTEXTS[0]}]}).json()["predictions"][0]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 900, "height": 640})
        page.goto(server + "/")
        page.wait_for_selector("body[data-state=ready]", timeout=30_000)
        labels = [label.inner_text() for label in page.query_selector_all("label")]
        assert labels == ["Question", "Passage"]  # the export's order
        page.fill("#input-question", QUESTIONS[0])
        page.fill("#input-context", CONTEXTS[0])
        page.click("#predict")
        page.wait_for_selector("body[data-state=done]", timeout=30_000)
        # Python slices code points, as the page must.
        highlighted = CONTEXTS[0][expected["start_char"]:expected["end_char"]]
        assert highlighted and page.eval_on_selector(
            ".passage mark", "m => m.textContent") == highlighted
        assert page.eval_on_selector(".passage", "p => p.textContent") == CONTEXTS[0]
        assert page.inner_text("#answer").startswith("Answer: " + expected["answer"].strip())
        os.makedirs(ARTIFACTS, exist_ok=True)
        path = os.path.join(ARTIFACTS, "demo_page_qa.png")
        page.screenshot(path=path, full_page=True)
        print(f"demo page screenshot: {path}")
        browser.close()
