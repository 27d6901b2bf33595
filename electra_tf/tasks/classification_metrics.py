"""GLUE's evaluation metrics on whole predictions, in numpy: accuracy, F1, MCC, Pearson, Spearman.

Corpus-level metrics (F1, Matthews correlation, correlations) do not average
over batches, so they are computed once on all labels and predictions, e.g.
those of `model.predict`. Definitions follow scikit-learn and scipy:
binary F1 of the positive class, the multi-class Matthews correlation
(Gorodkin's R_K), Pearson's r, and Spearman's ρ as Pearson's r of the ranks
with ties averaged. Where a formula divides by zero (no positive
predictions, a constant input) the result is 0.0, as scikit-learn returns.
"""

import numpy as np

from electra_tf.tasks.electra_classifier import PROBLEM_TYPES


def _labels(labels, predictions):
    labels = np.asarray(labels).reshape(-1)
    predictions = np.asarray(predictions).reshape(-1)
    if labels.shape != predictions.shape or labels.size == 0:
        raise ValueError(
            "`labels` and `predictions` must be non-empty and of one size; received "
            f"{labels.size} labels and {predictions.size} predictions."
        )
    return labels, predictions


def accuracy(labels, predictions):
    """Fraction of predictions equal to the labels.

    >>> accuracy([0, 1, 1, 0], [0, 1, 0, 0])
    0.75
    """
    labels, predictions = _labels(labels, predictions)
    return float(np.mean(labels == predictions))


def f1_score(labels, predictions, positive_label=1):
    """F1 of `positive_label`: 2 · precision · recall / (precision + recall).

    >>> round(f1_score([1, 1, 0, 0], [1, 0, 1, 0]), 4)
    0.5
    """
    labels, predictions = _labels(labels, predictions)
    true_positives = np.sum((predictions == positive_label) & (labels == positive_label))
    predicted = np.sum(predictions == positive_label)
    actual = np.sum(labels == positive_label)
    if predicted + actual == 0:
        return 0.0
    return float(2 * true_positives / (predicted + actual))  # = 2PR / (P + R)


def macro_f1_score(labels, predictions):
    """The unweighted mean of every class's F1 (classes present in either input).

    >>> round(macro_f1_score([0, 1, 2, 2], [0, 2, 2, 2]), 4)
    0.6
    """
    labels, predictions = _labels(labels, predictions)
    classes = np.union1d(labels, predictions)
    return float(np.mean([f1_score(labels, predictions, c) for c in classes]))


def matthews_correlation(labels, predictions):
    """Matthews correlation coefficient, for two or more classes (CoLA's metric).

    From the confusion matrix C: (c·s − Σ p_k t_k) / sqrt((s² − Σ p_k²)(s² − Σ t_k²)),
    with c correct predictions, s samples, p_k predicted and t_k true counts of class k.

    >>> round(matthews_correlation([1, 1, 0, 0], [1, 0, 0, 0]), 4)
    0.5774
    """
    labels, predictions = _labels(labels, predictions)
    classes, indices = np.unique(np.concatenate([labels, predictions]), return_inverse=True)
    true_ids, predicted_ids = indices[: labels.size], indices[labels.size :]
    confusion = np.zeros((classes.size, classes.size), np.float64)  # (true, predicted)
    np.add.at(confusion, (true_ids, predicted_ids), 1.0)
    true_counts, predicted_counts = confusion.sum(axis=1), confusion.sum(axis=0)
    correct, samples = np.trace(confusion), confusion.sum()
    numerator = correct * samples - np.dot(predicted_counts, true_counts)
    denominator = np.sqrt(
        (samples**2 - np.dot(predicted_counts, predicted_counts))
        * (samples**2 - np.dot(true_counts, true_counts))
    )
    return float(numerator / denominator) if denominator > 0 else 0.0


def pearson_correlation(x, y):
    """Pearson's r (STS-B's first metric).

    >>> round(pearson_correlation([1, 2, 3, 4], [1, 3, 2, 4]), 4)
    0.8
    """
    x, y = _labels(x, y)
    x = x.astype(np.float64) - np.mean(x)
    y = y.astype(np.float64) - np.mean(y)
    denominator = np.sqrt(np.dot(x, x) * np.dot(y, y))
    return float(np.dot(x, y) / denominator) if denominator > 0 else 0.0


def _ranks(values):
    """1-based ranks, ties given the mean of the ranks they span (scipy's 'average')."""
    values = np.asarray(values)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # Start of each run of equal values, and the run each sorted position is in.
    starts = np.concatenate([[True], sorted_values[1:] != sorted_values[:-1]])
    run = np.cumsum(starts) - 1
    run_starts = np.flatnonzero(starts)
    run_ends = np.append(run_starts[1:], values.size)  # exclusive
    mean_rank = (run_starts + 1 + run_ends) / 2.0  # mean of ranks start+1 .. end
    ranks = np.empty(values.size, np.float64)
    ranks[order] = mean_rank[run]
    return ranks


def spearman_correlation(x, y):
    """Spearman's ρ: Pearson's r of the ranks, ties averaged (STS-B's second metric).

    >>> round(spearman_correlation([1, 2, 3, 4], [10, 20, 20, 40]), 4)
    0.9487
    """
    x, y = _labels(x, y)
    return pearson_correlation(_ranks(x), _ranks(y))


def compute_metrics(labels, logits, problem_type="single_label"):
    """All metrics that fit `problem_type`, from labels and the classifier's logits.

    - "single_label": accuracy, f1 (binary: of class 1; else macro), matthews_correlation.
    - "multi_label": accuracy (per label, logit > 0), exact_match, micro f1.
    - "regression": pearson, spearman, mse (first target column).

    >>> compute_metrics([1, 0, 1], [[0.1, 2.0], [1.0, -1.0], [3.0, 0.0]])
    {'accuracy': 0.6666666666666666, 'f1': 0.6666666666666666, 'matthews_correlation': 0.5}
    """
    if problem_type not in PROBLEM_TYPES:
        raise ValueError(
            f"`problem_type` must be one of {list(PROBLEM_TYPES)}; received {problem_type!r}."
        )
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels)
    if problem_type == "regression":
        predictions = logits.reshape(len(logits), -1)[:, 0]
        targets = labels.reshape(len(labels), -1)[:, 0].astype(np.float64)
        return {
            "pearson": pearson_correlation(targets, predictions),
            "spearman": spearman_correlation(targets, predictions),
            "mse": float(np.mean((targets - predictions) ** 2)),
        }
    if problem_type == "multi_label":
        if labels.shape != logits.shape:
            raise ValueError(
                f"Multi-label labels must have the logits' shape {logits.shape}; received "
                f"{labels.shape}."
            )
        predictions = (logits > 0).astype(np.int64)  # logit > 0 ⇔ probability > 0.5
        labels = labels.astype(np.int64)
        return {
            "accuracy": accuracy(labels, predictions),
            "exact_match": float(np.mean(np.all(labels == predictions, axis=-1))),
            "f1": f1_score(labels, predictions, positive_label=1),
        }
    predictions = np.argmax(logits, axis=-1)
    binary = logits.shape[-1] == 2
    return {
        "accuracy": accuracy(labels, predictions),
        "f1": f1_score(labels, predictions) if binary else macro_f1_score(labels, predictions),
        "matthews_correlation": matthews_correlation(labels, predictions),
    }
