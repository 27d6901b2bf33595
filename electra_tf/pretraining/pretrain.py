"""The job behind `electra-tf pretrain`: `run_pretraining`, an explicit resume rule, a summary.

    summary = pretrain(PretrainingConfig(corpus="corpus/*.txt.gz", output_dir="runs/small"))
    print(format_summary(summary))

A run whose `output_dir` holds checkpoints continues from the latest one;
`resume=False` refuses to start in such a directory instead of silently
continuing (or deleting) an earlier run.
"""

import csv
import os
import time

import tensorflow as tf

from electra_tf.pretraining.run_pretraining import run_pretraining

# Metrics in the order a summary shows them, when present.
SUMMARY_METRICS = ("loss", "mlm_loss", "rtd_loss", "mlm_accuracy", "rtd_accuracy",
                   "rtd_precision", "rtd_recall", "rtd_auc", "replaced_lm_loss", "replaced_lm_accuracy")
_OBJECTIVE_NAMES = {"electra": "ELECTRA", "mlm": "a masked LM", "electric": "Electric",
                    "electra_15": "ELECTRA 15%", "replace_mlm": "Replace MLM",
                    "all_tokens_mlm": "All-Tokens MLM"}
# What `run_pretraining` writes, and how to use it.
OUTPUTS = (
    ("discriminator", "ElectraDiscriminator.from_pretrained(...)"),
    ("discriminator_hf", "transformers.ElectraForPreTraining.from_pretrained(...)"),
    ("generator", "ElectraGenerator.from_pretrained(...)"),
    ("generator_hf", "transformers.ElectraForMaskedLM.from_pretrained(...)"),
    ("masked_lm", "ElectraGenerator.from_pretrained(...) (Replace/All-Tokens MLM: the full-size model)"),
    ("masked_lm_hf", "transformers.ElectraForMaskedLM.from_pretrained(...)"),
    ("cloze_generator", "Electric's two-tower ElectraClozeGenerator, Keras weights"),
    ("learning_curves.png", "loss and RTD metrics against the step"),
    ("history.json", "the config and the final metrics"),
    ("logs", "tensorboard --logdir <this>"),
    ("checkpoints", "run the same command again to continue"),
)


def latest_checkpoint(output_dir):
    """(checkpoint path, step) that a run in `output_dir` would resume from, or None.

    `step` is the optimizer step saved in the checkpoint (None if unreadable).

    >>> latest_checkpoint("no/such/run") is None
    True
    """
    # keras.callbacks.BackupAndRestore keeps the chief's checkpoints in "chief/".
    path = tf.train.latest_checkpoint(os.path.join(output_dir, "checkpoints", "chief"))
    if path is None:
        return None
    reader = tf.train.load_checkpoint(path)
    keys = [key for key in reader.get_variable_to_shape_map()
            if key.startswith("model/optimizer/") and "iter" in key]
    step = int(reader.get_tensor(keys[0])) if len(keys) == 1 else None
    return path, step


def pretrain(config, resume=True):
    """Runs `run_pretraining(config)`; returns a summary dict (see `summarize_pretraining`).

    Args:
        config: a `PretrainingConfig`.
        resume: continue from checkpoints in `config.output_dir` when there are
            any (the default). False: raise instead, so an earlier run is never
            continued by accident; pick a new output directory to start over.

    Raises:
        ValueError: bad config or corpus, or `resume=False` with checkpoints present.

    Example:
    >>> summary = pretrain(PretrainingConfig(corpus="corpus/*.txt", preset="tiny",
    ...                                      steps=100, output_dir="runs/tiny"))  # doctest: +SKIP
    >>> summary["metrics"]["rtd_auc"]  # doctest: +SKIP
    0.93
    """
    checkpoint = latest_checkpoint(config.output_dir)
    if checkpoint is not None and not resume:
        path, step = checkpoint
        at_step = f" at step {step}" if step is not None else ""
        raise ValueError(
            f"{config.output_dir!r} already holds a checkpoint{at_step} ({path}) and resume "
            "was turned off (--no-resume). Drop --no-resume to continue that run, or pass a "
            "new --output-dir to start over; nothing was deleted."
        )
    start = time.perf_counter()
    history = run_pretraining(config)
    return summarize_pretraining(
        config,
        history,
        resumed_from_step=checkpoint[1] if checkpoint else None,
        seconds=time.perf_counter() - start,
    )


def summarize_pretraining(config, history, resumed_from_step=None, seconds=None):
    """A dict describing a finished run: steps, time, final metrics, output paths.

    Final metrics are the last step's (each step logs its own values); when the
    run had nothing left to do (already at `config.steps`), the last row of
    history.csv.
    """
    metrics = {key: float(values[-1]) for key, values in history.history.items() if values}
    if not metrics:
        metrics = _last_logged_metrics(os.path.join(config.output_dir, "history.csv"))
    step = int(history.model.optimizer.iterations.numpy())
    outputs = {name: os.path.join(config.output_dir, name) for name, _ in OUTPUTS
               if os.path.exists(os.path.join(config.output_dir, name))}
    return {
        "objective": config.objective,
        "preset": config.preset,
        "output_dir": config.output_dir,
        "step": step,
        "resumed_from_step": resumed_from_step,
        "trained_steps": step - (resumed_from_step or 0),
        "seconds": seconds,
        "metrics": {key: metrics[key] for key in SUMMARY_METRICS if key in metrics},
        "outputs": outputs,
        "batch_parts": config.batch_parts,
        # The pools the run had (0: TensorFlow's default, all cores).
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
    }


def format_summary(summary):
    """The summary as a few lines of text for the terminal."""
    resumed = summary["resumed_from_step"]
    lines = [
        f"Pretrained {_OBJECTIVE_NAMES[summary['objective']]} (preset {summary['preset']!r}) "
        f"to step "
        f"{summary['step']:,}"
        + (f", resumed from step {resumed:,}" if resumed is not None else "")
        + (f": {summary['trained_steps']:,} steps in {summary['seconds']:.0f} s "
           f"(startup and saving included)." if summary["seconds"] is not None else ".")
    ]
    if summary["batch_parts"] > 1 or summary["intra_op_threads"] or summary["inter_op_threads"]:
        lines.append(f"Each step in {summary['batch_parts']} batch part(s); TensorFlow threads: "
                     f"intra-op {summary['intra_op_threads'] or 'all cores'}, "
                     f"inter-op {summary['inter_op_threads'] or 'all cores'}.")
    if summary["metrics"]:
        lines.append("Final step: " + ", ".join(
            f"{key} {value:.4g}" for key, value in summary["metrics"].items()))
    if summary["outputs"]:
        lines.append(f"Outputs in {summary['output_dir']}:")
        usage = dict(OUTPUTS)
        for name in summary["outputs"]:
            lines.append(f"  {name:<20} {usage[name]}")
    return "\n".join(lines)


def _last_logged_metrics(csv_path):
    if not os.path.exists(csv_path):
        return {}
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {key: float(value) for key, value in rows[-1].items() if key != "step"} if rows else {}
