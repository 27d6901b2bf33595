"""A second server: the export with truncate=False, overload (503) and SIGTERM under load.

Its 2 s batch timeout keeps requests in flight long enough to overload the
queue and to send SIGTERM while they wait, deterministically. A batch stops
waiting early once it holds as many instances as the last batch answered, so
those tests first run a full batch of 64 (`full_batch_first`): the batches
after it wait for 64 instances or the 2 s.
"""

import concurrent.futures
import re
import signal
import time

import pytest
import requests
from serving_helpers import (
    TEXTS,
    ServerProcess,
    assert_probabilities_match,
    exported_model_dir,
    in_process_token_counts,
)

MAX_QUEUE = 20


@pytest.fixture(scope="module")
def server():
    server = ServerProcess(exported_model_dir(truncate=False), "--batch-timeout-ms", "2000",
                           "--max-batch-size", "64", "--max-queue", str(MAX_QUEUE))
    yield server
    server.stop()


def post(server, texts):
    # A fresh connection per request: after SIGTERM no keep-alive connection is reused.
    return requests.post(server.model_url(":predict"), json={"instances": texts},
                         headers={"Connection": "close"}, timeout=60)


def full_batch_first(server):
    answer = post(server, [TEXTS[i % 4] for i in range(64)])  # --max-batch-size 64
    assert answer.status_code == 200, answer.text


def test_too_long_text_is_refused_when_the_export_does_not_truncate(server):
    long_text = "word " * 40  # 42 tokens > max_seq_length 32
    with concurrent.futures.ThreadPoolExecutor(2) as pool:  # both land in one batch
        long_answer, short_answer = pool.map(lambda t: post(server, [t]), [long_text, TEXTS[1]])
    assert long_answer.status_code == 400
    assert in_process_token_counts([long_text]) == [42]
    message = long_answer.json()["error"]
    assert "longer than this model's max_seq_length=32 tokens" in message or (
        "Instance 0 has 42 tokens; this model reads at most 32" in message), message
    assert short_answer.status_code == 200  # its batch-mate is answered normally
    assert_probabilities_match(short_answer.json()["predictions"], TEXTS[1:2])


def test_overload_is_503_not_a_crash(server):
    full_batch_first(server)
    with concurrent.futures.ThreadPoolExecutor(2 * MAX_QUEUE) as pool:
        answers = list(pool.map(lambda i: post(server, [TEXTS[i % 4]]), range(2 * MAX_QUEUE)))
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(503) >= 1 and statuses.count(200) >= 1, statuses
    for i, answer in enumerate(answers):
        if answer.status_code == 503:
            assert "overloaded" in answer.json()["error"]
        else:
            assert_probabilities_match(answer.json()["predictions"], [TEXTS[i % 4]])
    assert requests.get(server.url + "/healthz").status_code == 200


def test_sigterm_finishes_requests_in_flight_then_exits_0_counting_every_answer(server):
    full_batch_first(server)
    in_flight = 16
    with concurrent.futures.ThreadPoolExecutor(in_flight) as pool:
        futures = [pool.submit(post, server, [TEXTS[i % 4]]) for i in range(in_flight)]
        deadline = time.time() + 60
        while time.time() < deadline:  # wait until all of them wait in the batcher
            metrics = requests.get(server.url + "/metrics", headers={"Connection": "close"}).text
            queued = float(re.search(r"^electra_tf_queued_requests (\S+)$", metrics, re.M)[1])
            if queued >= in_flight:
                break
            time.sleep(0.05)
        assert queued == in_flight
        # Requests that fail validation are answered (400) and counted too, never a 500.
        for body in (b'{"instances": ["\\ud800"]}', b'{"instances": [' + b"1" * 5000 + b"]}"):
            bad = requests.post(server.model_url(":predict"), data=body,
                                headers={"Connection": "close"}, timeout=60)
            assert bad.status_code == 400, bad.text
        server.terminate()
        answers = [future.result() for future in futures]
    for i, answer in enumerate(answers):
        assert answer.status_code == 200, answer.text
        assert_probabilities_match(answer.json()["predictions"], [TEXTS[i % 4]])
    # A drained server exits normally (uvicorn alone would re-raise the SIGTERM: -15).
    assert server.process.wait(60) == 0, server.log()
    answered, received, by_status = re.search(
        r"stopped; answered (\d+) of (\d+) requests received \(by status: ([^)]*)\)",
        server.log()).groups()
    counts = {int(status): int(count) for status, count in re.findall(r"(\d+): (\d+)", by_status)}
    assert answered == received and sum(counts.values()) == int(answered), server.log()
    # This module's 200s, 400s (the long text, the bad requests) and 503s (the overload).
    assert {200, 400, 503} <= set(counts), counts
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/healthz", timeout=5)
