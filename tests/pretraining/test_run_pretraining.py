"""run_pretraining end to end: outputs, the MLM objective, bad configs, and a resume after SIGKILL."""

import csv
import gzip
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from conftest import packaged_corpus

from electra_tf.models.electra_discriminator import ElectraDiscriminator
from electra_tf.models.electra_generator import ElectraGenerator
from electra_tf.optimization.warmup_linear_decay import WarmupLinearDecay
from electra_tf.pretraining.run_pretraining import PretrainingConfig, run_pretraining

AUSTEN = packaged_corpus("held_out")  # Persuasion


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The first 300 lines of Persuasion: a few hundred packed 32-token examples."""
    path = tmp_path_factory.mktemp("corpus") / "persuasion.txt"
    with gzip.open(AUSTEN, "rt", encoding="utf-8") as f:
        path.write_text("".join(line for _, line in zip(range(300), f)), encoding="utf-8")
    return str(path)


def tiny_run(corpus, output_dir, **overrides):
    """A few steps of the tiny preset with one layer: seconds, not hours."""
    settings = dict(
        corpus=corpus,
        output_dir=str(output_dir),
        preset="tiny",
        model_overrides={"num_layers": 1},
        max_seq_length=32,
        batch_size=4,
        steps=6,
        warmup_steps=2,
        checkpoint_every=3,
        log_every=1,
        shuffle_buffer=64,
        progress=False,
    )
    settings.update(overrides)
    return PretrainingConfig(**settings)


def read_rows(csv_path):
    with open(csv_path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def electra_run(corpus, tmp_path_factory):
    config = tiny_run(corpus, tmp_path_factory.mktemp("electra") / "run")
    history = run_pretraining(config)
    return config, history


def test_run_writes_every_output(electra_run):
    config, history = electra_run
    out = config.output_dir
    for name in ("discriminator", "generator", "discriminator_hf", "generator_hf", "checkpoints", "logs"):
        assert os.path.isdir(os.path.join(out, name)), name
    assert np.isfinite(history.history["loss"]).all()

    rows = read_rows(os.path.join(out, "history.csv"))
    assert [int(row["step"]) for row in rows] == list(range(1, 7))
    assert {"loss", "mlm_loss", "rtd_loss", "rtd_auc", "mlm_accuracy", "learning_rate"} <= set(rows[0])

    with open(os.path.join(out, "learning_curves.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(os.path.join(out, "history.json")) as f:
        saved = json.load(f)
    assert saved["config"]["steps"] == 6 and "loss" in saved["history"]


def test_tensorboard_logs_every_step(electra_run):
    config, _ = electra_run
    event_files = tf.io.gfile.glob(os.path.join(config.output_dir, "logs", "train", "events.out.tfevents.*"))
    assert event_files
    steps = {}
    for path in event_files:
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                steps.setdefault(value.tag, []).append(event.step)
    for tag in ("loss", "mlm_loss", "rtd_loss", "rtd_auc", "learning_rate"):
        assert sorted(steps.get(tag, [])) == list(range(1, 7)), tag


def test_saved_models_load_here_and_in_transformers(electra_run):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config, _ = electra_run
    out = config.output_dir
    discriminator = ElectraDiscriminator.from_pretrained(os.path.join(out, "discriminator"))
    generator = ElectraGenerator.from_pretrained(os.path.join(out, "generator"))
    assert discriminator.encoder.num_layers == generator.encoder.num_layers == 1
    assert discriminator.encoder.vocab_size == 30522

    ids = np.array([[101, 2009, 2003, 1037, 3899, 2154, 1012, 102, 0, 0]], np.int32)
    mask = (ids > 0).astype(np.int32)
    ours = discriminator(
        {"input_word_ids": ids, "input_mask": mask, "input_type_ids": np.zeros_like(ids)}
    )["logits"].numpy()
    hf_discriminator = transformers.ElectraForPreTraining.from_pretrained(os.path.join(out, "discriminator_hf"))
    hf_generator = transformers.ElectraForMaskedLM.from_pretrained(os.path.join(out, "generator_hf"))
    with torch.no_grad():
        theirs = hf_discriminator(
            input_ids=torch.tensor(ids, dtype=torch.long), attention_mask=torch.tensor(mask, dtype=torch.long)
        ).logits.numpy()
        mlm_logits = hf_generator(input_ids=torch.tensor(ids, dtype=torch.long)).logits
    real = mask.astype(bool)
    np.testing.assert_allclose(theirs[real], ours[real], atol=1e-4)
    assert mlm_logits.shape == (1, 10, 30522)


def test_mlm_objective(corpus, tmp_path):
    config = tiny_run(corpus, tmp_path / "run", objective="mlm", steps=3)
    history = run_pretraining(config)
    assert np.isfinite(history.history["loss"]).all()
    assert os.path.isdir(tmp_path / "run" / "generator")
    assert os.path.isdir(tmp_path / "run" / "generator_hf")
    assert not os.path.exists(tmp_path / "run" / "discriminator")
    rows = read_rows(tmp_path / "run" / "history.csv")
    assert [int(row["step"]) for row in rows] == [1, 2, 3]
    assert "mlm_loss" in rows[0] and "rtd_loss" not in rows[0]
    # The MLM model has the discriminator's size, not the generator's.
    generator = ElectraGenerator.from_pretrained(str(tmp_path / "run" / "generator"))
    assert generator.encoder.hidden_size == 32


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"objective": "gan"}, "objective"),
        ({"steps": 0}, "steps"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_config_is_rejected(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_run("unused.txt", tmp_path, **overrides)


def test_corpus_that_matches_nothing_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="No files match"):
        run_pretraining(tiny_run(str(tmp_path / "nothing" / "*.txt.gz"), tmp_path / "run"))
    with pytest.raises(ValueError, match="corpus"):
        run_pretraining(tiny_run(None, tmp_path / "run"))


# === Fault tolerance: SIGKILL mid-run, then the same command again ===

RESUME_STEPS = 50
RESUME_CHECKPOINT_EVERY = 10

# The pretraining command, plus a probe for the test: the optimizer's and the
# model's state when training begins (after any restore) and at every
# checkpoint step, written atomically to PROBE_DIR.
PRETRAIN_SCRIPT = """
import json, os, sys
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
import numpy as np
import tf_keras
from electra_tf.pretraining.run_pretraining import PretrainingConfig, run_pretraining

