"""Every pretraining objective at equal wall-clock compute, fine-tuned on movie sentiment, over seeds.

    python benchmarks/objectives.py [--minutes 10] [--seeds 3] [--output-dir benchmarks/results/objectives]

For each (objective, seed) cell: pretrain the same discriminator shape (4
layers × 128, generator 1/4 width) on the two Austen novels packaged with
electra_tf for --minutes of wall-clock time, then fine-tune the kept encoder on
the packaged movie-sentiment train split minus a validation split carved from
it (--validation-examples, the same rows for every cell), pick the epoch with
the best validation accuracy, and report that epoch's dev accuracy.
"random_init" fine-tunes an unpretrained encoder of the same shape: the floor.

Fine-tuning is ELECTRA's recipe (`create_finetuning_optimizer`: AdamW, layer-wise
decay 0.8, 10% warmup, linear decay) at one learning rate for every cell. Unless
--finetune-learning-rate is given, that rate is chosen once, before any cell, on
the validation split only: seed 0's random_init encoder and seed 0's ELECTRA
encoder are each fine-tuned at every --recipe-learning-rates value, and the rate
with the best mean validation accuracy wins (recipe.json keeps every figure).
The dev split is never looked at to choose anything.

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
import math
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
    create_finetuning_optimizer,
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
    parser.add_argument("--epochs", type=int, default=4, help="fine-tuning epochs (best on validation kept)")
    parser.add_argument("--finetune-learning-rate", type=float, default=None,
                        help="fixed fine-tuning rate; default: chosen on validation (recipe.json)")
    parser.add_argument("--recipe-learning-rates", type=float, nargs="+", default=[1e-4, 3e-4, 1e-3],
                        help="the rates tried when the fine-tuning rate is chosen on validation")
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


def fine_tune(encoder, splits, seed, learning_rate, args):
    """Dev accuracy at the epoch of best validation accuracy, and the per-epoch curves."""
    train, validation, dev, sizes = splits
    keras.utils.set_random_seed(seed)
    classifier = ElectraClassifier(encoder, num_classes=2)
    steps = args.epochs * math.ceil(sizes["train"] / 32)  # batch 32, see sentiment_splits
    classifier.compile(optimizer=create_finetuning_optimizer(learning_rate, steps, num_layers=MODEL["num_layers"]))
    curves = []
    for _ in range(args.epochs):
        classifier.fit(train, epochs=1, verbose=0)
        curves.append({"validation_accuracy": float(classifier.evaluate(validation, verbose=0)[1]),
                       "dev_accuracy": float(classifier.evaluate(dev, verbose=0)[1])})
    best = max(range(len(curves)), key=lambda epoch: curves[epoch]["validation_accuracy"])
    return curves[best]["dev_accuracy"], best + 1, curves


def make_encoder(objective, seed, args, scratch, probes):
    """The encoder a cell fine-tunes, and what its pretraining recorded (empty for random_init)."""
    keras.backend.clear_session()  # the previous cell's graphs and models: free them
    if objective == RANDOM_INIT:
        keras.utils.set_random_seed(seed)
        return ElectraEncoder.from_preset("small", **MODEL, max_sequence_length=512), {
            "steps": 0, "pretraining_minutes": 0.0}
    steps = budget_steps(objective, args, probes)
    out = os.path.join(scratch, f"{objective}-seed{seed}")
    shutil.rmtree(out, ignore_errors=True)  # a cell interrupted earlier starts over
    # The schedule spans `steps`; with --enforce-time-limit the clock may stop it sooner.
    limit = TimeLimit(args.minutes * 60 if args.enforce_time_limit else None)
    start = time.perf_counter()
    history = run_pretraining(pretraining_config(objective, out, steps, seed, args), callbacks=[limit])
    shutil.rmtree(out, ignore_errors=True)
    return history.model.encoder, {
        "steps": len(limit.step_times), "scheduled_steps": steps,
        "pretraining_minutes": round((time.perf_counter() - start) / 60, 2),
        "final_metrics": {k: round(float(v[-1]), 4) for k, v in history.history.items()}}


def choose_recipe(args, splits, scratch, probes, recipe_path):
    """The fine-tuning rate with the best mean validation accuracy over seed 0's random_init and
    ELECTRA encoders (cached in recipe.json; only the validation split is read)."""
    if args.finetune_learning_rate is not None:
        return args.finetune_learning_rate
    key = {"learning_rates": args.recipe_learning_rates, "epochs": args.epochs, "minutes": args.minutes,
           "batch_size": args.batch_size, "seq_length": args.seq_length,
           "finetune_seq_length": args.finetune_seq_length, "train_examples": args.train_examples,
           "validation_examples": args.validation_examples}
    if os.path.exists(recipe_path):
        with open(recipe_path) as f:
            recipe = json.load(f)
        if recipe["settings"] != key:
            raise ValueError(f"{recipe_path} was chosen with settings {recipe['settings']}, not {key}: "
                             "delete it (and cells/) to choose again, or pass --finetune-learning-rate.")
        return recipe["learning_rate"]
    validation = {}
    for objective in (RANDOM_INIT, "electra"):
        encoder, _ = make_encoder(objective, 0, args, scratch, probes)
        weights = encoder.get_weights()
        for rate in args.recipe_learning_rates:
            encoder.set_weights(weights)  # every rate starts from the same encoder
            _, epoch, curves = fine_tune(encoder, splits, 0, rate, args)
            validation[f"{objective} {rate:g}"] = curves[epoch - 1]["validation_accuracy"]
            print(f"recipe {objective:12s} lr {rate:g}: validation accuracy "
                  f"{validation[f'{objective} {rate:g}']:.4f}", flush=True)
    means = {rate: float(np.mean([validation[f"{o} {rate:g}"] for o in (RANDOM_INIT, "electra")]))
             for rate in args.recipe_learning_rates}
    rate = max(means, key=means.get)
    write_json(recipe_path, {"learning_rate": rate, "mean_validation_accuracy": {f"{r:g}": v for r, v in means.items()},
                             "validation_accuracy": validation, "settings": key, "machine": describe_machine()})
    print(f"fine-tuning learning rate chosen on validation: {rate:g}", flush=True)
    return rate


def run_cell(objective, seed, args, splits, scratch, probes, learning_rate):
    start = time.perf_counter()
    encoder, pretraining = make_encoder(objective, seed, args, scratch, probes)
    accuracy, epoch, curves = fine_tune(encoder, splits, seed, learning_rate, args)
    settings = {k: v for k, v in vars(args).items() if k not in ("output_dir", "scratch", "report_only")}
    return {"objective": objective, "seed": seed, "minutes_budget": args.minutes, **pretraining,
            "dev_accuracy": accuracy, "best_epoch": epoch, "curves": curves,
            "cell_minutes": round((time.perf_counter() - start) / 60, 2),
            "settings": dict(settings, finetune_learning_rate=learning_rate), "machine": describe_machine()}


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
            pretraining = {name: [run["final_metrics"][name] for run in runs
                                  if name in run.get("final_metrics", {})] for name in ("mlm_accuracy", "rtd_auc")}
            rows.append({"objective": objective, "seeds": len(runs), "median": float(np.median(accuracies)),
                         **{name: float(np.median(values)) if values else None
                            for name, values in pretraining.items()},
                         "min": float(accuracies.min()), "max": float(accuracies.max()),
                         "steps": int(np.median([run["steps"] for run in runs])),
                         "minutes": runs[0]["minutes_budget"], "accuracies": accuracies.tolist()})
    return rows


def report(output):
    cells = load_cells(os.path.join(output, "cells"))
    rows = summarize(cells)
    lines = ["| objective | seeds | pretraining steps (median) | dev accuracy, median | min – max "
             "| end of pretraining, median: masked-token accuracy | replaced-token AUC |",
             "|---|---:|---:|---:|---|---:|---:|"]

    def figure(value):
        return "–" if value is None else f"{value:.3f}"

    for row in rows:
        lines.append(f"| {row['objective']} | {row['seeds']} | {row['steps']:,} | {row['median']:.4f} | "
                     f"{row['min']:.4f} – {row['max']:.4f} | {figure(row['mlm_accuracy'])} | "
                     f"{figure(row['rtd_auc'])} |")
    budgets = sorted({cell["minutes_budget"] for cell in cells if cell["objective"] != RANDOM_INIT})
    rates = sorted({rate for cell in cells
                    if (rate := cell.get("settings", {}).get("finetune_learning_rate")) is not None})
    text = (f"Pretraining budget per cell: {', '.join(f'{b:g}' for b in budgets) or '-'} min; "
            f"fine-tuning learning rate: {', '.join(f'{r:g}' for r in rates) or '-'}; "
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
    probed = list(args.objectives) + ([] if "electra" in args.objectives else ["electra"])  # the recipe's
    probes = probe_all(probed, args, scratch, os.path.join(args.output_dir, "probes.json"))
    splits = sentiment_splits(args)
    print(f"sentiment rows: {splits[3]}", flush=True)
    learning_rate = choose_recipe(args, splits, scratch, probes, os.path.join(args.output_dir, "recipe.json"))
    for seed in range(args.seeds):
        for objective in args.objectives:
            path = os.path.join(cells_dir, f"{objective}-seed{seed}.json")
            if os.path.exists(path):
                continue  # finished in an earlier sitting
            record = run_cell(objective, seed, args, splits, scratch, probes, learning_rate)
            write_json(path, record)
            print(f"seed {seed} {objective:15s} {record['steps']:6d} steps → dev accuracy "
                  f"{record['dev_accuracy']:.4f} (epoch {record['best_epoch']}, {record['cell_minutes']} min)",
                  flush=True)
            report(args.output_dir)
    shutil.rmtree(scratch, ignore_errors=True)
    report(args.output_dir)


if __name__ == "__main__":
    sys.exit(main())
