"""Start/end logits to answers: in the graph (`best_spans`), for SQuAD (`postprocess_predictions`).

In the graph (for SavedModels that map raw question + context to an answer):

    outputs = model(inputs)                        # ElectraQuestionAnswering, one window per row
    mask = context_mask(inputs)                    # (batch, seq): the context's word pieces
    start, end, score = best_spans(outputs["start_logits"], outputs["end_logits"], mask,
                                   max_answer_length=30,
                                   start_top_index=outputs.get("start_top_index"))

`best_spans` is a pure function of tensors: for each row it returns the
best (start_index, end_index, score) with both ends in the context,
end >= start and end - start < max_answer_length. For the "huggingface" head
the score of a span is start_logit + end_logit (BERT's and transformers'
rule); for the "electra" head (`end_logits` (batch, beam, seq) with
`start_top_index`) it is log p(start) + log p(end | start), the original
code's beam score. A row whose context is empty gets score -inf.

For SQuAD, `postprocess_predictions` reads the model's outputs for every
window of every example (`create_squad_features`), keeps the n_best (20)
start and end candidates per window, drops spans outside the context, longer
than max_answer_length (30) or starting where another window sees the token
with more context, and maps the best span to characters of the original
context. SQuAD 2.0: the answer is "" when the null score beats the best
span by more than `null_score_threshold` (null score: the [CLS] start + end
logits, or the "electra" head's impossible logit, smallest over windows).
"""

import numpy as np
import tensorflow as tf

from electra_tf.utils.renamed_arguments import renamed_arguments

DEFAULT_N_BEST_SIZE = 20
DEFAULT_MAX_ANSWER_LENGTH = 30


@renamed_arguments(sep_id="sep_token_id")
def context_mask(inputs, sep_token_id=102):
    """1 on the context's word pieces of `[CLS] question [SEP] context [SEP]` rows.

    Args:
        inputs: {"input_word_ids", "input_mask", "input_type_ids"}, int (batch, seq).
        sep_token_id: id of [SEP] (102 in BERT's vocabulary), left out of the mask.

    Returns:
        bool (batch, seq).

    >>> ids = tf.constant([[101, 7, 102, 8, 9, 102, 0]])
    >>> context_mask({"input_word_ids": ids, "input_mask": tf.cast(ids > 0, tf.int32),
    ...               "input_type_ids": tf.constant([[0, 0, 0, 1, 1, 1, 0]])}).numpy().astype(int)
    array([[0, 0, 0, 1, 1, 0, 0]])
    """
    word_ids = tf.convert_to_tensor(inputs["input_word_ids"])
    return ((tf.cast(inputs["input_type_ids"], tf.int32) == 1)
            & (tf.cast(inputs["input_mask"], tf.int32) == 1)
            & (tf.cast(word_ids, tf.int32) != sep_token_id))


def best_spans(start_logits, end_logits, context_mask, max_answer_length=DEFAULT_MAX_ANSWER_LENGTH,
               start_top_index=None):
    """The best answer span of each row, in the graph.

    Args:
        start_logits: float (batch, seq).
        end_logits: float (batch, seq) ("huggingface" head), or (batch, beam, seq)
            with `start_top_index` ("electra" head: end logits given each of
            the beam's starts).
        context_mask: bool/int (batch, seq), 1 where a span may start or end
            (see `context_mask`).
        max_answer_length: spans cover at most this many word pieces.
        start_top_index: int (batch, beam), the "electra" head's start beam.

    Returns:
        (start_index int32 (batch,), end_index int32 (batch,), score float32 (batch,)).

    >>> start = tf.constant([[0., 5., 1., 0.]]); end = tf.constant([[0., 1., 0., 4.]])
    >>> [t.numpy().tolist() for t in best_spans(start, end, tf.constant([[0, 1, 1, 1]]))]
    [[1], [3], [9.0]]
    >>> [t.numpy().tolist() for t in best_spans(start, end, tf.constant([[0, 1, 1, 1]]),
    ...                                         max_answer_length=2)]
    [[1], [1], [6.0]]
    """
    start_logits = tf.cast(start_logits, tf.float32)
    end_logits = tf.cast(end_logits, tf.float32)
    allowed = tf.cast(context_mask, tf.bool)  # (B, T)
    seq_length = tf.shape(start_logits)[1]
    positions = tf.range(seq_length)
    if start_top_index is None:
        if end_logits.shape.rank != 2:
            raise ValueError(
                f"`end_logits` of rank {end_logits.shape.rank} needs `start_top_index` "
                "(the 'electra' head's beam); the 'huggingface' head's are (batch, seq)."
            )
        starts = tf.broadcast_to(positions[tf.newaxis, :, tf.newaxis],
                                 [tf.shape(start_logits)[0], seq_length, seq_length])  # (B, T, T)
        scores = start_logits[:, :, tf.newaxis] + end_logits[:, tf.newaxis, :]  # (B, T, T)
        start_allowed = allowed[:, :, tf.newaxis]  # (B, T, 1)
    else:
        start_top_index = tf.cast(start_top_index, tf.int32)
        start_log_probs = tf.gather(tf.nn.log_softmax(start_logits), start_top_index,
                                    batch_dims=1)  # (B, K)
        end_log_probs = tf.nn.log_softmax(end_logits)  # (B, K, T)
        scores = start_log_probs[:, :, tf.newaxis] + end_log_probs  # (B, K, T)
        starts = tf.broadcast_to(start_top_index[:, :, tf.newaxis], tf.shape(scores))  # (B, K, T)
        start_allowed = tf.gather(allowed, start_top_index, batch_dims=1)[:, :, tf.newaxis]
    ends = positions[tf.newaxis, tf.newaxis, :]  # (1, 1, T)
    valid = (start_allowed & allowed[:, tf.newaxis, :] & (ends >= starts)
             & (ends - starts < max_answer_length))
    scores = tf.where(valid, scores, -np.inf)
    flat = tf.reshape(scores, [tf.shape(scores)[0], -1])  # (B, K·T) or (B, T·T)
    best = tf.argmax(flat, axis=-1, output_type=tf.int32)  # (B,)
    score = tf.reduce_max(flat, axis=-1)
    start_index = tf.gather(tf.reshape(starts, tf.shape(flat)), best, batch_dims=1)
    end_index = best % seq_length
    return start_index, end_index, score


