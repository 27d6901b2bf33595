"""Helpers for the serving tests: a tiny exported classifier and a real server process.

One tiny classifier (hidden 8, 2 layers, the packaged uncased vocabulary) is
exported per test session with the real `export_task_saved_model`; servers are
`electra-tf serve` subprocesses on free loopback ports.

No server outlives the test session that started it: `tests/conftest.py`
stops every live `ServerProcess` when the session ends (`stop_all_servers`), and on
Linux each server also gets SIGTERM from the kernel if the process that started it
dies. An atexit handler alone is not enough under pytest-xdist: a worker that a
stray non-daemon thread keeps alive at exit is killed by xdist after 10 s, before
its atexit handlers run, and a worker that crashes runs none.
"""

import atexit
import ctypes
import functools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import requests
import tensorflow as tf

LABEL_NAMES = ["negative", "neutral", "positive"]
MAX_SEQ_LENGTH = 32
TEXTS = [
    "A gripping, beautifully shot film.",
    "Dull. I left early.",
    "The café's coffee was fine, the pastries were not!",
    "It was okay, I guess; nothing special but not bad either.",
]
HOST = "127.0.0.1"


@functools.lru_cache(maxsize=None)
def tiny_classifier(seed=0):
    """(classifier, tokenizer): random weights, deterministic (seeded)."""
    import electra_tf
    from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer

    tf.keras.utils.set_random_seed(seed)
    encoder = electra_tf.ElectraEncoder(vocab_size=30522, hidden_size=8, num_layers=2,
                                        num_heads=2, intermediate_size=16, embedding_size=8,
                                        max_sequence_length=64)
    classifier = electra_tf.ElectraClassifier(encoder, num_classes=len(LABEL_NAMES))
    tokenizer = ElectraTokenizer()
    classifier(tokenizer.pack([tokenizer.tokenize(["warm up"])], MAX_SEQ_LENGTH))
    return classifier, tokenizer


@functools.lru_cache(maxsize=None)
def exported_model_dir(truncate=True, seed=0):
    """A TF Serving base directory NAME/1/ holding the tiny classifier's export."""
    from electra_tf.export.task_saved_model import export_task_saved_model

    classifier, tokenizer = tiny_classifier(seed)
    base = os.path.join(tempfile.mkdtemp(prefix="electra_serving_"), "sentiment")
    export_task_saved_model(classifier, os.path.join(base, "1"), tokenizer=tokenizer,
                            max_seq_length=MAX_SEQ_LENGTH, label_names=LABEL_NAMES,
                            truncate=truncate)
    return base


def in_process_probabilities(texts, seed=0):
    """What the in-memory classifier says: softmax probabilities (batch, classes)."""
    classifier, tokenizer = tiny_classifier(seed)
    inputs = tokenizer.pack([tokenizer.tokenize(texts)], MAX_SEQ_LENGTH)
    return tf.nn.softmax(classifier(inputs, training=False)).numpy()


def in_process_token_counts(texts):
    _, tokenizer = tiny_classifier()
    return (tokenizer.tokenize(texts).row_lengths().numpy() + 2).tolist()  # + [CLS], [SEP]


def popen_tied_to_this_process(command, **kwargs):
    """`subprocess.Popen(command)` whose child gets SIGTERM when this process dies.

    Linux's PR_SET_PDEATHSIG, set in the child before it execs; elsewhere a plain Popen.
    The signal follows the thread that started the child, so call this from the
    main thread (pytest's fixtures and tests run there).
    """
    if sys.platform.startswith("linux"):
        # Everything looked up before the fork: the child runs as little Python as it can.
        prctl, parent, sigterm = ctypes.CDLL(None).prctl, os.getpid(), int(signal.SIGTERM)

        def die_with_parent():
            prctl(1, sigterm)  # 1 = PR_SET_PDEATHSIG
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)

        kwargs["preexec_fn"] = die_with_parent
    return subprocess.Popen(command, **kwargs)


def process_is_running(pid):
    """Whether `pid` is a live process (Linux's /proc; a zombie, dead but not reaped, is not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


_LIVE_SERVERS = []


def stop_all_servers():
    """Stops every `ServerProcess` not stopped yet (tests/conftest.py, at session end)."""
    for server in list(_LIVE_SERVERS):
        server.stop()


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class ServerProcess:
    """`electra-tf serve MODEL_DIR ...` in a subprocess on a free loopback port."""

    def __init__(self, model_dir, *options, name="sentiment"):
        self.port = free_port()
        self.name = name
        self.url = f"http://{HOST}:{self.port}"
        self.grpc_target = (f"{HOST}:{options[options.index('--grpc-port') + 1]}"
                            if "--grpc-port" in options else None)
        self.log_path = tempfile.mktemp(prefix="electra_serve_", suffix=".log")
        self._log = open(self.log_path, "w")
        self.process = popen_tied_to_this_process(
            [sys.executable, "-m", "electra_tf.cli.main", "serve", model_dir, "--name", name,
             "--port", str(self.port), *options],
            stdout=self._log, stderr=subprocess.STDOUT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        _LIVE_SERVERS.append(self)
        atexit.register(self.stop)
        deadline = time.time() + 180
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n"
                                   + self.log())
            try:
                if requests.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError("the server did not become ready in 180 s:\n" + self.log())

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def model_url(self, suffix=""):
        return f"{self.url}/v1/models/{self.name}{suffix}"

    def terminate(self):
        self.process.send_signal(signal.SIGTERM)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        if self in _LIVE_SERVERS:
            _LIVE_SERVERS.remove(self)


@functools.lru_cache(maxsize=None)
def shared_server():
    """One server for the contract, fuzz and demo-page tests (stopped at session end).

    A 20 ms batch timeout makes concurrent test requests share batches reliably;
    version 1 is labelled "stable" for /labels/stable URLs; gRPC is on too.
    """
    return ServerProcess(exported_model_dir(), "--batch-timeout-ms", "20",
                         "--max-instances", "8", "--max-text-length", "2000",
                         "--max-body-bytes", "65536", "--version-labels", "stable=1",
                         "--grpc-port", str(free_port()))


def assert_probabilities_match(predictions, texts):
    expected = in_process_probabilities(texts)
    served = np.array([p["probabilities"] for p in predictions], dtype=np.float32)
    np.testing.assert_allclose(served, expected, atol=1e-6, rtol=0)
    assert [p["label"] for p in predictions] == [LABEL_NAMES[i] for i in expected.argmax(-1)]
    assert [p["label_id"] for p in predictions] == expected.argmax(-1).tolist()


class InProcessServer:
    """An ASGI app served by uvicorn on a loopback port, on a thread of this process."""

    def __init__(self, app):
        import threading

        import uvicorn

        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host=HOST, port=self.port,
                                                    log_level="warning"))
        # uvicorn installs no signal handlers off the main thread.
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 60
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("the in-process server did not start")
            time.sleep(0.05)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(30)


def poisonable_model_dir():
    """A SavedModel {"text"} -> {"length"} whose batch fails when any text is "poison"."""

    class Poisonable(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text):
            tf.debugging.assert_equal(tf.reduce_any(tf.equal(text, "poison")), False,
                                      message="poisoned text")
            return {"length": tf.strings.length(text)}

    path = tempfile.mkdtemp(prefix="electra_serving_poison_")
    module = Poisonable()
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    return path
