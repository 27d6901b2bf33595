"""GLUE's metrics against scipy.stats and sklearn.metrics on the same predictions."""

import numpy as np
import pytest

from electra_tf.tasks.glue_metrics import GLUE_TASKS, glue_metrics, median_over_seeds, metric_names

stats = pytest.importorskip("scipy.stats")
sklearn_metrics = pytest.importorskip("sklearn.metrics")


@pytest.mark.parametrize("seed", range(5))
def test_classification_tasks_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=50)
    predictions = np.where(rng.random(50) < 0.7, labels, 1 - labels)
    assert glue_metrics("cola", labels, predictions)["matthews_correlation"] == pytest.approx(
        sklearn_metrics.matthews_corrcoef(labels, predictions))
    for task in ("mrpc", "qqp"):
        metrics = glue_metrics(task, labels, predictions)
        assert metrics["f1"] == pytest.approx(sklearn_metrics.f1_score(labels, predictions))
        assert metrics["accuracy"] == pytest.approx(
            sklearn_metrics.accuracy_score(labels, predictions))
    for task in ("sst2", "qnli", "rte", "wnli"):
        assert glue_metrics(task, labels, predictions) == {
            "accuracy": pytest.approx(sklearn_metrics.accuracy_score(labels, predictions))}
    three = rng.integers(0, 3, size=50)  # MNLI: three classes
    guess = np.where(rng.random(50) < 0.5, three, rng.integers(0, 3, size=50))
    assert glue_metrics("mnli", three, guess)["accuracy"] == pytest.approx(
        sklearn_metrics.accuracy_score(three, guess))


def test_degenerate_classification_predictions():
    labels = np.array([0, 1, 1, 0, 1])
    constant = np.ones(5, np.int64)
    # A constant prediction carries no information: MCC 0, as sklearn says.
    assert glue_metrics("cola", labels, constant)["matthews_correlation"] == 0.0
    assert sklearn_metrics.matthews_corrcoef(labels, constant) == 0.0
    # No positive prediction and no positive label: F1 0 (sklearn's zero_division=0).
    zeros = np.zeros(5, np.int64)
    assert glue_metrics("mrpc", zeros, zeros) == {"f1": 0.0, "accuracy": 1.0}
    assert sklearn_metrics.f1_score(zeros, zeros, zero_division=0) == 0.0
    perfect = glue_metrics("cola", labels, labels)["matthews_correlation"]
    assert perfect == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(5))
def test_stsb_matches_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    # GLUE's STS-B gold scores are multiples of 0.2: many ties; rounded predictions tie too.
    labels = rng.integers(0, 26, size=60) / 5.0
    predictions = np.round(labels + rng.normal(0, 1.0, size=60), 1)
    metrics = glue_metrics("stsb", labels, predictions)
    assert metrics["pearson"] == pytest.approx(stats.pearsonr(labels, predictions)[0])
    assert metrics["spearman"] == pytest.approx(stats.spearmanr(labels, predictions)[0])
    assert len(np.unique(predictions)) < len(predictions)  # the ties are there


def test_stsb_constant_predictions_are_zero_not_nan():
    labels = np.array([0.0, 1.2, 3.4, 5.0])
    assert glue_metrics("stsb", labels, np.full(4, 2.5)) == {"pearson": 0.0, "spearman": 0.0}


def test_metric_names_and_median():
    assert metric_names("cola") == ["matthews_correlation"]
    assert metric_names("mrpc") == metric_names("qqp") == ["f1", "accuracy"]
    assert metric_names("mnli") == ["matched_accuracy", "mismatched_accuracy"]
    assert {task: len(metric_names(task)) for task in GLUE_TASKS} == {
        "cola": 1, "sst2": 1, "mrpc": 2, "stsb": 2, "qqp": 2, "mnli": 2, "qnli": 1, "rte": 1,
        "wnli": 1}
    runs = [{"accuracy": value} for value in (0.7, 0.9, 0.6, 0.8)]
    assert median_over_seeds(runs) == {"accuracy": pytest.approx(0.75)}
    assert median_over_seeds(runs[:3]) == {"accuracy": 0.7}
    with pytest.raises(ValueError, match="at least one seed"):
        median_over_seeds([])
    with pytest.raises(ValueError, match="Seed 1 has metrics"):
        median_over_seeds([{"f1": 0.5}, {"accuracy": 0.5}])


def test_unknown_task_lists_the_nine():
    with pytest.raises(ValueError, match="Unknown GLUE task 'ax'; expected one of cola, sst2"):
        glue_metrics("ax", [1], [1])
    with pytest.raises(ValueError, match="Unknown GLUE task"):
        metric_names("mnli-mm")
