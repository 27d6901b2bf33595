"""Electric's pseudo-log-likelihood scores, in one forward pass, and re-ranking by them.

    scores = score_texts(energy_model, ["the cat sat.", "the cat sad."])
    ranked = rerank(energy_model, [("q1", "the cat sat."), ("q1", "the cat sad.")])

A masked LM gives a sentence's pseudo-log-likelihood PLL(x) = Σ_t log p(x_t | x_\\t)
with one forward pass per token, each with that token masked (Salazar et al.
2020). Electric's energy model scores every token in context without masking:
p(x_t | x_\\t) ∝ exp(-E(x)_t), and since noise-contrastive training makes it
nearly self-normalised, PLL(x) ≈ Σ_t -E(x)_t (Clark et al. 2020, §3), one pass
for the whole sentence. Sums run over the word pieces of the text: [CLS],
[SEP] and padding are left out.
"""

import collections
import os

import numpy as np
import tensorflow as tf

from electra_tf.pretraining.electric_pretrainer import candidate_weights


def token_scores(energy_model, inputs, special_token_ids):
    """-E(x)_t for every scored token, 0 elsewhere: (batch, seq) float32.

    Args:
        energy_model: an `ElectraDiscriminator` trained by `ElectricPretrainer`
            (its `logits` are the energies).
        inputs: `{"input_word_ids", "input_mask", "input_type_ids"}`, (batch, seq).
        special_token_ids: ids not scored ([PAD], [CLS], [SEP]).

    Example:
    >>> from electra_tf.models.electra_discriminator import ElectraDiscriminator
    >>> model = ElectraDiscriminator.from_preset("tiny")
    >>> ids = tf.constant([[101, 2023, 102, 0]])
    >>> scores = token_scores(model, {"input_word_ids": ids, "input_mask": tf.cast(ids > 0, tf.int32),
    ...                               "input_type_ids": tf.zeros_like(ids)}, (0, 101, 102))
    >>> (scores.numpy()[0] != 0).tolist()
    [False, True, False, False]
    """
    energies = energy_model(inputs, training=False)["logits"]  # (B, T)
    weights = candidate_weights(tf.cast(inputs["input_word_ids"], tf.int32), inputs["input_mask"],
                                tuple(special_token_ids))  # (B, T)
    return -energies * weights


def score_texts(energy_model, texts, tokenizer=None, max_seq_length=128, batch_size=32):
    """Each text's pseudo-log-likelihood Σ_t -E(x)_t, in one forward pass per batch.

    Args:
        energy_model: an `ElectraDiscriminator` trained by `ElectricPretrainer`
            (a run's `discriminator/` directory, `ElectraDiscriminator.from_pretrained`).
        texts: a list of strings.
        tokenizer: an `ElectraTokenizer` (default: the packaged uncased one).
        max_seq_length: texts are cut to this many tokens, [CLS] and [SEP] included.
        batch_size: texts per forward pass.

    Returns:
        float64 array (len(texts),): higher is more likely.

    Raises:
        ValueError: for a text that is not a string, has no word pieces (empty
        or blank: nothing to score), or needs more than `max_seq_length` tokens
        with [CLS] and [SEP] (a cut text's score would rank it wrongly), naming
        the text's index; and for a `max_seq_length` beyond the model's positions.

    Example:
    >>> from electra_tf.models.electra_discriminator import ElectraDiscriminator
    >>> score_texts(ElectraDiscriminator.from_preset("tiny"), ["A text.", "Another one."]).shape
    (2,)
    """
    from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer

    if batch_size < 1 or max_seq_length < 3:
        raise ValueError(f"`batch_size` must be >= 1 and `max_seq_length` >= 3; received "
                         f"{batch_size} and {max_seq_length}.")
    if isinstance(texts, str):
        raise ValueError("`texts` must be a list of strings; received one string. Pass [text].")
    texts = list(texts)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"`texts[{index}]` must be a string; received {type(text).__name__} {text!r}.")
    positions = _max_positions(energy_model)
    if positions is not None and max_seq_length > positions:
        raise ValueError(f"`max_seq_length` is {max_seq_length}, but the model has {positions} positions; "
                         f"pass at most {positions}.")
    tokenizer = tokenizer or ElectraTokenizer()
    special = (tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id)
    ids = tokenizer(tf.constant(texts, tf.string, shape=(len(texts),)))  # (n, (pieces))
    for index, length in enumerate(ids.row_lengths().numpy()):
        if length == 0:
            raise ValueError(f"`texts[{index}]` ({texts[index]!r}) has no word pieces to score; "
                             "expected a non-empty text.")
        if length + 2 > max_seq_length:
            raise ValueError(f"`texts[{index}]` has {length} word pieces, {length + 2} tokens with [CLS] and "
                             f"[SEP], over `max_seq_length` {max_seq_length}: a cut text would be scored "
                             f"on part of it. Raise `max_seq_length` (--max-seq-length) to at least "
                             f"{length + 2}, or shorten the text.")
    scores = []
    for start in range(0, len(texts), batch_size):
        inputs = tokenizer.pack(ids[start:start + batch_size], max_seq_length)  # each (b, max_seq_length)
        scores.append(tf.reduce_sum(token_scores(energy_model, inputs, special), axis=-1).numpy())
    return np.concatenate(scores).astype(np.float64) if scores else np.zeros((0,))


