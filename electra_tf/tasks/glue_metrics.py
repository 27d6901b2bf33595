"""GLUE's official metric per task, and the median over fine-tuning seeds, in numpy.

Each task is scored as the GLUE benchmark scores it (Wang et al. 2019):

    cola                  Matthews correlation
    sst2, qnli, rte, wnli accuracy
    mrpc, qqp             F1 (of class 1: equivalent / duplicate) and accuracy
    stsb                  Pearson and Spearman correlation
    mnli                  accuracy on the matched and on the mismatched dev set

The formulas are `classification_metrics`' (checked against scikit-learn and
scipy in the tests). ELECTRA (Clark et al. 2020) reports the median over
fine-tuning seeds; `median_over_seeds` computes it per metric.

>>> glue_metrics("mrpc", labels=[1, 1, 0, 0], predictions=[1, 0, 0, 0])
{'f1': 0.6666666666666666, 'accuracy': 0.75}
"""

import numpy as np

from electra_tf.tasks.classification_metrics import (
    accuracy,
    f1_score,
    matthews_correlation,
    pearson_correlation,
    spearman_correlation,
)

GLUE_TASKS = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli")

# The metrics of one evaluation split, in the order GLUE's leaderboard lists them.
_SPLIT_METRICS = {
    "cola": ("matthews_correlation",),
    "sst2": ("accuracy",),
    "mrpc": ("f1", "accuracy"),
    "stsb": ("pearson", "spearman"),
    "qqp": ("f1", "accuracy"),
    "mnli": ("accuracy",),  # per dev set: matched_accuracy, mismatched_accuracy
    "qnli": ("accuracy",),
    "rte": ("accuracy",),
    "wnli": ("accuracy",),
}
_FUNCTIONS = {
    "matthews_correlation": matthews_correlation,
    "accuracy": accuracy,
    "f1": f1_score,
    "pearson": pearson_correlation,
    "spearman": spearman_correlation,
}


def _check_task(task):
    if task not in GLUE_TASKS:
        raise ValueError(
            f"Unknown GLUE task {task!r}; expected one of {', '.join(GLUE_TASKS)}."
        )


def metric_names(task):
    """The names of `task`'s official metrics, as `run_glue` reports them.

    >>> metric_names("mnli"), metric_names("stsb")
    (['matched_accuracy', 'mismatched_accuracy'], ['pearson', 'spearman'])
    """
    _check_task(task)
    if task == "mnli":
        return ["matched_accuracy", "mismatched_accuracy"]
    return list(_SPLIT_METRICS[task])


def glue_metrics(task, labels, predictions):
    """`task`'s official metrics on one evaluation split.

    Args:
        task: one of `GLUE_TASKS`.
        labels: the gold labels, class ids (STS-B: scores from 0 to 5).
        predictions: predicted class ids (the argmax of the logits), or
            predicted scores for STS-B.

    Returns:
        A dict metric → float; for MNLI `{"accuracy"}` of this one dev set,
        which `run_glue` reports as matched_accuracy or mismatched_accuracy.

    >>> glue_metrics("cola", [1, 1, 0, 0], [1, 1, 1, 1])  # constant predictions: MCC 0
    {'matthews_correlation': 0.0}
    >>> scores = glue_metrics("stsb", [0.0, 2.5, 5.0], [1.0, 2.0, 4.0])
    >>> {name: round(value, 4) for name, value in scores.items()}
    {'pearson': 0.982, 'spearman': 1.0}
    >>> glue_metrics("ax", [1], [1])
    Traceback (most recent call last):
    ...
    ValueError: Unknown GLUE task 'ax'; expected one of cola, sst2, mrpc, stsb, qqp, mnli,
    qnli, rte, wnli.
    """
    _check_task(task)
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    if task != "stsb":
        labels, predictions = labels.astype(np.int64), predictions.astype(np.int64)
    return {name: _FUNCTIONS[name](labels, predictions) for name in _SPLIT_METRICS[task]}


def median_over_seeds(per_seed):
    """The median of each metric over seeds (the mean of the middle two for an even count).

    Args:
        per_seed: one dict metric → value per seed, all with the same metrics.

    >>> median_over_seeds([{"accuracy": 0.8}, {"accuracy": 0.9}, {"accuracy": 0.6}])
    {'accuracy': 0.8}
    >>> median_over_seeds([{"f1": 0.5, "accuracy": 0.7}, {"f1": 0.7, "accuracy": 0.8}])
    {'f1': 0.6, 'accuracy': 0.75}
    """
    if not per_seed:
        raise ValueError("`per_seed` is empty; expected the metrics of at least one seed.")
    names = list(per_seed[0])
    for number, metrics in enumerate(per_seed):
        if sorted(metrics) != sorted(names):
            raise ValueError(
                f"Seed {number} has metrics {sorted(metrics)}; expected {sorted(names)}, the "
                "metrics of seed 0."
            )
    return {name: float(np.median([metrics[name] for metrics in per_seed])) for name in names}
