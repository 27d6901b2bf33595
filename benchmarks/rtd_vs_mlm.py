"""The paper's central claim at small scale: replaced token detection vs masked LM, equal compute.

Superseded by benchmarks/objectives.py (every objective, 3 seeds, a validation split, resumable);
kept for the figures it produced.

    python benchmarks/rtd_vs_mlm.py [--minutes 10] [--seeds 1]

For each seed: pretrain an ELECTRA (generator 1/4 width + discriminator) and
an MLM-only model of the discriminator's size for the same wall-clock budget
on the two Austen novels packaged with electra_tf (the step count of each is set from a short
probe of its own step time), then fine-tune each encoder on the packaged
movie-sentiment train split with identical settings and report dev
accuracy. A randomly initialised encoder is fine-tuned the same way as a
floor. Prints one table; writes rtd_vs_mlm.png next to --output.
"""

import argparse
import dataclasses
import glob
import json
import os
import time

import numpy as np

import electra_tf
import tensorflow as tf
import tf_keras as keras
from electra_tf.data.classification_dataset import make_classification_dataset, read_classification_file
from electra_tf.data.packaged_corpus import ASSETS_DIR, packaged_sentiment
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
from electra_tf.pretraining.run_pretraining import PretrainingConfig, run_pretraining
from electra_tf.tasks.electra_classifier import ElectraClassifier
from electra_tf.utils.callbacks import TimeLimit

# A small discriminator that learns something in minutes on 2 CPU cores.
MODEL = {"hidden_size": 128, "num_layers": 4, "num_heads": 2, "intermediate_size": 512,
         "embedding_size": 128}


def pretraining_config(objective, output_dir, steps, seed, args):
    return PretrainingConfig(
        corpus=os.path.join(ASSETS_DIR, "*.txt.gz"),  # the two packaged novels
        output_dir=output_dir,
        preset="small",
        model_overrides=dict(MODEL),
        generator_width=0.25,
        objective=objective,
        max_seq_length=args.seq_length,
        batch_size=args.batch_size,
        steps=steps,
        learning_rate=1e-3,
        warmup_steps=max(1, steps // 10),
        checkpoint_every=10**9,
        log_every=max(1, steps // 50),
        seed=seed,
        progress=False,
    )


def seconds_per_step(objective, seed, args, scratch):
    """A short probe of this objective's median step time (after compilation)."""
    config = pretraining_config(objective, os.path.join(scratch, f"probe-{objective}-{seed}"), 20, seed, args)
    timer = TimeLimit(skip=5)
    run_pretraining(config, callbacks=[timer])
    return timer.median_step_seconds


def fine_tune(encoder, train, dev, seed, args):
    keras.utils.set_random_seed(seed)
    classifier = ElectraClassifier(encoder, num_classes=2)
    classifier.compile(optimizer=keras.optimizers.Adam(args.finetune_learning_rate))
    classifier.fit(train, epochs=args.epochs, verbose=0)
    _, accuracy = classifier.evaluate(dev, verbose=0)[:2]
    return float(accuracy)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="pretraining budget per model")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-length", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--finetune-learning-rate", type=float, default=1e-4)
    parser.add_argument("--train-examples", type=int, default=8000)
    parser.add_argument("--output", default="rtd_vs_mlm_output")
    args = parser.parse_args(argv)
    os.makedirs(args.output, exist_ok=True)

    tokenizer = ElectraTokenizer()
    train_rows, _ = read_classification_file(packaged_sentiment("train"))
    dev_rows, _ = read_classification_file(packaged_sentiment("dev"))
    train_rows = {k: v[: args.train_examples] if isinstance(v, list) else v for k, v in train_rows.items()}
    train = make_classification_dataset(train_rows, tokenizer, 64, 32, shuffle=True, seed=0)
    dev = make_classification_dataset(dev_rows, tokenizer, 64, 64)

    results = {"electra": [], "mlm": [], "random init": []}
    for seed in range(args.seeds):
        for objective in ("electra", "mlm"):
            step_time = seconds_per_step(objective, seed, args, args.output)
            steps = max(10, int(args.minutes * 60 / step_time))
            out = os.path.join(args.output, f"{objective}-seed{seed}")
            start = time.perf_counter()
            # The schedule spans `steps`; the limit enforces the equal wall-clock budget.
            limit = TimeLimit(args.minutes * 60)
            history = run_pretraining(pretraining_config(objective, out, steps, seed, args),
                                      callbacks=[limit])
            steps = len(limit.step_times)  # steps actually run within the budget
            minutes = (time.perf_counter() - start) / 60
            part = "discriminator" if objective == "electra" else "generator"
            model = getattr(electra_tf, "ElectraDiscriminator" if part == "discriminator"
                            else "ElectraGenerator").from_pretrained(os.path.join(out, part))
            accuracy = fine_tune(model.encoder, train, dev, seed, args)
            final = {k: round(float(v[-1]), 4) for k, v in history.history.items()}
            results[objective].append({"steps": steps, "minutes": round(minutes, 1),
                                       "dev_accuracy": accuracy, "final_metrics": final})
            print(f"seed {seed} {objective:8s} {steps:5d} steps {minutes:5.1f} min "
                  f"→ dev accuracy {accuracy:.4f}", flush=True)
        random_encoder = electra_tf.ElectraEncoder.from_preset("small", **MODEL, max_sequence_length=512)
        accuracy = fine_tune(random_encoder, train, dev, seed, args)
        results["random init"].append({"steps": 0, "minutes": 0.0, "dev_accuracy": accuracy})
        print(f"seed {seed} random init → dev accuracy {accuracy:.4f}", flush=True)

    print(f"\nRTD vs MLM, {args.minutes:g} min of pretraining each on Austen "
          f"({MODEL['num_layers']} layers × {MODEL['hidden_size']}), fine-tuned on movie sentiment")
    print(f"{'objective':12s} {'steps':>7s} {'dev accuracy (mean ± sd over seeds)':>38s}")
    for name, runs in results.items():
        accuracies = np.array([r["dev_accuracy"] for r in runs])
        steps = int(np.mean([r["steps"] for r in runs]))
        print(f"{name:12s} {steps:7d} {accuracies.mean():30.4f} ± {accuracies.std():.4f}")
    with open(os.path.join(args.output, "rtd_vs_mlm.json"), "w") as f:
        json.dump({"args": vars(args), "model": MODEL, "results": results}, f, indent=2)
    plot(results, os.path.join(args.output, "rtd_vs_mlm.png"))


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    means = [np.mean([r["dev_accuracy"] for r in results[n]]) for n in names]
    errors = [np.std([r["dev_accuracy"] for r in results[n]]) for n in names]
    figure, axis = plt.subplots(figsize=(5, 3.5))
    axis.bar(names, means, yerr=errors, color=["tab:green", "tab:blue", "tab:gray"])
    axis.set_ylim(0.4, 1.0)
    axis.set_ylabel("movie-sentiment dev accuracy")
    axis.set_title("Equal pretraining compute: RTD vs MLM")
    for i, value in enumerate(means):
        axis.text(i, value + 0.01, f"{value:.3f}", ha="center")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    main()
