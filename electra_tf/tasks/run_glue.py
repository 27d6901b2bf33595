"""The GLUE job behind `electra-tf finetune glue`: one GLUE task from TensorFlow Datasets, N seeds.

    config = GlueConfig(task="rte", encoder="checkpoints/electra-small-discriminator",
                        output_dir="runs/rte", seeds=10)
    summary = run_glue(config)

The task's `glue/<task>` TFDS builder supplies the train, dev and test splits
(downloaded and prepared into `data_dir` on first use). Each seed fine-tunes
through `run_finetuning` (the same classifier, optimizer and outputs as
`finetune classify`) on the train split, then is scored on the dev split(s)
with the task's official metric (`glue_metrics`). Defaults are ELECTRA's
fine-tuning recipe (Clark et al. 2020, appendix, Table 7): learning rate 3e-4
(Small), 1e-4 (Base) or 5e-5 (Large), chosen from the encoder's hidden size
(256, 768, 1024); layer-wise decay 0.8 (0.9 for Large); 3 epochs (10 for RTE
and STS-B); batch 32; 10% warmup; max_seq_length 128; no weight decay.

Writes, under `output_dir`:
    seed_<k>/         `run_finetuning`'s outputs for seed k (model/, logs, results.json)
    results.json      per-seed dev metrics, their median over seeds (what the paper
                      reports), the hyperparameters, and which seed wrote the submission
    submission/       the GLUE server's files for this task (CoLA.tsv, MNLI-m.tsv,
                      MNLI-mm.tsv and the diagnostic AX.tsv, ...): `index<TAB>prediction` per test example, predicted
                      by the seed with the best dev score (the mean of the task's metrics;
                      ties go to the lower seed). Every seed predicts the test split(s) in
                      the pass that scores its dev set(s); the best seed's are written.
"""

import dataclasses
import logging
import os

import numpy as np

from electra_tf.data.classification_dataset import (
    TFDS_TASKS,
    make_classification_dataset,
    read_tfds_classification,
)
from electra_tf.tasks.glue_metrics import GLUE_TASKS, glue_metrics, median_over_seeds, metric_names
from electra_tf.tasks.finetuning_job import load_encoder
from electra_tf.tasks.finetuning_options import FinetuningOptions
from electra_tf.tasks.run_finetuning import FinetuningConfig, run_finetuning
from electra_tf.tasks.task_model_io import load_task_model
from electra_tf.utils.checks import is_integer
from electra_tf.utils.config_fields import option
from electra_tf.utils.json_files import atomic_text_file, write_json

logger = logging.getLogger(__name__)

# Dev splits by the prefix their metrics get, and test splits by the submission file the GLUE
# server expects for them (gluebenchmark.com/faq: one TSV per task, MNLI matched/mismatched apart).
_DEV_SPLITS = {"mnli": {"matched_": "validation_matched", "mismatched_": "validation_mismatched"}}
# The diagnostic set AX (glue/ax, its own TFDS builder) is scored with the MNLI model.
_TEST_SPLITS = {"mnli": {"test_matched": "MNLI-m.tsv", "test_mismatched": "MNLI-mm.tsv",
                         "glue/ax:test": "AX.tsv"}}
SUBMISSION_FILES = {
    "cola": "CoLA.tsv", "sst2": "SST-2.tsv", "mrpc": "MRPC.tsv", "stsb": "STS-B.tsv",
    "qqp": "QQP.tsv", "mnli": ("MNLI-m.tsv", "MNLI-mm.tsv", "AX.tsv"), "qnli": "QNLI.tsv",
    "rte": "RTE.tsv", "wnli": "WNLI.tsv",
}
# The server reads these tasks' predictions as label names; the others as class ids 0/1
# (STS-B: a score).
_NAMED_PREDICTIONS = ("mnli", "qnli", "rte")
# ELECTRA's model sizes by hidden size, and their recipe (Clark et al. 2020, Table 7).
MODEL_SIZES = {256: "small", 768: "base", 1024: "large"}
_LEARNING_RATES = {"small": 3e-4, "base": 1e-4, "large": 5e-5}
_LAYER_DECAYS = {"small": 0.8, "base": 0.8, "large": 0.9}
_LONG_TASKS = ("rte", "stsb")  # small data sets: 10 epochs instead of 3


