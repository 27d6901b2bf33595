"""Augmented text for task distillation: more inputs for the teacher to label.

A pruned or smaller student matches its teacher better when it also learns
the teacher's predictions on text near the training examples, not only on
the examples themselves (Tang et al. 2019, "Distilling Task-Specific
Knowledge from BERT into Simple Neural Networks"; TinyBERT, Jiao et al.
2020). Each augmented copy of a training text is made at the word-piece level:

- each word that is a single word piece is, with `mask_prob`, replaced by
  [MASK], else, with `swap_prob`, by one of its `num_neighbours` nearest words
  in the model's own word-embedding table (TinyBERT uses GloVe neighbours; the
  table is at hand and needs no download);
- then, with `crop_prob`, the copy is cut to a random span of 1 to
  `max_span` pieces (Tang et al.'s n-gram sampling: sentiment lives in phrases).

Neighbours in an embedding table are often antonyms ("good" → "bad"), so an
augmented text has no trustworthy label: it gets label -1, which
`distillation_loss` leaves out of the hard-label term. Train on such data
with the teacher's soft targets (`ElectraDistiller`, or `prune_classifier`
with a `teacher`).

Measured here (README, Compression): pruning MiniLM's sentiment classifier to
50% lost 0.84 points with 3 copies per review, but 0.37 in one run of the same
1,000 steps on the reviews alone, so the copies are an option to measure on
your data, not a sure gain.

    data = augmented_distillation_dataset(train_examples, tokenizer, classifier, copies=3)
    pruned, _ = prune_classifier(classifier, data, steps_per_epoch=1000, teacher=classifier, alpha=1.0)
"""

import numpy as np
import tensorflow as tf

from electra_tf.models.electra_encoder import INPUT_KEYS
from electra_tf.utils.checks import is_integer
from electra_tf.utils.renamed_arguments import renamed_arguments

UNLABELLED = -1


def embedding_neighbours(embedding_table, tokens, token_ids, num_neighbours=8):
    """The nearest whole words (cosine similarity) of each id in `token_ids`.

    Args:
        embedding_table: (vocab_size, width) float array, e.g. the encoder's
            word embeddings.
        tokens: the vocabulary, `vocab_size` strings; candidates are the
            alphabetic tokens that are neither "##" continuations nor
            bracketed specials such as [MASK].
        token_ids: the ids to find neighbours for; ids that are not
            candidates themselves get none.
        num_neighbours: neighbours per id, the id itself excluded.

    Returns:
        `{id: int32 array (num_neighbours,)}`, nearest first.

    >>> table = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    >>> neighbours = embedding_neighbours(table, ["good", "great", "plot", "##s"], [0, 3], 1)
    >>> {k: v.tolist() for k, v in neighbours.items()}
    {0: [1]}
    """
    table = np.asarray(embedding_table, np.float32)
    if table.ndim != 2 or table.shape[0] != len(tokens):
        raise ValueError(
            f"`embedding_table` must be (vocab_size, width) with vocab_size = len(tokens) = "
            f"{len(tokens)}; received shape {table.shape}."
        )
    if not is_integer(num_neighbours) or num_neighbours < 1:
        raise ValueError(f"`num_neighbours` must be a positive integer; received {num_neighbours!r}.")
    is_word = np.array([t.isalpha() and not t.startswith("##") for t in tokens])
    candidates = np.nonzero(is_word)[0]  # (C,)
    if len(candidates) <= num_neighbours:
        raise ValueError(
            f"The vocabulary has {len(candidates)} whole words; `num_neighbours` must be fewer; "
            f"received {num_neighbours}."
        )
    normed = table / np.maximum(np.linalg.norm(table, axis=1, keepdims=True), 1e-12)
    queries = np.array([i for i in np.unique(token_ids) if is_word[i]], np.int64)
    neighbours = {}
    for start in range(0, len(queries), 2048):
        chunk = queries[start:start + 2048]  # (Q,)
        similarity = normed[chunk] @ normed[candidates].T  # (Q, C)
        similarity[candidates[None, :] == chunk[:, None]] = -np.inf  # not the word itself
        nearest = np.argpartition(-similarity, num_neighbours, axis=1)[:, :num_neighbours]
        order = np.take_along_axis(-similarity, nearest, axis=1).argsort(axis=1)
        nearest = np.take_along_axis(nearest, order, axis=1)  # (Q, num_neighbours), nearest first
        for row, token_id in enumerate(chunk):
            neighbours[int(token_id)] = candidates[nearest[row]].astype(np.int32)
    return neighbours


