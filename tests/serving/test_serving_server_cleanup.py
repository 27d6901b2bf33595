"""No `electra-tf serve` process that a test starts outlives its test session.

A leaked server holds ~500 MB; one per CI run starved later runs of memory. The
guards live in `serving_helpers` (servers tied to the process that started them)
and `tests/conftest.py` (a session fixture that stops them); these tests run the
situations that leaked: a worker that pytest-xdist kills, a process that dies.
"""

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from serving_helpers import process_is_running

SERVING_TESTS = pathlib.Path(__file__).resolve().parent
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads /proc; PR_SET_PDEATHSIG is Linux's")


def wait_until_gone(pid, seconds):
    deadline = time.time() + seconds
    while process_is_running(pid) and time.time() < deadline:
        time.sleep(0.1)
    return not process_is_running(pid)


def test_a_child_started_by_the_helpers_dies_with_the_process_that_started_it():
    # The starter is SIGKILLed: no atexit handler, no fixture, nothing of Python runs.
    starter = subprocess.run(
        [sys.executable, "-c", textwrap.dedent("""
            import os, signal, subprocess, sys
            sys.path.insert(0, sys.argv[1])
            from serving_helpers import popen_tied_to_this_process
            child = popen_tied_to_this_process(["sleep", "600"], stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL)
            print(child.pid, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        """), str(SERVING_TESTS)],
        capture_output=True, text=True, timeout=120)
    assert starter.returncode == -signal.SIGKILL, starter.stderr
    child = int(starter.stdout.split()[-1])
    try:
        assert wait_until_gone(child, 10), f"`sleep` (pid {child}) outlived its starter"
    finally:
        if process_is_running(child):
            os.kill(child, signal.SIGKILL)


INNER_TEST = '''
import pathlib
import threading

from serving_helpers import ServerProcess, poisonable_model_dir, process_is_running

RECORD = pathlib.Path(__file__).with_name("record.txt")


def test_leaves_a_server_and_a_thread_that_keeps_the_worker_alive():
    server = ServerProcess(poisonable_model_dir(), name="poison")
    pid = server.process.pid
    RECORD.write_text(f"{pid}\\n")

    def after_the_session():  # not a daemon: xdist kills this worker 10 s after the session
        threading.main_thread().join()
        with RECORD.open("a") as record:
            record.write(f"running after the session: {process_is_running(pid)}\\n")

    threading.Thread(target=after_the_session).start()
'''


def test_no_server_outlives_an_xdist_session_whose_worker_xdist_kills(tmp_path):
    # The session's own conftest and helpers, as they are in this checkout.
    shutil.copy(SERVING_TESTS.parent / "conftest.py", tmp_path / "conftest.py")
    shutil.copy(SERVING_TESTS / "serving_helpers.py", tmp_path / "serving_helpers.py")
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    inner = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "1", "-p", "no:cacheprovider",
         "test_inner.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert inner.returncode == 0, inner.stdout + inner.stderr
    record = (tmp_path / "record.txt").read_text().splitlines()
    server = int(record[0])
    try:
        # The session fixture stopped the server before the worker's interpreter began to
        # exit, and nothing is left running once pytest has returned.
        assert record[1:] == ["running after the session: False"], record
        assert wait_until_gone(server, 10), f"the server (pid {server}) outlived the session"
    finally:
        if process_is_running(server):
            os.kill(server, signal.SIGKILL)
