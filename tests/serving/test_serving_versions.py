"""Model versions as TF Serving lays them out, and new versions swapped in under load.

A base path NAME/1/ is served with --version-labels stable=1 and file-system
polling every 0.2 s. While 4 clients send requests (20 ms apart), version 2 (a
differently seeded classifier) appears: it is loaded and swapped in with no
failed request; the latest answers by default, `versions/N` and
`labels/stable` reach theirs. The policy itself (an unlabelled older version is
unloaded, as TF Serving's default does) is tested on `ModelVersions.poll`.
"""

import os
import shutil
import tempfile
import threading
import time

import numpy as np
import pytest
import requests
from serving_helpers import TEXTS, ServerProcess, exported_model_dir, in_process_probabilities

CLIENTS = 4
PAUSE_S = 0.02  # between a client's requests: load, leaving CPU to load new versions
MAX_LOAD_S = 120  # the load stops by itself at the latest after this long


@pytest.fixture(scope="module")
def base_path():
    base = os.path.join(tempfile.mkdtemp(prefix="electra_serving_versions_"), "sentiment")
    shutil.copytree(os.path.join(exported_model_dir(), "1"), os.path.join(base, "1"))
    return base


def add_version(base, version, source):
    """Copies a SavedModel into base/VERSION atomically (a rename), as deployments should."""
    staging = os.path.join(base, f".staging-{version}")
    shutil.copytree(source, staging)
    os.rename(staging, os.path.join(base, str(version)))


class Load:
    """CLIENTS threads posting one text each, in a loop, until stopped (or MAX_LOAD_S)."""

    def __init__(self, url):
        self.url = url
        self.answers = []  # (time, text index, status, probabilities)
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self.client, args=(i,)) for i in range(CLIENTS)]
        for thread in self.threads:
            thread.start()

    def client(self, index):
        deadline = time.time() + MAX_LOAD_S
        with requests.Session() as session:
            i = index
            while not self.stop_event.is_set() and time.time() < deadline:
                text = i % len(TEXTS)
                response = session.post(self.url, json={"instances": [TEXTS[text]]}, timeout=60)
                probabilities = (response.json()["predictions"][0]["probabilities"]
                                 if response.status_code == 200 else None)
                self.answers.append((time.time(), text, response.status_code, probabilities))
                i += 1
                time.sleep(PAUSE_S)

    def stop(self):
        self.stop_event.set()
        for thread in self.threads:
            thread.join()
        return self.answers


def which_model(text, probabilities, expected):
    """The version whose in-process probabilities these are ("1" or "2")."""
    matches = [version for version, values in expected.items()
               if np.allclose(probabilities, values[text], atol=1e-6)]
    assert len(matches) == 1, (text, probabilities)
    return matches[0]


def wait_for_versions(server, versions, timeout_s=90):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        status = requests.get(server.model_url()).json()["model_version_status"]
        if [entry["version"] for entry in status] == versions:
            return
        time.sleep(0.1)
    raise AssertionError(f"the server never served {versions}; it serves {status}\n"
                         + server.log())


def test_new_versions_are_swapped_in_under_load_without_a_failed_request(base_path):
    expected = {"1": in_process_probabilities(TEXTS), "2": in_process_probabilities(TEXTS, 1)}
    version_2 = os.path.join(exported_model_dir(seed=1), "1")
    server = ServerProcess(base_path, "--version-labels", "stable=1",
                           "--file-system-poll-wait-seconds", "0.2", "--batch-timeout-ms", "5")
    load = None
    try:
        assert requests.get(server.model_url()).json()["model_version_status"][0][
            "version"] == "1"
        started = time.time()
        load = Load(server.model_url(":predict"))
        time.sleep(2)
        add_version(base_path, 2, version_2)
        wait_for_versions(server, ["1", "2"])  # 1 stays: it is labelled "stable"
        swapped_to_2 = time.time()
        print(f"version 2 served {swapped_to_2 - started:.1f} s into the load")
        time.sleep(2)
        for suffix, version in ((":predict", "2"), ("/versions/2:predict", "2"),
                                ("/versions/1:predict", "1"), ("/labels/stable:predict", "1")):
            answer = requests.post(server.model_url(suffix), json={"instances": TEXTS})
            assert answer.status_code == 200, answer.text
            served = [p["probabilities"] for p in answer.json()["predictions"]]
            np.testing.assert_allclose(served, expected[version], atol=1e-6)
    finally:
        answers = load.stop() if load is not None else []
        server.stop()
    assert server.process.returncode == 0, server.log()
    statuses = [status for _, _, status, _ in answers]
    assert statuses and set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    served = [(at, which_model(text, probabilities, expected))
              for at, text, _, probabilities in answers]
    # Clients saw version 1, then version 2; answers finishing just after the swap may
    # come from the model before it.
    assert {version for at, version in served if at < swapped_to_2 - 1} == {"1"}
    assert {version for at, version in served if at > swapped_to_2 + 1} == {"2"}
    print(f"{len(answers)} requests under load across the swap, 0 failed")


def lengths_model(path, offset):
    """A SavedModel {"text"} -> {"length": length + offset}: versions told apart by offset."""
    import tensorflow as tf

    class Lengths(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text):
            return {"length": tf.strings.length(text) + offset}

    module = Lengths()
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})


def test_polling_follows_tf_servings_default_policy(tmp_path):
    from electra_tf.serving.model_versions import ModelVersions

    def answer(model):
        return int(model.predict("serving_default", {"text": [b"abc"]})["length"][0])

    base = str(tmp_path / "lengths")
    lengths_model(os.path.join(base, "1"), 100)
    versions = ModelVersions(base, version_labels={"stable": "1"})
    assert versions.version_list() == ["1"] and versions.poll() == []
    lengths_model(os.path.join(base, "2"), 200)
    os.makedirs(os.path.join(base, "3"))  # being copied: no saved_model.pb yet, not a version
    assert versions.poll() == ["2"] and versions.version_list() == ["1", "2"]
    assert answer(versions.resolve()) == 203 and answer(versions.resolve(label="stable")) == 103
    shutil.rmtree(os.path.join(base, "3"))
    lengths_model(os.path.join(base, "3"), 300)
    assert versions.poll() == ["3"]
    assert versions.version_list() == ["1", "3"]  # 2: neither latest nor labelled, unloaded
    assert answer(versions.resolve()) == 303 and answer(versions.resolve(version="1")) == 103
    shutil.rmtree(os.path.join(base, "3"))  # the latest removed: the one before it returns
    assert versions.poll() == ["2"] and versions.version_list() == ["1", "2"]
    every = ModelVersions(base, policy="all")
    assert every.version_list() == ["1", "2"] and answer(every.resolve()) == 203
    with pytest.raises(ValueError, match=r"name versions \['7'\]"):
        ModelVersions(base, version_labels={"canary": "7"})
