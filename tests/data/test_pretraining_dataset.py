"""The text-corpus pipeline: packing, streaming plain and gzipped files, bad input, masking."""

import gzip
import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import DATA_ASSETS_DIR

from electra_tf.data.corpus_stats import CorpusStats
from electra_tf.data.pretraining_dataset import (
    batch_and_mask,
    make_pretraining_dataset,
    read_tfrecords,
    text_examples_dataset,
    write_tfrecords,
)

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIAL = dict(cls_token_id=CLS, sep_token_id=SEP, pad_token_id=PAD)
FIRST_WORD_ID = 10
T = 32


def word(doc, index):
    return f"d{doc}w{index}"


def tokenize(lines):
    """Stand-in tokenizer: whitespace words; 'd<doc>w<i>' -> 10 + 1000 * doc + i, else [UNK].

    Ids decode back to (document, position), so tests can check that examples
    keep each document's words together and in order.
    """
    words = tf.strings.split(lines)  # (n, None) ragged
    flat = words.flat_values
    known = tf.strings.regex_full_match(flat, r"d\d{1,3}w\d{1,3}")
    flat = tf.where(known, flat, "d0w0")
    doc = tf.strings.to_number(tf.strings.regex_replace(flat, r"^d(\d+)w\d+$", r"\1"), tf.int32)
    index = tf.strings.to_number(tf.strings.regex_replace(flat, r"^d\d+w(\d+)$", r"\1"), tf.int32)
    return words.with_flat_values(tf.where(known, FIRST_WORD_ID + 1000 * doc + index, UNK))


def make_documents(first_doc, num_docs, seed):
    """Documents as lists of lines; each line 1-20 words numbered within its document."""
    rng = np.random.default_rng(seed)
    documents = []
    for doc in range(first_doc, first_doc + num_docs):
        lines, count = [], 0
        for _ in range(rng.integers(1, 12)):
            length = int(rng.integers(1, 21))
            lines.append(" ".join(word(doc, count + i) for i in range(length)))
            count += length
        documents.append(lines)
    return documents


def write_corpus(path, documents, compress=False):
    text = "\n\n".join("\n".join(lines) for lines in documents) + "\n"
    opener = gzip.open if compress else open
    with opener(path, "wt", encoding="utf-8") as f:
        f.write(text)
    return path


def examples_of(dataset):
    return list(dataset.as_numpy_iterator())


def check_packing(example, max_seq_length=T):
    """[CLS] A [SEP] (B [SEP]) then padding; returns the word ids in order."""
    ids, mask, types = example["input_word_ids"], example["input_mask"], example["input_type_ids"]
    assert ids.shape == mask.shape == types.shape == (max_seq_length,)
    assert ids.dtype == mask.dtype == types.dtype == np.int32
    length = int(mask.sum())
    assert 3 <= length <= max_seq_length
    np.testing.assert_array_equal(mask, np.arange(max_seq_length) < length)
    assert ids[0] == CLS and ids[length - 1] == SEP
    assert (ids[length:] == PAD).all() and (types[length:] == 0).all()
    seps = np.flatnonzero(ids == SEP)
    assert len(seps) in (1, 2) and seps[-1] == length - 1
    expected_types = np.zeros(max_seq_length, np.int32)
    if len(seps) == 2:
        assert seps[0] >= 2 and seps[1] > seps[0] + 1  # A and B are non-empty
        expected_types[seps[0] + 1 : length] = 1
    np.testing.assert_array_equal(types, expected_types)
    words = np.delete(ids[:length], np.r_[0, seps])
    assert not np.isin(words, [PAD, CLS, SEP, MASK]).any()
    return words


def segments(example):
    """The word ids of A and of B (empty for a single segment)."""
    ids, length = example["input_word_ids"], example["input_mask"].sum()
    first_sep = np.flatnonzero(ids == SEP)[0]
    return ids[1:first_sep], ids[first_sep + 1 : length - 1]