settings, probe_dir = json.loads(sys.argv[1]), sys.argv[2]

def dump(model, name):
    arrays = [v.numpy() for v in model.optimizer.variables] + [v.numpy() for v in model.trainable_weights]
    tmp = os.path.join(probe_dir, name + ".tmp.npz")
    np.savez(tmp, *arrays)
    os.replace(tmp, os.path.join(probe_dir, name + ".npz"))

# Probes on BackupAndRestore itself: after it restores (train begin) and after it saves.
Backup = tf_keras.callbacks.BackupAndRestore
begin, batch_end = Backup.on_train_begin, Backup.on_train_batch_end

def on_train_begin(self, logs=None):
    begin(self, logs)
    dump(self.model, "begin_%d_%d" % (os.getpid(), int(self.model.optimizer.iterations)))

def on_train_batch_end(self, batch, logs=None):
    batch_end(self, batch, logs)
    step = int(self.model.optimizer.iterations)
    if step % settings["checkpoint_every"] == 0:
        dump(self.model, "step_%d" % step)

Backup.on_train_begin, Backup.on_train_batch_end = on_train_begin, on_train_batch_end
run_pretraining(PretrainingConfig(**settings))
"""


def checkpoint_iterations(checkpoint_dir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(checkpoint_dir))
    key = next(k for k in reader.get_variable_to_shape_map() if k.endswith("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"))
    return int(reader.get_tensor(key))


def test_killed_run_resumes_from_its_checkpoint(corpus, tmp_path):
    output_dir, probe_dir = tmp_path / "run", tmp_path / "probe"
    probe_dir.mkdir()
    config = tiny_run(corpus, output_dir, steps=RESUME_STEPS, warmup_steps=20, learning_rate=1e-3,
                      checkpoint_every=RESUME_CHECKPOINT_EVERY)
    settings = {field: getattr(config, field) for field in config.__dataclass_fields__}
    command = [sys.executable, "-c", PRETRAIN_SCRIPT, json.dumps(settings), str(probe_dir)]
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")

    # 1. Start, wait for the first checkpoint (its probe is written right after it), SIGKILL.
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 180
            while not (probe_dir / f"step_{RESUME_CHECKPOINT_EVERY}.npz").exists():
                assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "no checkpoint within 180 s"
                time.sleep(0.02)
            first.send_signal(signal.SIGKILL)
            assert first.wait(timeout=30) == -signal.SIGKILL
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
    assert not (output_dir / "discriminator").exists()  # it died mid-run
    resumed_from = checkpoint_iterations(str(output_dir / "checkpoints" / "chief"))
    assert resumed_from % RESUME_CHECKPOINT_EVERY == 0 and 0 < resumed_from < RESUME_STEPS
    killed_at = int(read_rows(output_dir / "history.csv")[-1]["step"])

    # 2. The same command again, to the end.
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]

    # It began exactly where the checkpoint left off: step, optimizer slots and
    # learning-rate state, and model weights all equal the killed run's at that step.
    begins = [path.name for path in probe_dir.glob("begin_*_*.npz")]
    assert len(begins) == 2 and f"begin_{first.pid}_0.npz" in begins
    restart = next(name for name in begins if not name.startswith(f"begin_{first.pid}_"))
    assert restart.endswith(f"_{resumed_from}.npz")
    restored, saved = np.load(probe_dir / restart), np.load(probe_dir / f"step_{resumed_from}.npz")
    assert len(restored.files) == len(saved.files) > 0
    for name in saved.files:
        np.testing.assert_array_equal(restored[name], saved[name], err_msg=name)

    # The step count continues: 1..killed_at from the first run, then resumed_from+1..50.
    rows = read_rows(output_dir / "history.csv")
    steps = [int(row["step"]) for row in rows]
    assert steps == list(range(1, killed_at + 1)) + list(range(resumed_from + 1, RESUME_STEPS + 1))
    # ...and so does the schedule: the rate logged at step s is the one its update
    # used, schedule(s - 1); a schedule restarted from 0 would be back in warmup.
    schedule = WarmupLinearDecay(1e-3, RESUME_STEPS, warmup_steps=20)
    for row in rows:
        expected = float(schedule(int(row["step"]) - 1))
        np.testing.assert_allclose(float(row["learning_rate"]), expected, rtol=1e-5, atol=1e-9)

    assert checkpoint_iterations(str(output_dir / "checkpoints" / "chief")) == RESUME_STEPS
    assert (output_dir / "discriminator" / "model.weights.h5").is_file()
    assert (output_dir / "discriminator_hf" / "config.json").is_file()
