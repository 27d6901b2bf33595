"""Exactly-once data on resume: a run's position in its input stream, kept in its checkpoints.

The pretraining input stream is a deterministic function of the config and its
seed (file order, packing, shuffle, repeat), so a position in it is one number:
the examples the run has trained on. `DataPosition` keeps that number in a
variable tracked by the model, so `keras.callbacks.BackupAndRestore` writes it
into the same checkpoint as the weights, the optimizer and the step (one atomic
`tf.train.CheckpointManager` save). A restarted run reads it back
(`saved_data_position`) and skips that many examples before batching, so a run
killed at any moment and restarted trains on exactly the batches an
uninterrupted run trains on. Masks and generator samples are stateless
functions of (seed, step, example) (`example_seeds`), so they follow.

Why a skip and not tf.data iterator checkpointing: text corpora are packed by a
Python generator (`tf.data.Dataset.from_generator`), whose state tf.data cannot
save, and a saved iterator would also hold the whole shuffle buffer. The price:
a restarted run re-reads (and for text, re-tokenizes) the examples it skips,
without training on them.
"""

import logging

import tensorflow as tf
import tf_keras as keras

logger = logging.getLogger(__name__)

# Where the count sits in a BackupAndRestore checkpoint: model -> data_position -> examples.
_ATTRIBUTE = "data_position"
_CHECKPOINT_KEY = f"model/{_ATTRIBUTE}/examples/.ATTRIBUTES/VARIABLE_VALUE"


class DataPosition(keras.callbacks.Callback):
    """Counts the examples a run has trained on, in a variable its checkpoints carry.

    Put it before `BackupAndRestore` in the callback list: a checkpoint written
    at the end of a step then counts that step's batch. The variable is tracked
    by the model (not one of its weights) as `model.data_position.examples`.

    Args:
        batch_size: global examples per step (over all replicas and workers).
        start: examples trained on before this run: `saved_data_position`, or
            0 for a new run or when the position is unknown.

    >>> model = keras.Sequential([keras.layers.Dense(1)])
    >>> model.build((None, 2))
    >>> position = DataPosition(batch_size=4, start=8)
    >>> position.set_model(model)
    >>> position.on_train_batch_end(0)
    >>> int(model.data_position.examples), len(model.weights)
    (12, 2)
    """

    def __init__(self, batch_size, start=0):
        super().__init__()
        if batch_size < 1 or start < 0:
            raise ValueError(f"DataPosition needs `batch_size` >= 1 and `start` >= 0; received "
                             f"batch_size={batch_size}, start={start}.")
        self.batch_size = int(batch_size)
        self.start = int(start)

    def set_model(self, model):
        super().set_model(model)
        if getattr(model, _ATTRIBUTE, None) is None:
            holder = tf.Module(name=_ATTRIBUTE)  # a tf.Module: checkpointed, not in model.weights
            with model.distribute_strategy.scope():  # the model's strategy: one copy per replica
                holder.examples = tf.Variable(self.start, dtype=tf.int64, trainable=False,
                                              name="examples")
            setattr(model, _ATTRIBUTE, holder)
        else:
            getattr(model, _ATTRIBUTE).examples.assign(self.start)

    def on_train_batch_end(self, batch, logs=None):
        getattr(self.model, _ATTRIBUTE).examples.assign_add(self.batch_size)


def saved_data_position(checkpoint_dir):
    """Examples trained on, as saved in the checkpoint a restarted run restores.

    Args:
        checkpoint_dir: `BackupAndRestore`'s directory (it reads the chief's
            checkpoints, in `checkpoint_dir/chief`).

    Returns:
        0 without a checkpoint (a new run); the saved count; None for a
        checkpoint without one (written before positions were saved: where its
        data stopped is unknown).

    >>> saved_data_position("no/such/run/checkpoints")
    0
    """
    path = tf.train.latest_checkpoint(tf.io.gfile.join(checkpoint_dir, "chief"))
    if path is None:
        return 0
    reader = tf.train.load_checkpoint(path)
    if not reader.has_tensor(_CHECKPOINT_KEY):
        return None
    return int(reader.get_tensor(_CHECKPOINT_KEY))


def batch_fingerprint(input_word_ids):
    """A 62-bit hash of a batch's ids: equal batches, equal fingerprints (a debugging aid).

    Args:
        input_word_ids: (batch, seq) int ids.

    Returns:
        int64 scalar.

    >>> ids = tf.constant([[101, 7, 102], [101, 8, 102]])
    >>> int(batch_fingerprint(ids)) == int(batch_fingerprint(ids[::-1]))
    False
    """
    text = tf.strings.reduce_join(tf.strings.as_string(input_word_ids), separator=" ")
    return tf.strings.to_hash_bucket_fast(text, 2**62)


def log_batch_fingerprints(model, path):
    """Makes `model.fit` append a line "step fingerprint" to `path` for every step.

    A debugging aid (`PretrainingConfig.batch_log`): which batch each step
    trained on, comparable between runs and strategies. `step` counts from 1 as
    in history.csv; the fingerprint (`batch_fingerprint`) is of the global batch
    (all replicas' shares gathered), written by replica 0 only. Call before `fit`.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "batches.txt")
    >>> model = keras.Sequential([keras.layers.Dense(1)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> log_batch_fingerprints(model, path)
    >>> ids = tf.data.Dataset.range(8).map(lambda i: tf.fill([3], i)).batch(2)  # (2, 3) batches
    >>> _ = model.fit(ids.map(lambda x: (x, x[:, :1])), epochs=1, steps_per_epoch=2, verbose=0)
    >>> [line.split()[0] for line in open(path)]
    ['1', '2']
    """
    train_step = model.train_step

    def train_step_with_log(data):
        features = data[0] if isinstance(data, (tuple, list)) else data
        ids = features["input_word_ids"] if isinstance(features, dict) else features
        context = tf.distribute.get_replica_context()
        global_ids = context.all_gather(ids, axis=0)  # (global batch, T), replicas in order
        step = model.optimizer.iterations + 1  # read before this step's update

        def write():
            tf.print(step, batch_fingerprint(global_ids), output_stream=f"file://{path}")
            return tf.constant(True)

        tf.cond(tf.equal(context.replica_id_in_sync_group, 0), write, lambda: tf.constant(False))
        return train_step(data)

    model.train_step = train_step_with_log
