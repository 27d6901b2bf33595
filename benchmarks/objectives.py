"""Every pretraining objective at equal wall-clock compute, fine-tuned on movie sentiment, over seeds.

    python benchmarks/objectives.py [--minutes 10] [--seeds 3] [--output-dir benchmarks/results/objectives]

For each (objective, seed) cell: pretrain the same discriminator shape (4
layers × 128, generator 1/4 width) on the two Austen novels packaged with
electra_tf for --minutes of wall-clock time, then fine-tune the kept encoder on
the packaged movie-sentiment train split minus a validation split carved from
it (--validation-examples, the same rows for every cell), pick the epoch with
the best validation accuracy, and report that epoch's dev accuracy.
"random_init" fine-tunes an unpretrained encoder of the same shape: the floor.

Equal wall-clock is measured once, on the idle machine, before any cell runs:
a 20-step probe of each objective gives its median step time (probes.json,
with the machine it ran on), and each objective then gets the steps that fit
into --minutes at that speed; its learning-rate schedule spans exactly those
steps. So a cell's compute does not depend on what else the machine was doing
while it ran, and the run can be spread over sittings (and other work) without
changing the comparison. `--enforce-time-limit` instead stops each cell by
the clock, as a single sitting on an idle machine would.

Each cell is written to OUTPUT/cells/<objective>-seed<seed>.json as soon as it
finishes, and cells already there are skipped: stop the run at any time and
start it again later with the same arguments to continue. Cells run seed by
seed, so a partial run covers every objective. `--report-only` rewrites the
table (objectives.md, median and spread over seeds) and the plot
(objectives.png) from the cells present.
"""

import argparse
import json
import os
import shutil
import sys
import time

import numpy as np

import electra_tf  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
import tf_keras as keras
from electra_tf import (
    PACKAGED_DATA_DIR,
    ElectraClassifier,
    ElectraEncoder,
    ElectraTokenizer,
    PretrainingConfig,
    TimeLimit,
    describe_machine,
    make_classification_dataset,
    packaged_sentiment,
    read_classification_file,
    run_pretraining,
)

# A small discriminator that learns something in minutes on 2 CPU cores.
MODEL = {"hidden_size": 128, "num_layers": 4, "num_heads": 2, "intermediate_size": 512, "embedding_size": 128}
RANDOM_INIT = "random_init"
# ELECTRA, then its ablations in the paper's Table 5 order, then BERT, then no pretraining.
ORDER = ("electra", "electric", "electra_15", "replace_mlm", "all_tokens_mlm", "mlm", RANDOM_INIT)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="pretraining budget per cell")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--objectives", nargs="+", default=list(ORDER), choices=list(ORDER))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-length", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs (best on validation kept)")
    parser.add_argument("--finetune-learning-rate", type=float, default=1e-4)
    parser.add_argument("--finetune-seq-length", type=int, default=64)
    parser.add_argument("--train-examples", type=int, default=8000,
                        help="rows of movie_train.tsv used, validation split included")
    parser.add_argument("--validation-examples", type=int, default=1000,
                        help="rows carved from the train rows for choosing the epoch")
    parser.add_argument("--output-dir", "--output", dest="output_dir",  # --output: its earlier name
                        default=os.path.join("benchmarks", "results", "objectives"))
    parser.add_argument("--scratch", default=None, help="where pretraining runs go (deleted after each cell)")
    parser.add_argument("--enforce-time-limit", action="store_true",
                        help="also stop each cell's pretraining after --minutes of wall-clock time")
    parser.add_argument("--report-only", action="store_true")
    return parser.parse_args(argv)


