"""Fuzzing the live server from its own OpenAPI spec with schemathesis: no 5xx, no crash.

Bounded: a fixed number of generated requests per operation (about 300 in all).
"""

import re

import hypothesis
import pytest
import requests
import schemathesis
from serving_helpers import TEXTS, shared_server

EXAMPLES_PER_OPERATION = 25


PREDICT = 'endpoint="/v1/models/{name}:predict"'


def predict_counts():
    """{status code: predict requests answered so far}, from the server's /metrics."""
    text = requests.get(shared_server().url + "/metrics").text
    return {int(code): float(value) for code, value in re.findall(
        r'^electra_tf_requests_total\{code="(\d+)",' + re.escape(PREDICT) + r'\} (\S+)$',
        text, flags=re.M)}


BEFORE = {}


@pytest.fixture(scope="module")
def api_schema():
    BEFORE.update(predict_counts())
    return schemathesis.openapi.from_url(shared_server().url + "/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hypothesis.settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True,
                     suppress_health_check=list(hypothesis.HealthCheck))
def test_no_server_errors(case):
    response = case.call(timeout=30)
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:  # every error is TF Serving's {"error": "..."}
        assert isinstance(response.json()["error"], str)


def test_server_survives_the_fuzzing():
    server = shared_server()
    after = predict_counts()
    # The fuzzer reached the model (valid bodies: 200) and the validation (400).
    assert after.get(200, 0) > BEFORE.get(200, 0), (BEFORE, after)
    assert after.get(400, 0) > BEFORE.get(400, 0), (BEFORE, after)
    assert server.process.poll() is None
    response = requests.post(server.model_url(":predict"), json={"instances": TEXTS[:1]})
    assert response.status_code == 200
