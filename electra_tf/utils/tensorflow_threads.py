"""set_tensorflow_threads: the sizes of TensorFlow's two thread pools, set before its first op;
in_batch_parts: a batch run as parts that those pools' threads run at once
(`batch_slices`: the parts themselves; the pretrainers' `batch_parts` step uses them).

TensorFlow splits each op over its intra-op pool and runs independent ops on
its inter-op pool, both all cores by default. On a small CPU machine that
default is not the fastest way to run a model: each op wakes the other
threads and waits for them, which costs more than the work of most of a
model's ops. One thread answers one text at a time sooner; one thread per op
with a batch run as N parts at once (`export_task_saved_model(...,
batch_parts=N)`, inter-op N) serves batches sooner (README, "Serving threads").
"""

import tensorflow as tf

from electra_tf.utils.checks import is_integer


def set_tensorflow_threads(intra_op_threads=0, inter_op_threads=0):
    """Sizes this process' TensorFlow thread pools; 0 leaves a pool as it is.

    TensorFlow's default is all cores for both. It fixes its pools when it
    runs its first op: afterwards a size other than the one it has is a
    ValueError naming both. Call it first thing, as `electra-tf serve
    --intra-op-threads/--inter-op-threads` does.

    >>> set_tensorflow_threads(0, 0)  # nothing to change
    """
    tf_threads = tf.config.threading
    pools = (("intra_op_threads", intra_op_threads, tf_threads.get_intra_op_parallelism_threads,
              tf_threads.set_intra_op_parallelism_threads),
             ("inter_op_threads", inter_op_threads, tf_threads.get_inter_op_parallelism_threads,
              tf_threads.set_inter_op_parallelism_threads))
    for name, wanted, get, set_ in pools:
        if not is_integer(wanted) or wanted < 0:
            raise ValueError(f"`{name}` must be an integer >= 0 (0: all cores); received "
                             f"{name}={wanted!r}.")
        if wanted in (0, get()):
            continue
        try:
            set_(wanted)
        except RuntimeError as error:
            raise ValueError(
                f"TensorFlow already runs with {name}={get()} (0: all cores) in this process; "
                f"{name}={wanted} must be set before it runs its first op ({error})."
            ) from None


def check_batch_parts(batch_parts):
    """`batch_parts` itself when it is a positive integer, else a ValueError saying what it got.

    >>> check_batch_parts(2)
    2
    """
    if not is_integer(batch_parts) or batch_parts < 1:
        raise ValueError(
            "`batch_parts` must be a positive integer, the parts a batch runs in (1: whole; "
            f"the machine's cores: one part each); received batch_parts={batch_parts!r}."
        )
    return batch_parts


def batch_slices(inputs, parts):
    """`inputs` (any nesting, every tensor batch-first) as `parts` contiguous slices, in order.

    Part sizes differ by at most one; a batch smaller than `parts` gives
    empty parts.

    >>> [part["x"].numpy().tolist() for part in batch_slices({"x": tf.constant([1, 2, 3])}, 2)]
    [[1], [2, 3]]
    """
    batch = tf.shape(tf.nest.flatten(inputs)[0])[0]
    bounds = [batch * i // parts for i in range(parts + 1)]
    return [tf.nest.map_structure(lambda tensor, lo=lo, hi=hi: tensor[lo:hi], inputs)
            for lo, hi in zip(bounds[:-1], bounds[1:])]


def in_batch_parts(function, parts):
    """`function(*inputs)` run on `parts` contiguous slices of the batch, outputs concatenated.

    Every input and output tensor (any nesting: dicts, lists) has the batch
    as its first axis; part sizes differ by at most one, in order, so the
    result is the whole batch's. The parts share no op: with one thread per
    op and `parts` inter-op threads (`set_tensorflow_threads(1, parts)`) the
    executor runs them at once, each core whole ops of its own part.

    >>> double = in_batch_parts(lambda x: {"y": 2 * x["x"]}, 2)
    >>> double({"x": tf.constant([1, 2, 3])})["y"].numpy().tolist()
    [2, 4, 6]
    """
    if parts == 1:
        return function

    def run_in_parts(*inputs):
        outputs = [function(*part) for part in batch_slices(inputs, parts)]
        return tf.nest.map_structure(lambda *pieces: tf.concat(pieces, axis=0), *outputs)

    return run_in_parts
