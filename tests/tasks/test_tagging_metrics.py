"""Entity-level tagging metrics against hand-derived seqeval (default mode) results."""

import pytest

from electra_tf.tasks.tagging_metrics import entity_scores, get_entities, tagging_metrics


@pytest.mark.parametrize(
    "tags, entities",
    [
        (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 1), ("LOC", 3, 3)]),  # IOB2
        (["I-PER", "I-PER", "O", "I-LOC"], [("PER", 0, 1), ("LOC", 3, 3)]),  # IOB1: I starts
        (["I-PER", "B-PER"], [("PER", 0, 0), ("PER", 1, 1)]),  # IOB1: B splits same-type runs
        (["B-PER", "I-LOC", "I-LOC"], [("PER", 0, 0), ("LOC", 1, 2)]),  # a type change splits
        (["B-PER", "I-PER", "I-LOC"], [("PER", 0, 1), ("LOC", 2, 2)]),
        (["S-PER", "B-LOC", "E-LOC", "O"], [("PER", 0, 0), ("LOC", 1, 2)]),  # IOBES
        (["B-MISC", "B-MISC", "I-MISC"], [("MISC", 0, 0), ("MISC", 1, 2)]),
        (["O", "O"], []),
        ([], []),
    ],
)
def test_chunking_follows_seqeval_default_mode(tags, entities):
    assert get_entities(tags) == entities


def test_micro_average_over_entities_with_per_type_scores():
    gold = [["B-PER", "O", "B-LOC", "I-LOC"], ["B-ORG"]]
    predicted = [["B-PER", "O", "B-LOC", "O"], ["B-ORG"]]  # LOC's span is cut short: wrong
    scores = entity_scores(gold, predicted)
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3)
    assert scores["support"] == 3
    assert scores["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert scores["per_type"]["PER"]["f1"] == 1.0


def test_entities_do_not_run_across_sentences():
    gold = [["O", "B-PER"], ["I-PER", "O"]]  # two entities: the I after the break starts one
    predicted = [["O", "B-PER"], ["O", "O"]]
    scores = entity_scores(gold, predicted)
    assert (scores["precision"], scores["recall"]) == (1.0, 0.5)
    assert scores["f1"] == pytest.approx(2 / 3)


def test_wrong_type_and_no_predictions():
    scores = entity_scores([["B-PER", "O"]], [["B-ORG", "O"]])
    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.0, 0.0, 0.0)
    assert scores["per_type"]["ORG"]["support"] == 0 and scores["per_type"]["PER"]["support"] == 1
    nothing = entity_scores([["O"]], [["O"]])
    assert (nothing["f1"], nothing["per_type"]) == (0.0, {})


def test_tagging_metrics_adds_word_accuracy():
    metrics = tagging_metrics([["B-PER", "I-PER", "O", "O"]], [["B-PER", "I-PER", "O", "B-LOC"]])
    assert metrics["accuracy"] == 0.75
    assert (metrics["precision"], metrics["recall"]) == (0.5, 1.0)


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError, match="received 2 gold and 1 predicted"):
        entity_scores([["O"], ["O"]], [["O"]])
    with pytest.raises(ValueError, match="Sentence 0 has 2 gold tags and 1 predicted"):
        entity_scores([["O", "O"]], [["O"]])