def pretraining_config(objective, output_dir, steps, seed, args):
    return PretrainingConfig(
        corpus=os.path.join(PACKAGED_DATA_DIR, "*.txt.gz"),  # the two packaged novels
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


def probe_key(objective, args):
    return f"{objective} batch {args.batch_size} seq {args.seq_length}"


def probe_all(objectives, args, scratch, probes_path):
    """Median step seconds of each objective from a 20-step probe, cached in probes.json.

    All probes run before any cell, back to back, so that they see the same
    (idle) machine; probes.json records that machine.
    """
    probes = json.load(open(probes_path)) if os.path.exists(probes_path) else {}
    for objective in objectives:
        key = probe_key(objective, args)
        if objective == RANDOM_INIT or key in probes:
            continue
        keras.backend.clear_session()
        out = os.path.join(scratch, f"probe-{objective}")
        timer = TimeLimit(skip=5)
        run_pretraining(pretraining_config(objective, out, 20, 0, args), callbacks=[timer])
        shutil.rmtree(out, ignore_errors=True)
        probes[key] = timer.median_step_seconds
        probes.setdefault("machine", describe_machine())
        write_json(probes_path, probes)
        print(f"probe {objective:15s} {probes[key]:.3f} s a step", flush=True)
    return probes


def budget_steps(objective, args, probes):
    """Steps of `objective` that fit into --minutes at its probed step time."""
    return max(10, int(args.minutes * 60 / probes[probe_key(objective, args)]))


def sentiment_splits(args):
    """(train, validation, dev) datasets: validation is carved from the train rows, fixed across cells."""
    tokenizer = ElectraTokenizer()
    rows, _ = read_classification_file(packaged_sentiment("train"))
    dev_rows, _ = read_classification_file(packaged_sentiment("dev"))
    order = np.random.default_rng(0).permutation(len(rows["text"]))[: args.train_examples]
    held = set(order[: args.validation_examples].tolist())

    def subset(indices):
        return {"text": [rows["text"][i] for i in indices], "label": [rows["label"][i] for i in indices]}

    train = subset([i for i in order if i not in held])
    validation = subset(sorted(held))
    seq = args.finetune_seq_length
    return (make_classification_dataset(train, tokenizer, seq, 32, shuffle=True, seed=0),
            make_classification_dataset(validation, tokenizer, seq, 64),
            make_classification_dataset(dev_rows, tokenizer, seq, 64),
            {"train": len(train["text"]), "validation": len(validation["text"]), "dev": len(dev_rows["text"])})


def fine_tune(encoder, splits, seed, args):
    """Dev accuracy at the epoch of best validation accuracy, and the per-epoch curves."""
    train, validation, dev, _ = splits
    keras.utils.set_random_seed(seed)
    classifier = ElectraClassifier(encoder, num_classes=2)
    classifier.compile(optimizer=keras.optimizers.Adam(args.finetune_learning_rate))
    curves = []
    for _ in range(args.epochs):
        classifier.fit(train, epochs=1, verbose=0)
        curves.append({"validation_accuracy": float(classifier.evaluate(validation, verbose=0)[1]),
                       "dev_accuracy": float(classifier.evaluate(dev, verbose=0)[1])})
    best = max(range(len(curves)), key=lambda epoch: curves[epoch]["validation_accuracy"])
    return curves[best]["dev_accuracy"], best + 1, curves


def run_cell(objective, seed, args, splits, scratch, probes):
    keras.backend.clear_session()  # the previous cell's graphs and models: free them
    start = time.perf_counter()
    record = {"objective": objective, "seed": seed, "minutes_budget": args.minutes}
    if objective == RANDOM_INIT:
        keras.utils.set_random_seed(seed)
        encoder = ElectraEncoder.from_preset("small", **MODEL, max_sequence_length=512)
        record.update(steps=0, pretraining_minutes=0.0)
    else:
        steps = budget_steps(objective, args, probes)
        out = os.path.join(scratch, f"{objective}-seed{seed}")
        shutil.rmtree(out, ignore_errors=True)  # a cell interrupted earlier starts over
        # The schedule spans `steps`; with --enforce-time-limit the clock may stop it sooner.
        limit = TimeLimit(args.minutes * 60 if args.enforce_time_limit else None)
        pretraining_start = time.perf_counter()
        history = run_pretraining(pretraining_config(objective, out, steps, seed, args), callbacks=[limit])
        encoder = history.model.encoder
        record.update(steps=len(limit.step_times), scheduled_steps=steps,
                      pretraining_minutes=round((time.perf_counter() - pretraining_start) / 60, 2),
                      final_metrics={k: round(float(v[-1]), 4) for k, v in history.history.items()})
    accuracy, epoch, curves = fine_tune(encoder, splits, seed, args)
    if objective != RANDOM_INIT:
        shutil.rmtree(os.path.join(scratch, f"{objective}-seed{seed}"), ignore_errors=True)
    record.update(dev_accuracy=accuracy, best_epoch=epoch, curves=curves,
                  cell_minutes=round((time.perf_counter() - start) / 60, 2),
                  settings={k: v for k, v in vars(args).items() if k not in ("output_dir", "scratch", "report_only")},
                  machine=describe_machine())
    return record


def write_json(path, value):
    """Written whole or not at all: a killed run never leaves half a cell."""
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        json.dump(value, f, indent=2)
    os.replace(temporary, path)


def load_cells(cells_dir):
    cells = []
    for name in sorted(os.listdir(cells_dir)) if os.path.isdir(cells_dir) else []:
        if name.endswith(".json"):
            with open(os.path.join(cells_dir, name)) as f:
                cells.append(json.load(f))
    return cells


def summarize(cells):
    """Per objective: seeds, median dev accuracy, min, max, median steps (ORDER first)."""
    rows = []
    for objective in ORDER:
        runs = [cell for cell in cells if cell["objective"] == objective]
        if runs:
            accuracies = np.array([run["dev_accuracy"] for run in runs])
            rows.append({"objective": objective, "seeds": len(runs), "median": float(np.median(accuracies)),
                         "min": float(accuracies.min()), "max": float(accuracies.max()),
                         "steps": int(np.median([run["steps"] for run in runs])),
                         "minutes": runs[0]["minutes_budget"], "accuracies": accuracies.tolist()})
    return rows


def report(output):
    cells = load_cells(os.path.join(output, "cells"))
    rows = summarize(cells)
    lines = ["| objective | seeds | pretraining steps (median) | dev accuracy, median | min – max |",
             "|---|---:|---:|---:|---|"]
    for row in rows:
        lines.append(f"| {row['objective']} | {row['seeds']} | {row['steps']:,} | {row['median']:.4f} | "
                     f"{row['min']:.4f} – {row['max']:.4f} |")
    budgets = sorted({cell["minutes_budget"] for cell in cells if cell["objective"] != RANDOM_INIT})
    text = (f"Pretraining budget per cell: {', '.join(f'{b:g}' for b in budgets) or '-'} min; "
            f"{len(cells)} cells.\n\n" + "\n".join(lines) + "\n")
    with open(os.path.join(output, "objectives.md"), "w") as f:
        f.write(text)
    plot(rows, os.path.join(output, "objectives.png"))
    print(text)
    return rows


def plot(rows, path):
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3.8))
    for i, row in enumerate(rows):
        axis.bar(i, row["median"], color="tab:gray" if row["objective"] == RANDOM_INIT else "tab:blue", alpha=0.6)
        axis.scatter([i] * len(row["accuracies"]), row["accuracies"], color="black", s=12, zorder=3)
        axis.text(i, row["max"] + 0.005, f"{row['median']:.3f}", ha="center", fontsize=8)
    axis.set_xticks(range(len(rows)), [row["objective"] for row in rows], rotation=20)
    low = min(row["min"] for row in rows)
    axis.set_ylim(max(0.0, low - 0.05), min(1.0, max(row["max"] for row in rows) + 0.04))
    axis.set_ylabel("movie-sentiment dev accuracy")
    axis.set_title("Equal pretraining wall-clock per objective (bars: median; dots: seeds)", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv=None):
    args = parse_args(argv)
    cells_dir = os.path.join(args.output_dir, "cells")
    os.makedirs(cells_dir, exist_ok=True)
    if args.report_only:
        report(args.output_dir)
        return
    scratch = args.scratch or os.path.join(args.output_dir, "scratch")
    os.makedirs(scratch, exist_ok=True)
    probes = probe_all(args.objectives, args, scratch, os.path.join(args.output_dir, "probes.json"))
    splits = sentiment_splits(args)
    print(f"sentiment rows: {splits[3]}", flush=True)
    for seed in range(args.seeds):
        for objective in args.objectives:
            path = os.path.join(cells_dir, f"{objective}-seed{seed}.json")
            if os.path.exists(path):
                continue  # finished in an earlier sitting
            record = run_cell(objective, seed, args, splits, scratch, probes)
            write_json(path, record)
            print(f"seed {seed} {objective:15s} {record['steps']:6d} steps → dev accuracy "
                  f"{record['dev_accuracy']:.4f} (epoch {record['best_epoch']}, {record['cell_minutes']} min)",
                  flush=True)
            report(args.output_dir)
    shutil.rmtree(scratch, ignore_errors=True)
    report(args.output_dir)


if __name__ == "__main__":
    sys.exit(main())
