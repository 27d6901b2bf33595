"""SQuAD exact match and F1, exactly as the official v1.1 and v2.0 evaluation scripts compute them.

Both scripts normalize an answer the same way: lower-case, drop ASCII
punctuation (`string.punctuation`), drop the words a/an/the, collapse
whitespace; a question scores the maximum over its gold answers; the totals
are percentages over *all* questions. A missing prediction scores 0, as in
v1.1 (the v2.0 script expects a prediction for every question).

Where they differ (and these functions follow each):
- v1.1 F1 is 0 when the prediction and a gold answer share no token, even
  when both normalize to nothing ("the" against "a": EM 1, F1 0).
- v2.0 drops gold answers that normalize to nothing; a question left with
  none is unanswerable and its gold is "" (EM and F1 are 1 for the
  prediction "" and 0 otherwise); F1 between two empty token lists is 1.
  It also reports HasAns_* and NoAns_* for the answerable and unanswerable
  questions.
"""

import collections
import re
import string

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text):
    """Lower-case, remove punctuation, articles and extra whitespace (both official scripts).

    >>> normalize_answer("The  Eiffel-Tower, in Paris!")
    'eiffeltower in paris'
    """
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match_score(prediction, gold):
    """1 if the answers are equal after `normalize_answer`, else 0 (v1.1 and v2.0 alike)."""
    return int(normalize_answer(prediction) == normalize_answer(gold))


def f1_score_v1(prediction, gold):
    """Token F1 as in evaluate-v1.1.py: 0 when no token is shared.

    >>> round(f1_score_v1("the big red dog", "a red dog barked"), 4)  # P = R = 2/3
    0.6667
    """
    prediction_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    common = collections.Counter(prediction_tokens) & collections.Counter(gold_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(prediction_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def f1_score_v2(prediction, gold):
    """Token F1 as in evaluate-v2.0.py: like v1.1, but 1 when both have no tokens.

    >>> f1_score_v2("", ""), f1_score_v2("an", "the"), f1_score_v1("an", "the")
    (1, 1, 0.0)
    """
    prediction_tokens = normalize_answer(prediction).split() if prediction else []
    gold_tokens = normalize_answer(gold).split() if gold else []
    if not prediction_tokens or not gold_tokens:
        return int(prediction_tokens == gold_tokens)
    return f1_score_v1(prediction, gold)


def squad_gold_answers(answers, version_2):
    """The gold texts of one question (v2.0: those non-empty after normalizing, else [""])."""
    texts = [answer["text"] if isinstance(answer, dict) else answer for answer in answers]
    if not version_2:
        return texts
    texts = [text for text in texts if normalize_answer(text)]
    return texts or [""]


def squad_evaluate(examples, predictions, version_2=False):
    """EM and F1 (percentages) over `examples`, as the official script of that version.

    Args:
        examples: `SquadExample`s (or anything with `.id` and `.answers`, a
            list of {"text"} or strings) — every question counts.
        predictions: {question id: answer text}; a missing id scores 0.
        version_2: use evaluate-v2.0.py's rules (and report HasAns/NoAns).

    Returns:
        {"exact_match", "f1", "total", "missing"} and, for v2.0,
        {"HasAns_exact", "HasAns_f1", "HasAns_total", "NoAns_exact", ...}.

    >>> from types import SimpleNamespace as Q
    >>> examples = [Q(id="1", answers=[{"text": "Denver Broncos"}]),
    ...             Q(id="2", answers=[{"text": "Santa Clara, California"}])]
    >>> squad_evaluate(examples, {"1": "the Denver Broncos", "2": "Santa Clara"})
    {'exact_match': 50.0, 'f1': 90.0, 'total': 2, 'missing': 0}
    """
    f1_of = f1_score_v2 if version_2 else f1_score_v1
    exact, f1, has_answer, missing = {}, {}, {}, 0
    for example in examples:
        golds = squad_gold_answers(example.answers, version_2)
        if example.id not in predictions:
            missing += 1
            exact[example.id] = f1[example.id] = 0.0
        else:
            prediction = predictions[example.id]
            exact[example.id] = max(exact_match_score(prediction, gold) for gold in golds)
            f1[example.id] = max(f1_of(prediction, gold) for gold in golds)
        has_answer[example.id] = bool(example.answers)  # the v2.0 script's qid_to_has_ans
    total = len(exact)

    def percent(values, ids):
        return 100.0 * sum(values[i] for i in ids) / len(ids) if ids else 0.0

    results = {"exact_match": percent(exact, list(exact)), "f1": percent(f1, list(f1)),
               "total": total, "missing": missing}
    if version_2:
        for name, ids in (("HasAns", [i for i in exact if has_answer[i]]),
                          ("NoAns", [i for i in exact if not has_answer[i]])):
            if ids:  # the official script reports only the groups that exist
                results.update({f"{name}_exact": percent(exact, ids),
                                f"{name}_f1": percent(f1, ids), f"{name}_total": len(ids)})
    return results
