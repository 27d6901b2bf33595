"""Entity-level precision, recall and F1 for tag sequences, as `seqeval` computes them.

An entity is a chunk of tags (type, first word, last word). The chunking is
seqeval's default ("conlleval") mode, which reads IOB1, IOB2 and IOBES alike:

- a chunk ends before a B or S tag, after an E or S tag, at an O, and where
  the type changes;
- a chunk starts at B or S, at an I or E that follows O, E or S, and where
  the type changes (so a lone "I-PER" is an entity, as in IOB1).

Sentences are chunked one by one (seqeval puts an O between them), and the
scores are micro-averaged over entities: precision = correct / predicted,
recall = correct / gold, where correct means same type and same span.
"""

import collections

OUTSIDE = "O"


def _split_tag(tag):
    """'B-PER' → ('B', 'PER'); 'O' → ('O', ''); a bare 'PER' is read as an inside tag."""
    if tag == OUTSIDE or tag == "":
        return OUTSIDE, ""
    if len(tag) > 1 and tag[1] == "-" and tag[0] in "BIES":
        return tag[0], tag[2:]
    if tag in ("B", "I", "E", "S"):
        return tag, ""
    return "I", tag


def get_entities(tags):
    """The entities of one sentence's tags, as (type, first, last) word indices.

    >>> get_entities(["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"])
    [('PER', 0, 1), ('LOC', 3, 3), ('LOC', 4, 4), ('ORG', 5, 5)]
    """
    entities = []
    previous_prefix, previous_type, start = OUTSIDE, "", 0
    for index, tag in enumerate(list(tags) + [OUTSIDE]):  # the O closes a final chunk
        prefix, type_ = _split_tag(tag)
        ends = (
            previous_prefix in ("E", "S")
            or (previous_prefix in ("B", "I") and prefix in ("B", "S", OUTSIDE))
            or (previous_prefix != OUTSIDE and previous_type != type_)
        )
        if ends:
            entities.append((previous_type, start, index - 1))
        starts = (
            prefix in ("B", "S")
            or (previous_prefix in ("E", "S", OUTSIDE) and prefix in ("I", "E"))
            or (prefix != OUTSIDE and previous_type != type_)
        )
        if starts:
            start = index
        previous_prefix, previous_type = prefix, type_
    return entities


def _ratio(numerator, denominator):
    return numerator / denominator if denominator else 0.0


def _scores(correct, predicted, gold):
    precision, recall = _ratio(correct, predicted), _ratio(correct, gold)
    return {
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
        "support": gold,
    }


def entity_scores(gold_tags, predicted_tags):
    """Micro-averaged entity precision/recall/F1, and the same per entity type.

    Args:
        gold_tags: a list of sentences, each a list of tag strings ("B-PER", "O").
        predicted_tags: the same shape: one predicted tag per gold tag.

    Returns:
        `{"precision", "recall", "f1", "support", "per_type": {type: {...}}}`;
        support counts gold entities; a ratio with a zero denominator is 0.

    Raises:
        ValueError: the numbers of sentences or of tags in a sentence differ.

    >>> scores = entity_scores([["B-PER", "I-PER", "O", "B-LOC"]],
    ...                        [["B-PER", "I-PER", "O", "O"]])
    >>> scores["precision"], scores["recall"], round(scores["f1"], 4)
    (1.0, 0.5, 0.6667)
    """
    if len(gold_tags) != len(predicted_tags):
        raise ValueError(
            f"Expected one predicted sentence per gold sentence; received {len(gold_tags)} "
            f"gold and {len(predicted_tags)} predicted."
        )
    correct, predicted, gold = collections.Counter(), collections.Counter(), collections.Counter()
    for number, (gold_sentence, predicted_sentence) in enumerate(zip(gold_tags, predicted_tags)):
        if len(gold_sentence) != len(predicted_sentence):
            raise ValueError(
                f"Sentence {number} has {len(gold_sentence)} gold tags and "
                f"{len(predicted_sentence)} predicted; expected one prediction per word."
            )
        gold_entities = set(get_entities(gold_sentence))
        predicted_entities = set(get_entities(predicted_sentence))
        for type_, *_ in gold_entities:
            gold[type_] += 1
        for type_, *_ in predicted_entities:
            predicted[type_] += 1
        for type_, *_ in gold_entities & predicted_entities:
            correct[type_] += 1
    scores = _scores(sum(correct.values()), sum(predicted.values()), sum(gold.values()))
    scores["per_type"] = {
        type_: _scores(correct[type_], predicted[type_], gold[type_])
        for type_ in sorted(set(gold) | set(predicted))
    }
    return scores


def tagging_metrics(gold_tags, predicted_tags):
    """What `electra-tf evaluate tag` reports: entity P/R/F1 (seqeval) and word accuracy.

    >>> metrics = tagging_metrics([["B-ORG", "O"]], [["B-ORG", "B-PER"]])
    >>> metrics["f1"], metrics["precision"], metrics["accuracy"]
    (0.6666666666666666, 0.5, 0.5)
    """
    scores = entity_scores(gold_tags, predicted_tags)
    words = sum(len(sentence) for sentence in gold_tags)
    right = sum(g == p for gs, ps in zip(gold_tags, predicted_tags) for g, p in zip(gs, ps))
    return {
        "f1": scores["f1"],
        "precision": scores["precision"],
        "recall": scores["recall"],
        "accuracy": _ratio(right, words),
        "per_type": scores["per_type"],
    }
