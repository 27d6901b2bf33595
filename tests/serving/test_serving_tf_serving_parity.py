"""Where TensorFlow Serving's REST API behaves a particular way, `electra-tf serve` does too.

One test per difference a held-out run found (TF Serving's REST API documentation,
`json_tensor.cc` and `http_rest_api_handler.cc`); the differences we keep on
purpose are listed, with reasons, in the README's serving section.
"""

import base64
import json
import re

import numpy as np
import pytest
import requests
from serving_helpers import (
    LABEL_NAMES,
    TEXTS,
    assert_probabilities_match,
    in_process_probabilities,
    shared_server,
)


@pytest.fixture(scope="module")
def server():
    return shared_server()


def test_unknown_top_level_keys_are_ignored(server):
    response = requests.post(server.model_url(":predict"), json={
        "instances": TEXTS[:2], "client_request_id": "abc", "parameters": {"x": 1}})
    assert response.status_code == 200, response.text
    assert_probabilities_match(response.json()["predictions"], TEXTS[:2])


def test_extra_keys_inside_columnar_inputs_are_ignored(server):
    response = requests.post(server.model_url(":predict"), json={
        "inputs": {"text": TEXTS[:2], "not_an_input": [1, 2, 3]}})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["outputs"]["probabilities"],
                               in_process_probabilities(TEXTS[:2]), atol=1e-6)


@pytest.mark.parametrize("suffix", [":classify", ":regress", "/versions/1:classify",
                                    "/labels/stable:regress"])
def test_classify_and_regress_are_400_not_a_signature_of_that_kind(server, suffix):
    response = requests.post(server.model_url(suffix), json={"examples": [{"text": "a"}]})
    assert response.status_code == 400, response.text
    verb = suffix.rsplit(":", 1)[1]
    assert f"Expected a {verb} signature" in response.json()["error"]
    other = requests.post(server.url + f"/v1/models/other{suffix}", json={"examples": []})
    assert other.status_code == 404  # the model is looked up first, as in TF Serving


@pytest.mark.parametrize("method,suffix", [
    ("GET", ":predict"), ("PUT", ":predict"), ("DELETE", ""), ("POST", ""),
    ("POST", "/metadata"), ("PATCH", "/versions/1"),
])
def test_a_wrong_method_is_400_malformed_request(server, method, suffix):
    response = requests.request(method, server.model_url(suffix), json={"instances": ["a"]})
    assert response.status_code == 400, response.text
    assert response.json() == {"error": f"Malformed request: {method} /v1/models/sentiment"
                                        f"{suffix}"}


@pytest.mark.parametrize("instances", [["a text", {"text": "b"}], [{"text": "b"}, "a text"]])
def test_instances_mixing_strings_and_objects_are_400(server, instances):
    response = requests.post(server.model_url(":predict"), json={"instances": instances})
    assert response.status_code == 400, response.text
    assert "must all be objects {input name: value} or all bare values" in (
        response.json()["error"])


def test_empty_text_runs_the_model(server):
    response = requests.post(server.model_url(":predict"), json={"instances": ["", "  "]})
    assert response.status_code == 200, response.text
    assert_probabilities_match(response.json()["predictions"], ["", "  "])


def test_get_v1_models_without_a_name_is_400(server):
    response = requests.get(server.url + "/v1/models")
    assert response.status_code == 400
    assert response.json() == {"error": "Missing model name in request."}


def test_url_patterns_are_case_insensitive_but_the_model_name_is_not(server):
    predict = requests.post(server.url + "/V1/Models/sentiment/VERSIONS/1:PREDICT",
                            json={"instances": TEXTS[:1]})
    assert predict.status_code == 200, predict.text
    assert_probabilities_match(predict.json()["predictions"], TEXTS[:1])
    metadata = requests.get(server.url + "/v1/MODELS/sentiment/Labels/stable/MetaData")
    assert metadata.status_code == 200, metadata.text
    assert metadata.json() == requests.get(server.model_url("/metadata")).json()
    assert requests.get(server.url + "/V1/MODELS/sentiment").status_code == 200
    wrong_name = requests.post(server.url + "/v1/models/SENTIMENT:predict",
                               json={"instances": ["a"]})
    assert wrong_name.status_code == 404
    assert "Servable not found for request: Latest(SENTIMENT)" in wrong_name.json()["error"]


def test_labels_reach_the_labelled_version(server):
    status = requests.get(server.model_url("/labels/stable"))
    assert status.status_code == 200
    assert status.json()["model_version_status"][0]["version"] == "1"
    metadata = requests.get(server.model_url("/labels/stable/metadata")).json()
    assert metadata["model_spec"]["version"] == "1"
    predict = requests.post(server.model_url("/labels/stable:predict"),
                            json={"instances": TEXTS[:2]})
    assert predict.status_code == 200, predict.text
    assert_probabilities_match(predict.json()["predictions"], TEXTS[:2])
    unknown = requests.post(server.model_url("/labels/canary:predict"), json={"instances": ["a"]})
    assert unknown.status_code == 400
    assert "Unrecognized servable version label: canary" in unknown.json()["error"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_a_json_body_not_in_utf8_is_400(server, encoding):
    body = json.dumps({"instances": TEXTS[:1]}).encode(encoding)
    response = requests.post(server.model_url(":predict"), data=body,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    # Without a byte-order mark, UTF-16 ASCII text is valid UTF-8 holding NUL bytes: not JSON.
    message = response.json()["error"]
    assert "not UTF-8" in message or "not valid JSON" in message, message


def test_b64_bytes_that_are_not_utf8_go_to_the_model(server):
    data = b"\xff\xfe caf\xe9 good"
    response = requests.post(server.model_url(":predict"), json={
        "instances": [{"b64": base64.b64encode(data).decode()}]})
    assert response.status_code == 200, response.text
    # The in-process model reads the same bytes.
    assert_probabilities_match(response.json()["predictions"], [data])


def test_floats_are_written_in_float32_shortest_form(server):
    response = requests.post(server.model_url(":predict"), json={"instances": TEXTS})
    numbers = re.findall(r'"probabilities":\[([^\]]*)\]', response.text)
    assert len(numbers) == len(TEXTS)
    for written in ",".join(numbers).split(","):
        value = np.float32(written)
        assert written == str(value), f"{written} is not float32's shortest form {value}"
    served = np.array([p["probabilities"] for p in response.json()["predictions"]], np.float32)
    np.testing.assert_array_equal(served.argmax(-1),
                                  in_process_probabilities(TEXTS).argmax(-1))
    assert [p["label"] for p in response.json()["predictions"]] == [
        LABEL_NAMES[i] for i in served.argmax(-1)]