@dataclasses.dataclass(kw_only=True)
class GlueConfig(FinetuningOptions):
    """What `run_glue` does: task, encoder, seeds; None hyperparameters take ELECTRA's values.

    The encoder, packed length, optimizer, logging and training options are the
    shared `FinetuningOptions`, passed on to every seed's `run_finetuning`.

    >>> config = GlueConfig(task="rte", encoder="checkpoints/electra-small")
    >>> config.seeds, config.batch_size, config.max_seq_length, config.weight_decay
    (1, 32, 128, 0.0)
    >>> GlueConfig(task="sst-2", encoder="checkpoints/electra-small")
    Traceback (most recent call last):
    ...
    ValueError: Unknown GLUE task 'sst-2'; expected one of cola, sst2, mrpc, stsb, qqp, mnli,
    qnli, rte, wnli.
    >>> GlueConfig(task="rte", encoder="checkpoints/electra-small", seeds=0)
    Traceback (most recent call last):
    ...
    ValueError: `seeds` must be >= 1 (the number of fine-tuning runs, seeds 0..N-1); received 0.
    """

    # dest: `task` is already the name of the command line's subcommand ("glue").
    task: str = option(None, "cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte or wnli")
    output_dir: str = option("glue_output", "output directory")  # each job its own folder
    seeds: int = option(1, "fine-tune N times (seeds 0..N-1) and report the median; the paper "
                        "reports the median of 10")
    # ELECTRA's recipe sets these by model size and task (`glue_hyperparameters`): None.
    learning_rate: float = option(None, "default: 3e-4 Small, 1e-4 Base, 5e-5 Large (by the "
                                  "encoder's hidden size)")
    layer_decay: float = option(None, "default: 0.8, 0.9 for Large")
    epochs: int = option(None, "default: 3, 10 for RTE and STS-B")
    weight_decay: float = option(0.0, "AdamW's decoupled weight decay (ELECTRA fine-tunes GLUE "
                                 "without)")
    dropout_rate: float = option(0.1, "dropout before the classification layer")
    train_limit: int = option(None, "train on the first N examples only (quick runs)")
    data_dir: str = option(None, "TensorFlow Datasets directory (default: "
                           "~/tensorflow_datasets)")
    submission: bool = option(True, "predict the test split(s) into OUTPUT_DIR/submission")

    def __post_init__(self):
        if self.task not in GLUE_TASKS:
            raise ValueError(
                f"Unknown GLUE task {self.task!r}; expected one of {', '.join(GLUE_TASKS)}."
            )
        super().__post_init__()  # encoder, sizes, strategy, mixed precision, accumulation
        if not is_integer(self.seeds) or self.seeds < 1:
            raise ValueError(
                "`seeds` must be >= 1 (the number of fine-tuning runs, seeds 0..N-1); "
                f"received {self.seeds}."
            )
        if self.train_limit is not None and self.train_limit < 1:
            raise ValueError(f"`train_limit` must be >= 1 or None; received {self.train_limit}.")


def glue_hyperparameters(task, hidden_size):
    """ELECTRA's GLUE learning rate, layer-wise decay and epochs for a model of `hidden_size`.

    Hidden sizes other than 256 (Small), 768 (Base) and 1024 (Large) get Base's values.

    >>> glue_hyperparameters("rte", hidden_size=256)
    {'model_size': 'small', 'learning_rate': 0.0003, 'layer_decay': 0.8, 'epochs': 10}
    >>> glue_hyperparameters("mnli", hidden_size=1024)
    {'model_size': 'large', 'learning_rate': 5e-05, 'layer_decay': 0.9, 'epochs': 3}
    """
    size = MODEL_SIZES.get(hidden_size)
    if size is None:
        logger.info("Encoder hidden size %s is none of ELECTRA's (%s); using Base's GLUE "
                    "hyperparameters.", hidden_size, MODEL_SIZES)
        size = "base"
    return {
        "model_size": size,
        "learning_rate": _LEARNING_RATES[size],
        "layer_decay": _LAYER_DECAYS[size],
        "epochs": 10 if task in _LONG_TASKS else 3,
    }


def encoder_hidden_size(path):
    """The hidden size in `path`/config.json (Hugging Face or electra_tf, nested or not).

    Without a config.json (a Hub id), the encoder is loaded to read it.
    """
    config_path = os.path.join(path, "config.json")
    if not os.path.isfile(config_path):
        return load_encoder(path).hidden_size
    import json

    with open(config_path, encoding="utf-8") as f:
        pending = [json.load(f)]
    while pending:  # breadth first: the encoder's own size before any nested one
        node = pending.pop(0)
        if isinstance(node, dict):
            if isinstance(node.get("hidden_size"), int):
                return node["hidden_size"]
            pending.extend(node.values())
    raise ValueError(f"{config_path} has no hidden_size; expected an encoder's config.")


