"""Contract tests: a real `electra-tf serve` process on loopback speaks TF Serving's REST API.

Request bodies are written as TensorFlow Serving's REST documentation shows
them; predictions must equal the in-process classifier's.
"""

import base64
import concurrent.futures
import re

import numpy as np
import pytest
import requests
from serving_helpers import (
    LABEL_NAMES,
    TEXTS,
    assert_probabilities_match,
    in_process_probabilities,
    in_process_token_counts,
    shared_server,
)


@pytest.fixture(scope="module")
def server():
    return shared_server()


def test_model_status(server):
    response = requests.get(server.model_url())
    assert response.status_code == 200
    assert response.json() == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    ]}
    assert requests.get(server.model_url("/versions/1")).json() == response.json()


def test_metadata_is_the_signature_def(server):
    body = requests.get(server.model_url("/metadata")).json()
    assert body["model_spec"] == {"name": "sentiment", "signature_name": "", "version": "1"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert sorted(signatures) == ["count_tokens", "serving_default"]
    default = signatures["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    text = default["inputs"]["text"]
    assert text["dtype"] == "DT_STRING"
    assert text["tensor_shape"] == {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False}
    assert {name: spec["dtype"] for name, spec in default["outputs"].items()} == {
        "label": "DT_STRING", "label_id": "DT_INT32", "probabilities": "DT_FLOAT"}
    assert default["outputs"]["probabilities"]["tensor_shape"]["dim"][1]["size"] == "3"
    assert requests.get(server.model_url("/versions/1/metadata")).json() == body


def test_predict_row_format_bare_strings(server):
    response = requests.post(server.model_url(":predict"), json={"instances": TEXTS})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == len(TEXTS)
    assert sorted(predictions[0]) == ["label", "label_id", "probabilities"]
    assert_probabilities_match(predictions, TEXTS)


def test_predict_row_format_objects_and_b64_on_a_version(server):
    instances = [{"text": TEXTS[0]},
                 {"text": {"b64": base64.b64encode(TEXTS[2].encode()).decode()}}]
    response = requests.post(server.model_url("/versions/1:predict"),
                             json={"signature_name": "serving_default", "instances": instances})
    assert response.status_code == 200, response.text
    assert_probabilities_match(response.json()["predictions"], [TEXTS[0], TEXTS[2]])


@pytest.mark.parametrize("inputs", [{"text": TEXTS}, TEXTS], ids=["named", "bare_list"])
def test_predict_columnar_format(server, inputs):
    response = requests.post(server.model_url(":predict"), json={"inputs": inputs})
    assert response.status_code == 200, response.text
    outputs = response.json()["outputs"]
    assert sorted(outputs) == ["label", "label_id", "probabilities"]
    expected = in_process_probabilities(TEXTS)
    np.testing.assert_allclose(np.array(outputs["probabilities"], np.float32), expected,
                               atol=1e-6, rtol=0)
    assert outputs["label"] == [LABEL_NAMES[i] for i in expected.argmax(-1)]


def test_signature_name_selects_count_tokens(server):
    response = requests.post(server.model_url(":predict"),
                             json={"signature_name": "count_tokens", "instances": TEXTS})
    assert response.status_code == 200, response.text
    # One output: row-format predictions are bare values, as in TF Serving.
    assert response.json() == {"predictions": in_process_token_counts(TEXTS)}


def test_concurrent_requests_are_batched_and_answered_correctly(server):
    def metric_sum(name):
        text = requests.get(server.url + "/metrics").text
        match = re.search(rf"^{name} ([0-9.e+]+)$", text, flags=re.M)
        return float(match.group(1))

    batches_before = metric_sum("electra_tf_batch_size_count")
    instances_before = metric_sum("electra_tf_batch_size_sum")
    requests_sent = 24

    def one(i):
        text = TEXTS[i % len(TEXTS)]
        return text, requests.post(server.model_url(":predict"), json={"instances": [text]})

    with concurrent.futures.ThreadPoolExecutor(requests_sent) as pool:
        answers = list(pool.map(one, range(requests_sent)))
    for text, response in answers:
        assert response.status_code == 200, response.text
        assert_probabilities_match(response.json()["predictions"], [text])
    batches = metric_sum("electra_tf_batch_size_count") - batches_before
    instances = metric_sum("electra_tf_batch_size_sum") - instances_before
    assert instances == requests_sent
    assert batches < requests_sent, "concurrent requests should share model batches"


LONG_TEXT = "word " * 401  # 2005 characters > --max-text-length 2000


@pytest.mark.parametrize("method,suffix,body,status,message", [
    ("post", ":predict", b"{\"instances\": [", 400, "not valid JSON"),
    ("post", ":predict", {"instances": []}, 400, "non-empty"),
    ("post", ":predict", {"instances": "a text"}, 400, "'instances' must be a non-empty JSON list"),
    ("post", ":predict", {"instances": [1, 2]}, 400,
     "Instance 0 is a JSON number; expected a string"),
    ("post", ":predict", {"instances": [{"txt": "x"}]}, 400, "expected exactly ['text']"),
    ("post", ":predict", {"instances": ["a"] * 9}, 400, "at most 8 are allowed per request"),
    ("post", ":predict", {"instances": [LONG_TEXT]}, 400, "2005 characters; at most 2000"),
    ("post", ":predict", {"inputs": {"text": ["a"]}, "instances": ["a"]}, 400, "exactly one of"),
    ("post", ":predict", {"inputs": {"text": "a"}}, 400, "must be a non-empty list of strings"),
    ("post", ":predict", [1, 2], 400, "must be a JSON object"),
    ("post", ":predict", {"signature_name": "classify", "instances": ["a"]}, 400,
     "'classify' not found in signature def"),
    ("post", ":predict", {"instances": [{"b64": "###"}]}, 400, "not valid base64"),
    ("post", ":predict", {"instances": ["x" * 70000]}, 413, "at most 65536 are allowed"),
    ("get", ":predict", None, 400, "Malformed request: GET /v1/models/sentiment:predict"),
    ("post", "/versions/7:predict", {"instances": ["a"]}, 404, "Specific(sentiment, 7)"),
    ("get", "/versions/x", None, 400, "Malformed request: GET"),
])
def test_bad_requests_get_a_json_error_naming_the_problem(server, method, suffix, body, status,
                                                          message):
    kwargs = {"data": body} if isinstance(body, bytes) else {"json": body} if body else {}
    response = getattr(requests, method)(server.model_url(suffix), **kwargs)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_unknown_model_and_endpoint_are_404(server):
    response = requests.post(server.url + "/v1/models/other:predict", json={"instances": ["a"]})
    assert response.status_code == 404
    assert "Servable not found for request: Latest(other)" in response.json()["error"]
    response = requests.get(server.url + "/v2/models")
    assert response.status_code == 404 and "No such endpoint" in response.json()["error"]


def test_health_readiness_metrics_and_openapi(server):
    assert requests.get(server.url + "/healthz").json() == {"status": "ok"}
    assert requests.get(server.url + "/readyz").json()["status"] == "ready"
    metrics = requests.get(server.url + "/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    for name in ("electra_tf_requests_total", "electra_tf_request_errors_total",
                 "electra_tf_request_latency_seconds_bucket", "electra_tf_batch_size_bucket"):
        assert name in metrics.text
    assert re.search(r'electra_tf_requests_total\{code="200",'
                     r'endpoint="/v1/models/\{name\}:predict"\}', metrics.text)
    spec = requests.get(server.url + "/openapi.json").json()
    assert "/v1/models/{name}:predict" in spec["paths"]
    schema = spec["paths"]["/v1/models/{name}:predict"]["post"]["requestBody"]
    assert "instances" in schema["content"]["application/json"]["schema"]["properties"]