@renamed_arguments(mask_id="mask_token_id")
def augment_ids(ids, neighbours, is_continuation, mask_token_id, rng, mask_prob=0.1,
                swap_prob=0.3, crop_prob=0.25, max_span=8):
    """One augmented copy of a text's word-piece ids (special tokens excluded).

    Args:
        ids: the text's piece ids, without [CLS]/[SEP]/padding.
        neighbours: `embedding_neighbours`' dict; words without an entry are
            never swapped or masked.
        is_continuation: bool array over the vocabulary, True for "##" pieces:
            a word followed by one is split into pieces and is left alone.
        mask_token_id: the id of [MASK] (`mask_id` in earlier versions).
        rng: a `np.random.Generator`.
        mask_prob, swap_prob: per single-piece word, the chance of [MASK] and
            of a random neighbour.
        crop_prob: the chance of keeping only a random span of 1 to
            `max_span` pieces.

    Returns:
        A list of ids.

    >>> rng = np.random.default_rng(0)
    >>> augment_ids([5, 6], {5: np.array([7])}, np.zeros(10, bool), 9, rng, mask_prob=0.0,
    ...             swap_prob=1.0, crop_prob=0.0)
    [7, 6]
    """
    for name, p in (("mask_prob", mask_prob), ("swap_prob", swap_prob), ("crop_prob", crop_prob)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"`{name}` must be in [0, 1]; received {p!r}.")
    if mask_prob + swap_prob > 1.0:
        raise ValueError(
            f"`mask_prob + swap_prob` must be at most 1; received {mask_prob} + {swap_prob}.")
    ids = [int(i) for i in ids]
    out = []
    for position, token_id in enumerate(ids):
        next_id = ids[position + 1] if position + 1 < len(ids) else None
        single_piece = token_id in neighbours and (next_id is None or not is_continuation[next_id])
        u = rng.random()
        if single_piece and u < mask_prob:
            out.append(mask_token_id)
        elif single_piece and u < mask_prob + swap_prob:
            out.append(int(rng.choice(neighbours[token_id])))
        else:
            out.append(token_id)
    if len(out) > 1 and rng.random() < crop_prob:
        span = int(rng.integers(1, min(max_span, len(out)) + 1))
        start = int(rng.integers(0, len(out) - span + 1))
        out = out[start:start + span]
    return out


