"""Metrics against scipy and against scikit-learn's formulas, computed here by hand."""

import numpy as np
import pytest

from electra_tf.tasks.classification_metrics import (
    accuracy,
    compute_metrics,
    f1_score,
    macro_f1_score,
    matthews_correlation,
    pearson_correlation,
    spearman_correlation,
)

stats = pytest.importorskip("scipy.stats")

LABELS = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 1])
PREDICTIONS = np.array([1, 1, 0, 1, 0, 1, 0, 0, 1, 1])
# Counts for LABELS/PREDICTIONS: TP 4, FN 1, FP 2, TN 3.
TP, FN, FP, TN = 4, 1, 2, 3


def test_binary_metrics_from_the_confusion_matrix():
    assert accuracy(LABELS, PREDICTIONS) == (TP + TN) / 10
    precision, recall = TP / (TP + FP), TP / (TP + FN)
    assert f1_score(LABELS, PREDICTIONS) == pytest.approx(
        2 * precision * recall / (precision + recall))
    mcc = (TP * TN - FP * FN) / np.sqrt((TP + FP) * (TP + FN) * (TN + FP) * (TN + FN))
    assert matthews_correlation(LABELS, PREDICTIONS) == pytest.approx(mcc)


def test_binary_mcc_is_the_phi_coefficient():
    # For 0/1 data, MCC is Pearson's r of labels and predictions.
    assert matthews_correlation(LABELS, PREDICTIONS) == pytest.approx(
        stats.pearsonr(LABELS, PREDICTIONS)[0])


def test_multiclass_mcc_matches_sklearn_formula():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    predictions = np.where(rng.random(200) < 0.6, labels, rng.integers(0, 4, 200))
    # scikit-learn's matthews_corrcoef, written out from its confusion matrix C.
    confusion = np.zeros((4, 4))
    for t, p in zip(labels, predictions):
        confusion[t, p] += 1
    t_sum, p_sum = confusion.sum(1), confusion.sum(0)
    c, s = np.trace(confusion), confusion.sum()
    expected = (c * s - p_sum @ t_sum) / np.sqrt((s**2 - p_sum @ p_sum) * (s**2 - t_sum @ t_sum))
    assert matthews_correlation(labels, predictions) == pytest.approx(expected)
    # Macro F1: the mean of per-class F1s.
    per_class = [2 * confusion[k, k] / (t_sum[k] + p_sum[k]) for k in range(4)]
    assert macro_f1_score(labels, predictions) == pytest.approx(np.mean(per_class))


def test_degenerate_cases_return_zero_like_sklearn():
    assert matthews_correlation([1, 1, 1], [1, 1, 1]) == 0.0  # one class only
    assert f1_score([0, 0], [0, 0]) == 0.0  # no positives anywhere
    assert pearson_correlation([1, 1, 1], [1, 2, 3]) == 0.0  # constant input
    assert matthews_correlation([0, 1, 0, 1], [1, 0, 1, 0]) == pytest.approx(-1.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_correlations_match_scipy(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=50)
    y = 0.5 * x + rng.normal(size=50)
    assert pearson_correlation(x, y) == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
    assert spearman_correlation(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
    # Ties (STS-B scores come in steps of 0.2): ranks are averaged.
    tied_x, tied_y = np.round(x), np.round(y * 2) / 2
    assert spearman_correlation(tied_x, tied_y) == pytest.approx(
        stats.spearmanr(tied_x, tied_y)[0], abs=1e-12)


def test_compute_metrics_per_problem_type():
    logits = np.stack([1 - PREDICTIONS, PREDICTIONS], axis=-1).astype(float)
    single = compute_metrics(LABELS, logits)
    assert single == {
        "accuracy": accuracy(LABELS, PREDICTIONS),
        "f1": f1_score(LABELS, PREDICTIONS),
        "matthews_correlation": matthews_correlation(LABELS, PREDICTIONS),
    }
    targets = np.linspace(0, 5, 10)
    regression = compute_metrics(targets, (targets**2)[:, None], "regression")
    assert regression["spearman"] == pytest.approx(1.0)
    assert regression["pearson"] == pytest.approx(stats.pearsonr(targets, targets**2)[0])
    multi = compute_metrics([[1, 0], [0, 1]], [[2.0, -1.0], [0.5, 3.0]], "multi_label")
    assert multi == {"accuracy": 0.75, "exact_match": 0.5, "f1": pytest.approx(0.8)}


def test_bad_inputs():
    with pytest.raises(ValueError, match="3 labels and 2 predictions"):
        accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="problem_type"):
        compute_metrics([0], [[0.0, 1.0]], "binary")
    with pytest.raises(ValueError, match="logits' shape"):
        compute_metrics([1, 0], [[0.0, 1.0], [1.0, 0.0]], "multi_label")
