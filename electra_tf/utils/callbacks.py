"""Training callbacks: a tqdm progress bar and per-step logs (TensorBoard + CSV)."""

import csv
import os

import tensorflow as tf
import tf_keras as keras
from tqdm.auto import tqdm

# Shown in the progress bar, in this order, when present.
PROGRESS_KEYS = ("loss", "mlm_loss", "rtd_loss", "mlm_accuracy", "rtd_auc", "learning_rate")


def current_learning_rate(optimizer):
    """The rate of the optimizer's last applied step, schedule or not.

    tf-keras optimizers expose a scheduled rate as a variable holding the
    value the last update used: schedule(iterations - 1) after that update.
    """
    rate = optimizer.learning_rate
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        rate = rate(optimizer.iterations)
    return float(keras.backend.get_value(rate))


class ProgressBar(keras.callbacks.Callback):
    """A tqdm bar over training steps that starts where a resumed run left off."""

    def __init__(self, total_steps, log_every=10):
        super().__init__()
        self.total_steps = total_steps
        self.log_every = log_every
        self.bar = None

    def on_train_begin(self, logs=None):
        start = int(self.model.optimizer.iterations.numpy())
        self.bar = tqdm(total=self.total_steps, initial=start, desc="pretraining", unit="step",
                        dynamic_ncols=True, mininterval=1.0)

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update(1)
        if logs and self.bar.n % self.log_every == 0:
            self.bar.set_postfix({k: f"{float(logs[k]):.4g}" for k in PROGRESS_KEYS if k in logs},
                                 refresh=False)

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()


def truncate_csv_after_step(csv_path, step):
    """Drops the rows of a step-indexed CSV whose "step" is above `step` (atomic rewrite).

    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "history.csv")
    >>> _ = open(path, "w").write("step,loss\\n1,0.9\\n2,0.8\\n3,0.7\\n")
    >>> truncate_csv_after_step(path, 2)
    >>> open(path).read().split()
    ['step,loss', '1,0.9', '2,0.8']
    """
    if not os.path.exists(csv_path):
        return
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        fieldnames, rows = reader.fieldnames, list(reader)
    kept = [row for row in rows if int(float(row["step"])) <= step]
    if len(kept) == len(rows):
        return
    temporary = f"{csv_path}.tmp"
    with open(temporary, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(kept)
    os.replace(temporary, csv_path)


class TrainingLogger(keras.callbacks.Callback):
    """Every `log_every` steps: the step's metrics and learning rate to TensorBoard and a CSV.

    Keras' own TensorBoard callback logs per epoch; a pretraining run is one
    long epoch, so this logs by optimizer step (which survives a resume).

    Args:
        log_dir: folder for the TensorBoard event files (written under `log_dir/train`).
        csv_path: CSV file the rows are appended to, one per logged step, with a header.
        log_every: log every this many optimizer steps.

    >>> import tempfile
    >>> import numpy as np
    >>> folder = tempfile.mkdtemp()
    >>> model = keras.Sequential([keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> logger = TrainingLogger(folder, os.path.join(folder, "history.csv"), log_every=2)
    >>> _ = model.fit(np.zeros((8, 2)), np.zeros(8), batch_size=1, verbose=0, callbacks=[logger])
    >>> [line.split(",")[0] for line in open(os.path.join(folder, "history.csv")).read().split()]
    ['step', '2', '4', '6', '8']
    """

    def __init__(self, log_dir, csv_path, log_every=10):
        super().__init__()
        self.log_dir = log_dir
        self.csv_path = csv_path
        self.log_every = log_every
        self.writer = None

    def on_train_begin(self, logs=None):
        self.writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "train"))
        self._resumed_rows_dropped = False

    def on_train_batch_begin(self, batch, logs=None):
        # After a resume the optimizer is back at the last checkpoint, and the
        # steps logged between that checkpoint and the crash are run again:
        # drop their rows so history.csv has each step once. Done at the first
        # batch, not in on_train_begin, so that a BackupAndRestore listed after
        # this logger has restored the step by then (see run_pretraining).
        if not self._resumed_rows_dropped:
            truncate_csv_after_step(self.csv_path, int(self.model.optimizer.iterations.numpy()))
            self._resumed_rows_dropped = True

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if not logs or step % self.log_every:
            return
        row = {"step": step, **{k: float(v) for k, v in logs.items()}}
        row["learning_rate"] = current_learning_rate(self.model.optimizer)
        with self.writer.as_default(step=step):
            for key, value in row.items():
                if key != "step":
                    tf.summary.scalar(key, value)
        self.writer.flush()
        new_file = not os.path.exists(self.csv_path)
        with open(self.csv_path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new_file:
                writer.writeheader()
            writer.writerow(row)

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.close()


class TimeLimit(keras.callbacks.Callback):
    """Stops training once `seconds` of wall-clock time have passed since it began.

    Also records the median step time (after the first `skip` steps, which
    include tracing and compilation) as `median_step_seconds`.

    Args:
        seconds: wall-clock budget of the run; None never stops it (only times the steps).
        skip: the first steps left out of `median_step_seconds`.

    >>> import numpy as np
    >>> model = keras.Sequential([keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> limit = TimeLimit(seconds=0.0)  # spent after the first step
    >>> _ = model.fit(np.zeros((8, 2)), np.zeros(8), batch_size=1, verbose=0, callbacks=[limit])
    >>> len(limit.step_times)
    1
    """

    def __init__(self, seconds=None, skip=3):
        super().__init__()
        self.seconds = seconds
        self.skip = skip
        self.step_times = []

    def on_train_begin(self, logs=None):
        import time

        self._clock = time.perf_counter
        self._start = self._last = self._clock()

    def on_train_batch_end(self, batch, logs=None):
        now = self._clock()
        self.step_times.append(now - self._last)
        self._last = now
        if self.seconds is not None and now - self._start >= self.seconds:
            self.model.stop_training = True

    @property
    def median_step_seconds(self):
        import statistics

        times = self.step_times[self.skip:] or self.step_times
        return statistics.median(times)
