"""Fault tolerance: a pretraining process killed with SIGKILL resumes from its last checkpoint,
and trains on exactly the batches an uninterrupted run trains on (exactly-once data)."""

import csv
import os
import signal
import subprocess
import sys
import time

import pytest

from electra_tf.optimization.warmup_linear_decay import WarmupLinearDecay

SCRIPT = """
import sys
from electra_tf.pretraining.run_pretraining import PretrainingConfig, run_pretraining
run_pretraining(PretrainingConfig(
    corpus=sys.argv[1], output_dir=sys.argv[2], preset="tiny", model_overrides={"num_layers": 1},
    max_seq_length=32, batch_size=4, steps=int(sys.argv[3]), learning_rate=1e-3, warmup_steps=4,
    checkpoint_every=5, log_every=1, shuffle_buffer=16, progress=False, batch_log=sys.argv[4]))
"""


def logged_steps(output_dir):
    path = os.path.join(output_dir, "history.csv")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [row for row in csv.DictReader(f)]


def batch_log(path):
    """[(step, fingerprint)] in the order written; a line cut short by the kill is dropped."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        rows = [line.split() for line in f]
    return [(int(row[0]), int(row[1])) for row in rows if len(row) == 2]


def test_sigkill_then_same_command_resumes(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(
        "\n".join(f"The {w} sentence number {i} of document {d} is here." for i in range(12))
        for d, w in enumerate(["first", "second", "third", "fourth", "fifth", "sixth"] * 4)))
    output = tmp_path / "run"
    log = tmp_path / "batches.txt"
    command = [sys.executable, "-c", SCRIPT, str(corpus), str(output), "400", str(log)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    # The reference: the batches of an uninterrupted 30-step run (the data does not depend on `steps`).
    reference_log = tmp_path / "reference_batches.txt"
    reference = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(corpus), str(tmp_path / "reference"), "30", str(reference_log)],
        env=env, capture_output=True, text=True, timeout=300)
    assert reference.returncode == 0, reference.stderr[-2000:]
    uninterrupted = dict(batch_log(reference_log))
    assert sorted(uninterrupted) == list(range(1, 31))
    assert len(set(uninterrupted.values())) == 30  # distinct batches: a repeat would show
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        # Kill once a checkpoint exists and training has gone past it.
        while time.time() < deadline:
            rows = logged_steps(output)
            if rows and int(rows[-1]["step"]) >= 12 and os.path.isdir(output / "checkpoints"):
                break
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint within the time limit")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    killed_at = int(logged_steps(output)[-1]["step"])
    assert not (output / "discriminator").exists()  # final exports never half-written

    if log.exists() and not log.read_text().endswith("\n"):
        with open(log, "a") as f:  # a line the kill cut short ends here, not in the next run's first
            f.write("\n")
    before_restart = len(batch_log(log))
    # The same command, shortened to finish soon: it resumes, it does not restart.
    command[-2] = "30"
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = logged_steps(output)
    steps = [int(r["step"]) for r in rows]
    # Checkpoints every 5 steps: it restarts from the last checkpoint written before the kill,
    # and the rows logged after that checkpoint are replaced, not repeated. A step's row is
    # written before its checkpoint, so that checkpoint is at most the last logged step (a
    # kill between the two restarts 5 steps earlier), and history.csv never has a gap.
    restart = batch_log(log)[before_restart][0] - 1  # the resumed run trains restart+1 first
    assert restart % 5 == 0 and restart >= 5
    assert killed_at - 5 <= restart <= killed_at, (killed_at, restart)
    assert steps == list(range(1, 31)), steps
    resumed = steps[restart:]
    assert resumed[0] == restart + 1 and resumed[-1] == 30
    # The learning-rate schedule continues from the restored step (30-step schedule now);
    # the rate logged at step s is the one step s applied: schedule(s - 1).
    schedule = WarmupLinearDecay(1e-3, decay_steps=30, warmup_steps=4)
    for row in rows[restart:]:
        step = int(row["step"])
        assert float(row["learning_rate"]) == pytest.approx(float(schedule(step - 1)), rel=1e-5), (killed_at, [(r["step"], r["learning_rate"]) for r in rows])
    assert (output / "discriminator" / "model.weights.h5").exists()

    # Exactly-once data: the restarted process trains steps restart+1..30 on the batches the
    # uninterrupted run trained on at those steps (not on the stream's first batches again) ...
    logged = batch_log(log)
    assert [step for step, _ in logged[before_restart:]] == list(range(restart + 1, 31))
    assert logged[before_restart:] == [(step, uninterrupted[step]) for step in range(restart + 1, 31)]
    # ... so the batches behind the final run (the last one logged per step) are the same sequence.
    assert dict(logged) == uninterrupted