def _max_positions(energy_model):
    encoder = getattr(energy_model, "encoder", None)
    return getattr(encoder, "max_sequence_length", None)


def read_candidates(path):
    """(group id, text) pairs from a file of `id<TAB>candidate` lines (blank lines skipped).

    Raises a ValueError naming the line for a line without a tab, an empty id
    or an empty candidate, and for a file with no candidates.
    """
    pairs = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if "\t" not in line:
                raise ValueError(f"{path}, line {number}: expected 'id<TAB>candidate text'; "
                                 f"received {line[:60]!r}.")
            group, text = line.split("\t", 1)
            if not group.strip() or not text.strip():
                raise ValueError(f"{path}, line {number}: expected a non-empty id and a non-empty candidate "
                                 f"text separated by a tab; received {line[:60]!r}.")
            pairs.append((group, text))
    if not pairs:
        raise ValueError(f"{path} has no candidates; expected 'id<TAB>candidate text' lines.")
    return pairs


def rerank(energy_model, candidates, tokenizer=None, max_seq_length=128, batch_size=32):
    """Candidates grouped by id, each group best first by Electric's pseudo-log-likelihood.

    Args:
        energy_model: see `score_texts`.
        candidates: (group id, text) pairs, e.g. an n-best list per utterance.
        tokenizer, max_seq_length, batch_size: see `score_texts`.

    Returns:
        An ordered dict: group id (in order of first appearance) → a list of
        (text, score), highest score first (ties keep the input order).

    Example:
    >>> from electra_tf.models.electra_discriminator import ElectraDiscriminator
    >>> ranked = rerank(ElectraDiscriminator.from_preset("tiny"), [("a", "x y"), ("b", "z"), ("a", "w")])
    >>> [(group, len(texts)) for group, texts in ranked.items()]
    [('a', 2), ('b', 1)]
    """
    scores = score_texts(energy_model, [text for _, text in candidates], tokenizer, max_seq_length,
                         batch_size)
    groups = collections.OrderedDict()
    for (group, text), score in zip(candidates, scores):
        groups.setdefault(group, []).append((text, float(score)))
    return collections.OrderedDict(
        (group, sorted(items, key=lambda item: -item[1])) for group, items in groups.items())


def load_energy_model(path):
    """The energy model of an Electric run: its `discriminator/` directory, or the run's directory."""
    from electra_tf.models.electra_discriminator import ElectraDiscriminator

    if os.path.isdir(os.path.join(path, "discriminator")):
        path = os.path.join(path, "discriminator")
    return ElectraDiscriminator.from_pretrained(path)