def submission_predictions(task, predictions, label_names=None):
    """Predicted class ids (or STS-B scores) → the strings the GLUE server expects.

    >>> submission_predictions("rte", [0, 1], ["entailment", "not_entailment"])
    ['entailment', 'not_entailment']
    >>> submission_predictions("cola", [1, 0]), submission_predictions("stsb", [5.31, 2.4567])
    (['1', '0'], ['5.000', '2.457'])
    """
    if task == "stsb":
        # The server scores similarity in [0, 5]; the regression head is unbounded.
        return [f"{min(max(float(score), 0.0), 5.0):.3f}" for score in predictions]
    if task in _NAMED_PREDICTIONS:
        return [label_names[int(class_id)] for class_id in predictions]
    return [str(int(class_id)) for class_id in predictions]


def write_submission_file(path, indices, predictions):
    """Writes `index<TAB>prediction` rows, sorted by index, under a header line.

    >>> import tempfile
    >>> path = tempfile.mkdtemp() + "/RTE.tsv"
    >>> write_submission_file(path, [7, 3], ["entailment", "not_entailment"])
    >>> print(open(path).read(), end="")
    index	prediction
    3	not_entailment
    7	entailment
    """
    with atomic_text_file(path) as f:
        f.write("index\tprediction\n")
        for index, prediction in sorted(zip(indices, predictions)):
            f.write(f"{index}\t{prediction}\n")


def _predict(classifier, tokenizer, example_sets, max_seq_length, batch_size, task):
    """Class ids (argmax), or the first output for STS-B, for each of `example_sets`.

    One pipeline and one `predict` for all sets (dev and test splits together): each
    pipeline costs a tokenizer trace, and each `predict` a model trace.
    """
    columns = ["text", "text_b"] if "text_b" in example_sets[0] else ["text"]
    combined = {column: [text for examples in example_sets for text in examples[column]]
                for column in columns}
    combined["label"] = [0] * len(combined["text"])  # unused: predictions only
    data = make_classification_dataset(combined, tokenizer, max_seq_length, batch_size)
    logits = classifier.predict(data.map(lambda features, labels: features), verbose=0)
    predictions = logits[:, 0] if task == "stsb" else np.argmax(logits, axis=-1)
    ends = np.cumsum([len(examples["text"]) for examples in example_sets])
    return np.split(predictions, ends[:-1])  # one array per set


def _dev_score(metrics):
    """GLUE's per-task score: the mean of its metrics."""
    return float(np.mean(list(metrics.values())))


