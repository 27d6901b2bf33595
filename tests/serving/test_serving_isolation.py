"""One bad request never harms another: validation before batching, and a failed batch rerun
request by request so that only the offending request fails.
"""

import concurrent.futures
import re

import numpy as np
import pytest
import requests
import tensorflow as tf
from serving_helpers import (
    TEXTS,
    InProcessServer,
    assert_probabilities_match,
    poisonable_model_dir,
    shared_server,
)

from electra_tf.serving.request_error import RequestError
from electra_tf.serving.served_model import ServedModel
from electra_tf.serving.serving_app import build_serving_app, run_model_batch
from electra_tf.serving.serving_config import ServingConfig

GOOD = 30


def batch_counts(url):
    text = requests.get(url + "/metrics").text
    return tuple(float(re.search(rf"^electra_tf_batch_size_{kind} (\S+)$", text, re.M)[1])
                 for kind in ("count", "sum"))


def send_together(url, bodies):
    """POSTs every body at once (one thread each), so that they share batches."""
    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(lambda body: requests.post(
            url, data=body, headers={"Content-Type": "application/json"}, timeout=60), bodies))


@pytest.mark.parametrize("poison", [
    b'{"instances": ["\\ud800"]}',
    b'{"instances": [' + b"1" * 5000 + b"]}",
], ids=["lone_surrogate", "huge_number"])
def test_a_request_that_cannot_become_a_tensor_fails_alone(poison):
    server = shared_server()
    texts = [TEXTS[i % len(TEXTS)] for i in range(GOOD)]
    bodies = [b'{"instances": ["%s"]}' % text.encode() for text in texts]
    bodies.insert(GOOD // 2, poison)
    batches_before, instances_before = batch_counts(server.url)
    answers = send_together(server.model_url(":predict"), bodies)
    poisoned = answers.pop(GOOD // 2)
    assert poisoned.status_code == 400 and poisoned.json()["error"], poisoned.text
    for text, answer in zip(texts, answers):
        assert answer.status_code == 200, answer.text
        assert_probabilities_match(answer.json()["predictions"], [text])
    batches, instances = (after - before for after, before in
                          zip(batch_counts(server.url), (batches_before, instances_before)))
    assert instances == GOOD and batches < GOOD  # the good ones shared batches, without it


@pytest.fixture(scope="module")
def poisonable_server():
    model = ServedModel(poisonable_model_dir())
    app = build_serving_app({"1": model}, ServingConfig(name="lengths", batch_timeout_ms=200))
    server = InProcessServer(app)
    yield server
    server.stop()


def test_a_batch_the_model_rejects_is_rerun_so_only_the_offending_request_fails(
        poisonable_server):
    url = poisonable_server.url + "/v1/models/lengths:predict"
    texts = [f"text number {i}" for i in range(GOOD)]
    bodies = [b'{"instances": ["%s"]}' % text.encode() for text in texts]
    bodies.insert(7, b'{"instances": ["poison"]}')
    batches_before, _ = batch_counts(poisonable_server.url)
    answers = send_together(url, bodies)
    poisoned = answers.pop(7)
    assert poisoned.status_code == 400, poisoned.text
    assert "The model rejected the input" in poisoned.json()["error"]
    assert "poisoned text" in poisoned.json()["error"]
    for text, answer in zip(texts, answers):
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"predictions": [len(text)]}
    batches = batch_counts(poisonable_server.url)[0] - batches_before
    assert batches < GOOD + 1, "the poisoned request should have shared a batch"


class CrashingModel:
    """A stand-in ServedModel whose batch crashes (not an input error) on b"crash"."""

    truncate, max_seq_length, signature_names = True, None, ["serving_default"]

    def predict(self, signature_name, columns):
        texts = columns["text"].numpy().tolist()
        if b"crash" in texts:
            raise RuntimeError("the kernel crashed")
        if b"reject" in texts:
            raise tf.errors.InvalidArgumentError(None, None, "assertion failed: [rejected]")
        return {"length": np.array([len(text) for text in texts])}

    def unpad(self, outputs):  # ServedModel's interface: nothing here is padded per word
        return outputs


def test_run_model_batch_blames_only_the_request_that_breaks_the_batch():
    texts = [[b"a"], [b"crash"], [b"bb", b"ccc"], [b"reject"], [b"dddd"]]
    payloads = [{"text": tf.constant(column)} for column in texts]
    results = run_model_batch(CrashingModel(), "serving_default", payloads)
    assert [r["length"].tolist() for r in results if isinstance(r, dict)] == [[1], [2, 3], [4]]
    crashed, rejected = results[1], results[3]
    assert isinstance(crashed, RequestError) and crashed.status == 500
    assert "RuntimeError: the kernel crashed" in crashed.message
    assert isinstance(rejected, RequestError) and rejected.status == 400
    assert "assertion failed: [rejected]" in rejected.message
