"""Fuzzing the live server: no malformed request gets a 5xx, and the server keeps answering.

Three bounded parts, about 600 requests in all (~20 s):
- a corpus of hostile bodies (huge numbers, nesting 30,000 deep, lone surrogates and
  invalid UTF-8, other encodings, enormous strings), each answered 4xx with
  TF Serving's {"error": "..."} body, the next good request answered 200;
- hypothesis: any JSON value in every field of a predict body (strings with
  lone surrogates included);
- schemathesis: requests generated from the server's own OpenAPI spec. It is
  driven through hypothesis strategies (`operation.as_strategy()`), not its
  pytest plugin, which breaks with some pytest releases.
"""

import json
import re

import hypothesis
import pytest
import requests
from hypothesis import strategies as st
from serving_helpers import TEXTS, shared_server

EXAMPLES_PER_FIELD = 40
EXAMPLES_PER_OPERATION = 25
PREDICT = 'endpoint="/v1/models/{name}:predict"'
# Nesting far past Python's recursion limit (1,000) that still fits the shared server's
# --max-body-bytes 65536.
DEEP = 30_000


@pytest.fixture(scope="module")
def server():
    return shared_server()


def predict_counts(server):
    """{status code: predict requests answered so far}, from the server's /metrics."""
    text = requests.get(server.url + "/metrics").text
    return {int(code): float(value) for code, value in re.findall(
        r'^electra_tf_requests_total\{code="(\d+)",' + re.escape(PREDICT) + r'\} (\S+)$',
        text, flags=re.M)}


def post_raw(server, body, content_type="application/json"):
    return requests.post(server.model_url(":predict"), data=body,
                         headers={"Content-Type": content_type}, timeout=60)


def assert_tf_serving_error(response, statuses=(400,)):
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    assert isinstance(response.json()["error"], str) and response.json()["error"]


def assert_still_answers(server):
    response = requests.post(server.model_url(":predict"), json={"instances": TEXTS[:1]})
    assert response.status_code == 200, response.text
    assert server.process.poll() is None


HOSTILE = {
    "5000-digit integer": b'{"instances": [' + b"1" * 5000 + b"]}",
    "5000-digit integer as signature_name": (
        b'{"signature_name": ' + b"9" * 5000 + b', "instances": ["a"]}'),
    "float overflow": b'{"instances": [1e99999]}',
    "NaN literal": b'{"instances": [NaN]}',
    "array nested 30,000 deep": (
        b'{"instances": ' + b"[" * DEEP + b"]" * DEEP + b"}"),
    "object nested 10,000 deep": b'{"a":' * (DEEP // 3) + b"1" + b"}" * (DEEP // 3),
    "unterminated nesting": b"[" * DEEP,
    "lone surrogate, row format": b'{"instances": ["\\ud800"]}',
    "lone surrogate, columnar format": b'{"inputs": {"text": ["fine", "\\udfff"]}}',
    "lone surrogate, count_tokens": (
        b'{"signature_name": "count_tokens", "instances": ["\\ud800 x"]}'),
    "lone surrogate, named row": b'{"instances": [{"text": "\\ud83d"}]}',
    "lone surrogate, key": b'{"instances": [{"\\ud800": "a"}]}',
    "lone surrogate, signature_name": b'{"signature_name": "\\ud800", "instances": ["a"]}',
    "invalid UTF-8": b'{"instances": ["\xff\xfe"]}',
    "overlong UTF-8": b'{"instances": ["\xc0\xaf"]}',
    "UTF-8-encoded surrogate": b'{"instances": ["\xed\xa0\x80"]}',
    "UTF-16 body": '{"instances": ["a"]}'.encode("utf-16"),
    "UTF-32 body": '{"instances": ["a"]}'.encode("utf-32"),
    "UTF-8 byte-order mark": b'\xef\xbb\xbf{"instances": ["a"]}',
    "empty body": b"",
    "null": b"null",
    "truncated": b'{"instances": ["a"',
    "text over --max-text-length": json.dumps({"instances": ["x" * 2001]}).encode(),
    "b64 over --max-text-length": b'{"instances": [{"b64": "' + b"QUFB" * 700 + b'"}]}',
    "too many instances": json.dumps({"instances": ["a"] * 9}).encode(),
    "b64 not base64": b'{"instances": [{"b64": "###"}]}',
    "b64 non-ASCII": b'{"instances": [{"b64": "\\u00e9"}]}',
    "b64 number": b'{"instances": [{"b64": 1}]}',
    "signature_name a list": b'{"signature_name": ["serving_default"], "instances": ["a"]}',
    "inputs null": b'{"inputs": null}',
    "inputs text null": b'{"inputs": {"text": null}}',
    "instances and inputs": b'{"instances": ["a"], "inputs": ["a"]}',
}
TOO_LARGE = {
    "enormous string": json.dumps({"instances": ["x" * 70_000]}).encode(),
    "enormous body of nesting": b"[" * 70_000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_body_gets_a_400_and_the_server_goes_on(server, name):
    assert_tf_serving_error(post_raw(server, HOSTILE[name]))
    assert_still_answers(server)


@pytest.mark.parametrize("name", sorted(TOO_LARGE))
def test_enormous_body_gets_a_413(server, name):
    assert_tf_serving_error(post_raw(server, TOO_LARGE[name]), statuses=(413,))
    assert_still_answers(server)


# Any JSON value; strings include lone surrogates (json.dumps writes them as \ud800).
TEXT = st.one_of(st.text(max_size=20),
                 st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1,
                         max_size=3))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(TEXT | st.sampled_from(["text", "b64", "instances", "inputs"]),
                      children, max_size=4),
    max_leaves=12)
