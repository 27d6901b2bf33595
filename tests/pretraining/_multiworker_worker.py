"""One worker process of test_distributed's MultiWorkerMirroredStrategy test.

    TF_CONFIG=... python _multiworker_worker.py CORPUS OUTPUT_DIR RESULT_PREFIX

Runs `run_pretraining(strategy="multiworker")` on a tiny model and writes this
worker's final weights (RESULT_PREFIX.npz) and last logged losses
(RESULT_PREFIX.json). Each worker starts from its own random initialisation
(seeded by its task index): identical final weights show that the strategy
broadcast the initial values and all-reduced every gradient.
"""

import json
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tf_keras as keras  # noqa: E402

from electra_tf.pretraining import run_pretraining as run_pretraining_module  # noqa: E402
from electra_tf.pretraining.run_pretraining import PretrainingConfig, run_pretraining  # noqa: E402

STEPS = 4


def main(corpus, output_dir, result_prefix):
    task_index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    # run_pretraining seeds every worker with config.seed; reseed per worker just before the
    # models are built, so that only the strategy's broadcast can make their initial values agree.
    build_pretrainer = run_pretraining_module.build_pretrainer

    def build_with_this_workers_seed(*args, **kwargs):
        keras.utils.set_random_seed(1000 + task_index)
        return build_pretrainer(*args, **kwargs)

    run_pretraining_module.build_pretrainer = build_with_this_workers_seed

    # Every worker runs BackupAndRestore; its on_train_end sees the final model.
    on_train_end = keras.callbacks.BackupAndRestore.on_train_end

    def save_weights_then_end(callback, logs=None):
        weights = [variable.numpy() for variable in callback.model.trainable_weights]
        np.savez(result_prefix + ".npz", *weights)
        on_train_end(callback, logs)

    keras.callbacks.BackupAndRestore.on_train_end = save_weights_then_end
    config = PretrainingConfig(
        corpus=corpus,
        output_dir=output_dir,
        preset="tiny",
        model_overrides={"num_layers": 1},
        max_seq_length=32,
        batch_size=8,  # global: 4 per worker
        steps=STEPS,
        warmup_steps=1,
        learning_rate=1e-3,
        checkpoint_every=2,
        log_every=1,
        shuffle_buffer=32,
        strategy="multiworker",
        progress=False,
    )
    history = run_pretraining(config)
    with open(result_prefix + ".json", "w") as f:
        json.dump({key: [float(v) for v in values] for key, values in history.history.items()}, f)


if __name__ == "__main__":
    main(*sys.argv[1:4])