def test_packs_documents_from_plain_and_gzipped_files(tmp_path):
    documents = make_documents(0, 30, seed=0) + make_documents(30, 30, seed=1)
    write_corpus(tmp_path / "a.txt", documents[:30])
    write_corpus(tmp_path / "b.txt.gz", documents[30:], compress=True)
    stats = CorpusStats()
    dataset = text_examples_dataset(
        str(tmp_path / "*"), tokenize, **SPECIAL, max_seq_length=T, seed=0, stats=stats
    )
    assert dataset.element_spec["input_word_ids"] == tf.TensorSpec((T,), tf.int32)
    examples = examples_of(dataset)

    docs_seen, two_segments = set(), 0
    for example in examples:
        words = check_packing(example)
        doc = (words - FIRST_WORD_ID) // 1000
        assert (doc == doc[0]).all(), "an example mixes documents"
        docs_seen.add(int(doc[0]))
        # Within a segment, words keep their order. (Across segments they need
        # not: as in the original, a short sentence after B has started can
        # still join A if it fits A's target length.)
        for segment in segments(example):
            assert (np.diff(segment) > 0).all(), "words out of order"
        two_segments += int((example["input_type_ids"] == 1).any())
    assert docs_seen == set(range(60))  # every document, from both files
    assert 0 < two_segments < len(examples)
    num_lines = sum(len(lines) + 1 for lines in documents)  # + the blank separators
    assert stats.files == 2 and stats.lines == num_lines - 2  # no blank after a file's last doc
    assert stats.examples == len(examples)
    assert stats.empty_files == stats.invalid_utf8_lines == stats.unreadable_files == 0


def test_packing_matches_the_original_recipe_on_a_long_document(tmp_path):
    # One long document of 5-word lines: examples fill up to T, the first segment
    # aims at (T - 3) // 2 tokens, ~10% are single-segment, ~5% target a short length.
    lines = [" ".join(word(1, 5 * i + j) for j in range(5)) for i in range(190)]
    write_corpus(tmp_path / "long.txt", [lines])
    examples = examples_of(
        text_examples_dataset(str(tmp_path / "long.txt"), tokenize, **SPECIAL,
                              max_seq_length=T, seed=3)
    )
    lengths = np.array([example["input_mask"].sum() for example in examples])
    assert (lengths[:-1] >= T - 4).mean() > 0.8  # most fill the sequence
    covered = np.concatenate([check_packing(example) for example in examples])
    # The original drops what overshoots a full example (here ~6 of 35 tokens).
    assert len(covered) >= 0.75 * 950


def test_same_seed_same_examples(tmp_path):
    write_corpus(tmp_path / "a.txt", make_documents(0, 20, seed=0))
    run = lambda seed: examples_of(
        text_examples_dataset(str(tmp_path / "a.txt"), tokenize, **SPECIAL,
                              max_seq_length=T, seed=seed)
    )
    first, again = run(5), run(5)
    assert len(first) == len(again)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a["input_word_ids"], b["input_word_ids"])