# A predict body with a fuzzed value in each field in turn.
BODIES = st.one_of(
    JSON,
    st.builds(lambda v: {"instances": v}, JSON),
    st.builds(lambda v: {"instances": [v]}, JSON),
    st.builds(lambda v: {"instances": ["fine", v]}, JSON),
    st.builds(lambda v: {"instances": [{"text": v}]}, JSON),
    st.builds(lambda v: {"instances": [{"b64": v}]}, JSON),
    st.builds(lambda v: {"inputs": v}, JSON),
    st.builds(lambda v: {"inputs": {"text": v}}, JSON),
    st.builds(lambda v: {"inputs": {"text": ["fine"], "other": v}}, JSON),
    st.builds(lambda v: {"signature_name": v, "instances": ["fine"]}, JSON),
    st.builds(lambda s, v: {"signature_name": s, "instances": v},
              st.sampled_from(["serving_default", "count_tokens", ""]),
              st.lists(TEXT, min_size=1, max_size=4)),
)


def test_any_json_in_any_field_is_answered_without_a_server_error(server):
    @hypothesis.given(body=BODIES)
    @hypothesis.settings(max_examples=EXAMPLES_PER_FIELD * 10, deadline=None, derandomize=True,
                         database=None, suppress_health_check=list(hypothesis.HealthCheck))
    def check(body):
        response = post_raw(server, json.dumps(body).encode())
        assert response.status_code in (200, 400), (body, response.status_code, response.text)
        if response.status_code == 400:
            assert isinstance(response.json()["error"], str)

    check()
    assert_still_answers(server)


def test_requests_from_the_openapi_spec_get_no_server_error(server):
    import schemathesis

    before = predict_counts(server)
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10

    for operation in operations:
        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None,
                             derandomize=True, database=None,
                             suppress_health_check=list(hypothesis.HealthCheck))
        def check(case):
            response = case.call(base_url=server.url, timeout=30)
            assert response.status_code < 500, (case.path, case.body, response.status_code,
                                                response.text)
            if response.status_code >= 400:  # every error is TF Serving's {"error": "..."}
                assert isinstance(response.json()["error"], str)

        check()
    after = predict_counts(server)
    # The fuzzer reached the model (valid bodies: 200) and the validation (400).
    assert after.get(200, 0) > before.get(200, 0), (before, after)
    assert after.get(400, 0) > before.get(400, 0), (before, after)
    assert_still_answers(server)