def augmented_distillation_dataset(
    examples,
    tokenizer,
    classifier,
    copies=3,
    max_seq_length=64,
    batch_size=32,
    seed=0,
    num_neighbours=8,
    mask_prob=0.1,
    swap_prob=0.3,
    crop_prob=0.25,
    max_span=8,
):
    """The training texts plus `copies` augmented copies of each, shuffled and batched.

    Args:
        examples: `{"text": [...], "label": [...]}` of single texts with int
            labels, as `read_classification_file` returns them.
        tokenizer: the `ElectraTokenizer` of `classifier`.
        classifier: the (teacher) `ElectraClassifier`, whose word embeddings
            give the neighbours.
        copies: augmented copies per text (0: the texts only).
        max_seq_length: texts are truncated to this many pieces, specials
            included.
        batch_size: examples per batch; each batch is padded only to its
            longest text.
        seed: seeds the augmentation and the shuffle.
        num_neighbours, mask_prob, swap_prob, crop_prob, max_span: see
            `embedding_neighbours` and `augment_ids`.

    Returns:
        An endless tf.data.Dataset of `(features, labels)`: features int32
        `(batch, longest)`, labels int32 `(batch,)`, -1 for augmented texts.

    >>> from electra_tf import ElectraEncoder
    >>> from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
    >>> from electra_tf.tasks.electra_classifier import ElectraClassifier
    >>> encoder = ElectraEncoder(vocab_size=30522, hidden_size=8, num_layers=1, num_heads=2,
    ...                          intermediate_size=16)
    >>> classifier = ElectraClassifier(encoder, num_classes=2)
    >>> data = augmented_distillation_dataset({"text": ["A fine film."], "label": [1]},
    ...                                       ElectraTokenizer(), classifier, copies=1, batch_size=2)
    >>> features, labels = next(iter(data))
    >>> features["input_word_ids"].shape[0], sorted(labels.numpy().tolist())
    (2, [-1, 1])
    """
    missing = [key for key in ("text", "label") if key not in examples]
    if missing or "text_b" in examples:
        raise ValueError(
            "Augmentation takes single texts: `examples` with keys 'text' and 'label' and no "
            f"'text_b'; received keys {sorted(examples)}."
        )
    if not examples["text"] or len(examples["text"]) != len(examples["label"]):
        raise ValueError(
            f"`examples` needs as many labels as texts, at least one; received "
            f"{len(examples['text'])} texts and {len(examples['label'])} labels."
        )
    labels = np.asarray(examples["label"])
    if not np.issubdtype(labels.dtype, np.integer) or labels.ndim != 1 or labels.min() < 0:
        raise ValueError(
            "Augmentation needs single-label class ids (ints >= 0); received labels of dtype "
            f"{labels.dtype} and shape {labels.shape}."
        )
    if not is_integer(copies) or copies < 0:
        raise ValueError(f"`copies` must be an integer >= 0; received {copies!r}.")
    if max_seq_length < 3:
        raise ValueError(f"`max_seq_length` must be at least 3; received {max_seq_length!r}.")
    if tokenizer.vocab_size != classifier.encoder.vocab_size:
        raise ValueError(
            f"The tokenizer has {tokenizer.vocab_size} tokens but the classifier's encoder "
            f"{classifier.encoder.vocab_size}."
        )
    rng = np.random.default_rng(seed)
    packed = tokenizer.pack([tokenizer.tokenize(tf.constant(list(examples["text"])))],
                            max_seq_length)
    word_ids = packed["input_word_ids"].numpy()  # (N, max_seq_length)
    lengths = packed["input_mask"].numpy().sum(axis=1)  # (N,), [CLS] and [SEP] included
    texts = [word_ids[row, 1:length - 1] for row, length in enumerate(lengths)]

    tokens = [tokenizer.id_to_token(i) for i in range(tokenizer.vocab_size)]
    is_continuation = np.array([t.startswith("##") for t in tokens])
    table = classifier.encoder.embedding_layer.word_embeddings.numpy()  # (V, E)
    neighbours = embedding_neighbours(table, tokens, word_ids[word_ids > 0], num_neighbours)

    rows, row_labels = list(texts), labels.astype(np.int32).tolist()
    for _ in range(copies):
        for ids in texts:
            rows.append(augment_ids(ids, neighbours, is_continuation, tokenizer.mask_token_id, rng,
                                    mask_prob, swap_prob, crop_prob, max_span))
            row_labels.append(UNLABELLED)
    rows = [[tokenizer.cls_token_id, *ids, tokenizer.sep_token_id] for ids in rows]

    data = tf.data.Dataset.from_tensor_slices(
        (tf.ragged.constant(rows, dtype=tf.int32), np.asarray(row_labels, np.int32)))
    data = data.shuffle(len(rows), seed=seed, reshuffle_each_iteration=True).repeat()

    def to_features(ids, batch_labels):
        input_word_ids = ids.to_tensor(tokenizer.pad_token_id)  # (B, longest)
        features = {
            "input_word_ids": input_word_ids,
            "input_mask": tf.cast(tf.ones_like(ids).to_tensor(0), tf.int32),
            "input_type_ids": tf.zeros_like(input_word_ids),
        }
        return {key: features[key] for key in INPUT_KEYS}, batch_labels

    return data.batch(batch_size).map(to_features).prefetch(tf.data.AUTOTUNE)
