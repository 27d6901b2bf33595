"""EM/F1 against values worked out by hand from the official v1.1 and v2.0 evaluation scripts."""

from types import SimpleNamespace

import pytest

from electra_tf.tasks.squad_metrics import (
    exact_match_score,
    f1_score_v1,
    f1_score_v2,
    normalize_answer,
    squad_evaluate,
)


@pytest.mark.parametrize("text, expected", [
    ("The Denver Broncos", "denver broncos"),          # lower-case, article dropped
    ("  a  cat,\tan apple; THE end. ", "cat apple end"),  # punctuation, articles, whitespace
    ("Theory of an anthem", "theory of anthem"),      # only whole-word articles go
    ("U.S.A.", "usa"),
    ("“curly” quotes", "“curly” quotes"),            # not ASCII punctuation: kept
    ("Saint-Étienne", "saintétienne"),                # accents kept, hyphen removed
    ("the", ""),
])
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


@pytest.mark.parametrize("prediction, gold, exact, f1_v1, f1_v2", [
    ("Denver Broncos", "the Denver Broncos!", 1, 1.0, 1.0),
    # 2 shared of 3 predicted and 2 gold tokens: P 2/3, R 1, F1 0.8.
    ("Denver Broncos team", "Denver Broncos", 0, 0.8, 0.8),
    # Shared counts are clipped: [dog, dog, cat] against [dog] share 1: P 1/3, R 1, F1 0.5.
    ("dog dog cat", "the dog", 0, 0.5, 0.5),
    ("cat", "dog", 0, 0.0, 0.0),
    # Both normalize to nothing: EM 1; v1.1 F1 is 0 (nothing shared), v2.0 F1 is 1.
    ("the", "an", 1, 0.0, 1.0),
    ("", "Denver", 0, 0.0, 0.0),
])
def test_exact_match_and_f1_per_answer(prediction, gold, exact, f1_v1, f1_v2):
    assert exact_match_score(prediction, gold) == exact
    assert f1_score_v1(prediction, gold) == pytest.approx(f1_v1)
    assert f1_score_v2(prediction, gold) == pytest.approx(f1_v2)


def question(id, *answers):
    return SimpleNamespace(id=id, answers=[{"text": text} for text in answers])


def test_v1_takes_the_best_gold_and_counts_missing_predictions_as_zero():
    examples = [
        question("1", "Santa Clara, California", "Santa Clara"),  # EM 1 via the second gold
        question("2", "Denver Broncos"),                             # "Broncos": F1 2/3
        question("3", "Levi's Stadium"),                             # missing: 0
    ]
    result = squad_evaluate(examples, {"1": "santa clara", "2": "Broncos"})
    assert result == {"exact_match": pytest.approx(100 / 3),
                      "f1": pytest.approx(100 * (1 + 2 / 3) / 3),
                      "total": 3, "missing": 1}


def test_v2_scores_unanswerable_questions_and_reports_both_groups():
    examples = [
        question("has1", "Denver Broncos"),      # predicted exactly
        question("has2", "Carolina Panthers"),   # predicted "": 0
        question("no1"),                         # unanswerable, predicted "": 1
        question("no2"),                         # unanswerable, predicted text: 0
        question("art", "the"),                  # gold normalizes to nothing: gold is ""
    ]
    predictions = {"has1": "Denver Broncos", "has2": "", "no1": "", "no2": "Broncos", "art": ""}
    result = squad_evaluate(examples, predictions, version_2=True)
    # "art" has answers, so it counts as HasAns (the script's qid_to_has_ans), but scores 1 for "".
    assert result["exact_match"] == pytest.approx(100 * 3 / 5)
    assert result["f1"] == pytest.approx(100 * 3 / 5)
    assert (result["HasAns_total"], result["NoAns_total"]) == (3, 2)
    assert result["HasAns_exact"] == pytest.approx(100 * 2 / 3)
    assert result["NoAns_exact"] == pytest.approx(50.0)
    # The same predictions under v1.1 rules: "" against "the" has F1 0 there.
    assert squad_evaluate(examples[:1] + examples[4:], predictions)["f1"] == pytest.approx(50.0)