def _top_indexes(values, n):
    """Indices of the n largest values, largest first (numpy)."""
    return np.argsort(-values, kind="stable")[:n]


def _log_softmax(values):
    values = values - np.max(values, axis=-1, keepdims=True)
    return values - np.log(np.sum(np.exp(values), axis=-1, keepdims=True))


def postprocess_predictions(features, outputs, n_best_size=DEFAULT_N_BEST_SIZE,
                            max_answer_length=DEFAULT_MAX_ANSWER_LENGTH, version_2=False,
                            null_score_threshold=0.0):
    """Answers for every example of `features` from the model's outputs on its windows.

    Args:
        features: `SquadFeatures` from `create_squad_features` (windows,
            token → character offsets, max-context flags, the examples).
        outputs: dict of numpy arrays, one row per window, as
            `ElectraQuestionAnswering.predict` returns them.
        n_best_size: start and end candidates kept per window (20).
        max_answer_length: longest answer, in word pieces (30).
        version_2: SQuAD 2.0: answer "" when the null score wins (see the module).
        null_score_threshold: how far the null score must beat the best span.

    Returns:
        {example id: {"answer": text, "start_char": int (-1 for ""), "score":
        span score, "null_score": float or None, "nbest": [{"text",
        "start_char", "score"}, ...]}}.
    """
    electra_head = "impossible_logits" in outputs
    num_windows = len(features.example_index)
    for name, value in outputs.items():
        if len(value) != num_windows:
            raise ValueError(
                f"outputs[{name!r}] has {len(value)} rows; expected one per window "
                f"({num_windows}). Predict on all of the features' windows, in order."
            )
    by_example = {}
    for window, example_index in enumerate(features.example_index):
        by_example.setdefault(int(example_index), []).append(window)

    results = {}
    for example_index, example in enumerate(features.examples):
        candidates, null_score = [], None
        for window in by_example.get(example_index, []):
            spans = features.token_char_spans[window]  # (T, 2), -1 outside the context
            max_context = features.token_is_max_context[window]
            start_logits = outputs["start_logits"][window]
            if electra_head:
                window_null = float(outputs["impossible_logits"][window])
                start_log_probs = _log_softmax(start_logits)
                pairs = []
                for k, start in enumerate(outputs["start_top_index"][window]):
                    end_log_probs = _log_softmax(outputs["end_logits"][window][k])
                    pairs += [(int(start), int(end), start_log_probs[start] + end_log_probs[end])
                              for end in _top_indexes(end_log_probs, n_best_size)]
            else:
                end_logits = outputs["end_logits"][window]
                window_null = float(start_logits[0] + end_logits[0])
                pairs = [(int(start), int(end), start_logits[start] + end_logits[end])
                         for start in _top_indexes(start_logits, n_best_size)
                         for end in _top_indexes(end_logits, n_best_size)]
            null_score = window_null if null_score is None else min(null_score, window_null)
            for start, end, score in pairs:
                if (spans[start, 0] < 0 or spans[end, 0] < 0 or end < start
                        or end - start + 1 > max_answer_length or not max_context[start]):
                    continue
                candidates.append((float(score), int(spans[start, 0]), int(spans[end, 1])))

        nbest, seen = [], set()
        for score, begin, finish in sorted(candidates, key=lambda c: -c[0]):
            if (begin, finish) in seen:
                continue
            seen.add((begin, finish))
            nbest.append({"text": example.context[begin:finish], "start_char": begin,
                          "score": score})
            if len(nbest) == n_best_size:
                break
        best = nbest[0] if nbest else {"text": "", "start_char": -1, "score": float("-inf")}
        answer = dict(best)
        if version_2 and null_score is not None:
            # The electra head's null score is a logit of its own; the huggingface head's
            # competes with span scores on one scale, as in BERT's run_squad.
            margin = null_score if electra_head else null_score - best["score"]
            if margin > null_score_threshold:
                answer = {"text": "", "start_char": -1, "score": best["score"]}
        results[example.id] = {
            "answer": answer["text"],
            "start_char": answer["start_char"],
            "score": answer["score"],
            "null_score": null_score,
            "nbest": nbest,
        }
    return results