def run_glue(config):
    """Fine-tunes `config.seeds` models on a GLUE task; returns the summary in results.json.

    The summary: "task", "hyperparameters" (as used, defaults resolved),
    "metric_names", "seeds" (one `{"seed", "metrics", "train_seconds",
    "output_dir"}` each), "median" (per metric, over seeds), "submission"
    (`{"seed", "files"}`, or None with `submission=False`) and "config".

    >>> run_glue(GlueConfig(task="cola", encoder="/no/such/encoder"))
    Traceback (most recent call last):
    ...
    ValueError: Expected a Hugging Face checkpoint directory or a Hub model id such as
    'google/electra-small-discriminator'; '/no/such/encoder' is not one.
    """
    task, name = config.task, f"glue/{config.task}"
    spec = TFDS_TASKS[name]
    defaults = glue_hyperparameters(task, encoder_hidden_size(config.encoder))
    hyperparameters = {
        "model_size": defaults["model_size"],
        "learning_rate": config.learning_rate or defaults["learning_rate"],
        "layer_decay": config.layer_decay or defaults["layer_decay"],
        "epochs": config.epochs or defaults["epochs"],
        "batch_size": config.batch_size,
        "max_seq_length": config.max_seq_length,
        "weight_decay": config.weight_decay,
        "warmup_proportion": config.warmup_proportion,
    }
    regression = spec.get("problem_type") == "regression"
    train = read_tfds_classification(name, "train", limit=config.train_limit,
                                     data_dir=config.data_dir)
    if not regression:
        train["num_classes"] = spec["num_classes"]
    dev_sets = {prefix: read_tfds_classification(name, split, data_dir=config.data_dir)
                for prefix, split in _DEV_SPLITS.get(task, {"": "validation"}).items()}

    # Test splits are predicted with the dev sets, in the same pass, for every seed; the
    # best seed's predictions so far are kept, so its model need not be loaded again.
    test_sets = {}
    if config.submission:
        test_sets = {}
        for split, file_name in _TEST_SPLITS.get(task, {"test": SUBMISSION_FILES[task]}).items():
            builder, _, split = split.rpartition(":")  # "glue/ax:test": another builder's split
            test_sets[file_name] = read_tfds_classification(
                builder or name, split, data_dir=config.data_dir, require_labels=False,
                include_idx=True)

    summary = {
        "task": task,
        "hyperparameters": hyperparameters,
        "metric_names": metric_names(task),
        "seeds": [],
        "median": None,
        "submission": None,
        "config": dataclasses.asdict(config),
    }
    os.makedirs(config.output_dir, exist_ok=True)
    results_path = os.path.join(config.output_dir, "results.json")
    best_score, best_test_predictions = None, None
    shared = {field.name: getattr(config, field.name)
              for field in dataclasses.fields(FinetuningOptions) if field.name != "output_dir"}
    shared.update({name: hyperparameters[name]
                   for name in ("epochs", "learning_rate", "layer_decay")})
    for seed in range(config.seeds):
        seed_dir = os.path.join(config.output_dir, f"seed_{seed}")
        finetuning = FinetuningConfig(
            **shared,  # the FinetuningOptions every seed shares
            train=f"tfds:{name}:train",
            output_dir=seed_dir,
            text_b_column="text_b" if spec["text_b"] else None,
            problem_type="regression" if regression else "single_label",
            num_classes=None if regression else spec["num_classes"],
            label_names=spec["label_names"],
            dropout_rate=config.dropout_rate,
            seed=seed,
        )
        finetuned = run_finetuning(finetuning, train_examples=train)
        classifier, tokenizer, _ = load_task_model(seed_dir, "classify")
        predictions = _predict(classifier, tokenizer,
                               [*dev_sets.values(), *test_sets.values()],
                               config.max_seq_length, config.batch_size, task)
        metrics = {}
        for (prefix, examples), predicted in zip(dev_sets.items(), predictions):
            for metric, value in glue_metrics(task, examples["label"], predicted).items():
                metrics[prefix + metric] = value
        if best_score is None or _dev_score(metrics) > best_score:  # ties: the lower seed
            best_score, best_seed = _dev_score(metrics), seed
            best_test_predictions = predictions[len(dev_sets):]
        summary["seeds"].append({"seed": seed, "metrics": metrics,
                                 "train_seconds": finetuned["train_seconds"],
                                 "output_dir": seed_dir})
        summary["median"] = median_over_seeds([run["metrics"] for run in summary["seeds"]])
        write_json(results_path, summary)  # after every seed: long runs show progress

    if config.submission:
        files = []
        for (file_name, test), predicted in zip(test_sets.items(), best_test_predictions):
            path = os.path.join(config.output_dir, "submission", file_name)
            write_submission_file(path, test["idx"], submission_predictions(
                task, predicted, spec["label_names"]))
            files.append(path)
        summary["submission"] = {"seed": best_seed, "files": files}
        write_json(results_path, summary)
    return summary


def format_glue_summary(summary):
    """A readable table of the dev metrics: one row per seed, then the median.

    >>> print(format_glue_summary({
    ...     "task": "mrpc", "metric_names": ["f1", "accuracy"],
    ...     "seeds": [{"seed": 0, "metrics": {"f1": 0.9, "accuracy": 0.86}},
    ...               {"seed": 1, "metrics": {"f1": 0.88, "accuracy": 0.84}}],
    ...     "median": {"f1": 0.89, "accuracy": 0.85},
    ...     "submission": {"seed": 0, "files": ["runs/mrpc/submission/MRPC.tsv"]},
    ...     "config": {"output_dir": "runs/mrpc"}}))
    GLUE mrpc, dev set, 2 seed(s)
    seed      f1  accuracy
    0     0.9000    0.8600
    1     0.8800    0.8400
    median 0.8900    0.8500
    submission (seed 0): runs/mrpc/submission/MRPC.tsv
    wrote runs/mrpc/results.json
    """
    names = summary["metric_names"]
    widths = [max(len(name), 6) for name in names]
    lines = [f"GLUE {summary['task']}, dev set, {len(summary['seeds'])} seed(s)",
             f"{'seed':<7}" + "  ".join(name.rjust(width) for name, width in zip(names, widths))]

    def row(label, metrics):
        return f"{label:<7}" + "  ".join(
            f"{metrics[name]:.4f}".rjust(width) for name, width in zip(names, widths))

    for run in summary["seeds"]:
        lines.append(row(str(run["seed"]), run["metrics"]))
    lines.append(row("median", summary["median"]))
    if summary.get("submission"):
        lines.append(f"submission (seed {summary['submission']['seed']}): "
                     + ", ".join(summary["submission"]["files"]))
    lines.append(f"wrote {summary['config']['output_dir']}/results.json")
    return "\n".join(lines)