def test_bad_input_is_skipped_and_counted(tmp_path, caplog):
    good = make_documents(0, 4, seed=0)
    write_corpus(tmp_path / "good.txt", good)
    (tmp_path / "empty.txt").write_bytes(b"")
    with gzip.open(tmp_path / "empty.txt.gz", "wb"):
        pass  # a valid gzip stream with no content
    # Binary junk between good lines: invalid UTF-8 lines are dropped, good ones kept.
    (tmp_path / "mixed.txt").write_bytes(
        f"{word(7, 0)} {word(7, 1)}\n".encode()
        + b"\xff\xfe\x00\x81binary\x80\n"
        + os.urandom(64).replace(b"\n", b"") + b"\xff\n"
        + f"{word(7, 2)}\n".encode()
    )
    # A truncated gzip file: its readable prefix is used, then a warning.
    payload = gzip.compress(("\n".join(word(8, i % 1000) for i in range(3000)) + "\n").encode())
    (tmp_path / "truncated.txt.gz").write_bytes(payload[: len(payload) // 2])
    # One line of 30k characters: cut into pieces before tokenization.
    (tmp_path / "huge_line.txt").write_text(" ".join(word(9, i % 1000) for i in range(4000)))

    stats = CorpusStats()
    examples = examples_of(
        text_examples_dataset(str(tmp_path / "*"), tokenize, **SPECIAL, max_seq_length=T,
                              seed=0, stats=stats)
    )
    for example in examples:
        check_packing(example)
    docs = {int(w) for e in examples for w in (check_packing(e) - FIRST_WORD_ID) // 1000}
    assert docs >= {0, 1, 2, 3, 7, 8, 9}
    assert stats.files == 6 and stats.empty_files == 2
    assert stats.invalid_utf8_lines == 2 and stats.unreadable_files == 1 and stats.long_lines == 1
    assert "not valid UTF-8" in caplog.text and "truncated.txt.gz" in caplog.text


def test_long_sentence_is_split_not_dropped(tmp_path):
    write_corpus(tmp_path / "a.txt", [[" ".join(word(0, i) for i in range(100))]])
    examples = examples_of(
        text_examples_dataset(str(tmp_path / "a.txt"), tokenize, **SPECIAL, max_seq_length=T)
    )
    words = np.concatenate([check_packing(example) for example in examples])
    np.testing.assert_array_equal(np.sort(words), FIRST_WORD_ID + np.arange(100))


def test_clear_errors_for_missing_files_and_bad_tokenizers(tmp_path):
    pattern = str(tmp_path / "nothing-*.txt")
    with pytest.raises(ValueError, match="nothing-"):
        make_pretraining_dataset(pattern, tokenize, **SPECIAL, mask_token_id=MASK)
    write_corpus(tmp_path / "a.txt", make_documents(0, 2, seed=0))
    dense = lambda lines: tokenize(lines).to_tensor()
    with pytest.raises(ValueError, match="RaggedTensor"):
        text_examples_dataset(str(tmp_path / "a.txt"), dense, **SPECIAL)
    with pytest.raises(ValueError, match="max_seq_length"):
        text_examples_dataset(str(tmp_path / "a.txt"), tokenize, **SPECIAL, max_seq_length=3)


def test_the_short_id_names_of_earlier_versions_still_work_and_warn(tmp_path):
    write_corpus(tmp_path / "a.txt", make_documents(0, 8, seed=0))
    with pytest.deprecated_call(match=r"make_pretraining_dataset\(cls_id=...\) is deprecated"):
        dataset = make_pretraining_dataset(
            str(tmp_path / "a.txt"), tokenize, cls_id=CLS, sep_id=SEP, pad_id=PAD, mask_id=MASK,
            max_seq_length=T, batch_size=2, seed=0)
    assert dataset.element_spec["input_word_ids"].shape == (2, T)
    examples = text_examples_dataset(str(tmp_path / "a.txt"), tokenize, **SPECIAL,
                                     max_seq_length=T, seed=0)
    with pytest.deprecated_call(match=r"batch_and_mask\(mask_id=...\) is deprecated"):
        batch_and_mask(examples, batch_size=2, mask_id=MASK, special_ids=(CLS, SEP, PAD), seed=0)


def test_make_pretraining_dataset_batches_and_masks(tmp_path):
    write_corpus(tmp_path / "a.txt.gz", make_documents(0, 80, seed=2), compress=True)
    build = lambda: make_pretraining_dataset(
        str(tmp_path / "*.gz"), tokenize, **SPECIAL, mask_token_id=MASK, max_seq_length=T,
        batch_size=8, mask_rate=0.25, seed=0, shuffle_buffer=50, repeat=True,
    )
    dataset = build()
    num_slots = int((0.25 + 0.005) * T)  # 8
    spec = dataset.element_spec
    assert spec["input_word_ids"].shape == (8, T)
    assert spec["masked_lm_positions"].shape == (8, num_slots)
    assert spec["masked_lm_weights"].dtype == tf.float32
    for batch in dataset.take(40):  # more than one epoch
        batch = {name: value.numpy() for name, value in batch.items()}
        weights = batch["masked_lm_weights"] > 0
        positions = batch["masked_lm_positions"]
        original = batch["input_word_ids"].copy()
        np.put_along_axis(original, positions, np.where(weights, batch["masked_lm_ids"],
                          np.take_along_axis(original, positions, 1)), 1)
        for row in range(8):
            check_packing({"input_word_ids": original[row], "input_mask": batch["input_mask"][row],
                           "input_type_ids": batch["input_type_ids"][row]})
        assert (batch["masked_lm_ids"][weights] >= FIRST_WORD_ID).all()
        shown = np.take_along_axis(batch["input_word_ids"], positions, 1)[weights]
        assert np.isin(shown, [MASK]).mean() > 0.5

    # The same seed gives the same batches (a fresh dataset: re-iterating one
    # reshuffles, as every epoch should).
    first, again = next(iter(build())), next(iter(build()))
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])


def test_tfrecords_round_trip(tmp_path):
    write_corpus(tmp_path / "a.txt", make_documents(0, 20, seed=0))
    examples = text_examples_dataset(str(tmp_path / "a.txt"), tokenize, **SPECIAL,
                                     max_seq_length=T, seed=0)
    paths, count = write_tfrecords(examples, str(tmp_path / "shards" / "train"), num_shards=3)
    assert len(paths) == 3 and all(os.path.exists(path) for path in paths)
    expected = sorted(tuple(e["input_word_ids"]) for e in examples_of(examples))
    restored = examples_of(read_tfrecords(str(tmp_path / "shards" / "train-*"), T))
    assert count == len(expected) == len(restored)
    assert sorted(tuple(e["input_word_ids"]) for e in restored) == expected
    for example in restored:
        check_packing(example)
    with pytest.raises(ValueError, match="missing"):
        read_tfrecords(str(tmp_path / "missing-*"), T)


def test_real_corpus_with_a_wordpiece_tokenizer():
    import tensorflow_text as tf_text

    from electra_tf.preprocessing.electra_tokenizer import DEFAULT_VOCAB_PATH as vocab
    tokenizer = tf_text.BertTokenizer(vocab, lower_case=True, token_out_type=tf.int32)
    cls, sep, mask_token, pad = 101, 102, 103, 0  # [CLS], [SEP], [MASK], [PAD] in that file
    stats = CorpusStats()
    dataset = make_pretraining_dataset(
        os.path.join(DATA_ASSETS_DIR, "*.txt.gz"), tokenizer.tokenize,  # the two packaged novels
        cls_token_id=cls, sep_token_id=sep, pad_token_id=pad, mask_token_id=mask_token,
        max_seq_length=128,
        batch_size=16, seed=0, shuffle_buffer=200, stats=stats,
    )
    for batch in dataset.take(3):
        ids, mask = batch["input_word_ids"].numpy(), batch["input_mask"].numpy()
        assert ids.shape == (16, 128) and batch["masked_lm_positions"].shape == (16, 19)
        assert (ids[:, 0] == cls).all()
        lengths = mask.sum(-1)
        assert (ids[np.arange(16), lengths - 1] == sep).all()
        assert ((ids == pad) == (mask == 0)).all()
        weights = batch["masked_lm_weights"].numpy()
        assert (weights.sum(-1) >= 1).all()
        assert not np.isin(batch["masked_lm_ids"].numpy()[weights > 0],
                           [cls, sep, pad, mask_token]).any()
    assert stats.files >= 1 and stats.invalid_utf8_lines == 0
