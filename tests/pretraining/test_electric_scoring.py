"""Electric's scorer: the batched one-pass score equals its definition computed position by position."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from conftest import TINY

from electra_tf.cli.main import main
from electra_tf.models.electra_discriminator import ElectraDiscriminator
from electra_tf.models.electra_encoder import ElectraEncoder
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
from electra_tf.pretraining.electric_scoring import read_candidates, rerank, score_texts

WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "to", "park", "sad", "."]


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    tokens += [f"[unused{i}]" for i in range(TINY["vocab_size"] - len(tokens))]
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def energy_model():
    # Python's, NumPy's and TensorFlow's seeds: tf-keras draws unseeded initializers' seeds from
    # Python's `random`, so tf.random.set_seed alone left the weights to the tests that ran before.
    keras.utils.set_random_seed(3)
    # Weights of scale 0.5 rather than 0.02: energies of order 1, so the comparisons below bite.
    return ElectraDiscriminator(ElectraEncoder(**TINY, initializer_range=0.5))


def pll_by_definition(energy_model, tokenizer, text):
    """Σ over the text's word pieces t of -E(x)_t: one pass per position, unpadded, read at t."""
    pieces = tokenizer(tf.constant([text])).to_list()[0]
    ids = [tokenizer.cls_token_id] + pieces + [tokenizer.sep_token_id]
    total = 0.0
    for t in range(1, len(ids) - 1):  # [CLS] and [SEP] are not scored
        inputs = {"input_word_ids": tf.constant([ids]), "input_mask": tf.ones((1, len(ids)), tf.int32),
                  "input_type_ids": tf.zeros((1, len(ids)), tf.int32)}
        energy_t = float(energy_model(inputs)["logits"][0, t])
        total += -energy_t
    return total


def test_score_is_the_sum_of_negative_energies_position_by_position(energy_model, vocab):
    tokenizer = ElectraTokenizer(vocab_path=vocab)
    texts = ["The cat sat on the mat.", "A dog ran.", "the", "The dog ran to the park . the cat sat"]
    # Batches of two, padded to 16: padding and batch-mates must not change a text's score.
    scores = score_texts(energy_model, texts, tokenizer, max_seq_length=16, batch_size=2)
    expected = [pll_by_definition(energy_model, tokenizer, text) for text in texts]
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    assert scores.dtype == np.float64 and np.abs(scores).min() > 0.1 and len(set(np.round(scores, 3))) == 4


def test_rerank_orders_each_group_by_score(energy_model, vocab):
    tokenizer = ElectraTokenizer(vocab_path=vocab)
    candidates = [("u1", "the cat sat"), ("u2", "a dog ran"), ("u1", "the cat sad"), ("u1", "cat the sat"),
                  ("u2", "a dog ran to the park")]
    ranked = rerank(energy_model, candidates, tokenizer, max_seq_length=16)
    assert list(ranked) == ["u1", "u2"]
    for group, items in ranked.items():
        texts = [text for g, text in candidates if g == group]
        scores = dict(zip(texts, score_texts(energy_model, texts, tokenizer, max_seq_length=16)))
        assert sorted(text for text, _ in items) == sorted(texts)
        assert [score for _, score in items] == sorted(scores.values(), reverse=True)


def test_score_cli_ranks_a_candidate_file(energy_model, vocab, tmp_path, capsys):
    model_dir = tmp_path / "run" / "discriminator"
    energy_model.save_pretrained(str(model_dir))
    candidates = tmp_path / "nbest.tsv"
    candidates.write_text("u1\tthe cat sat\nu1\tcat sat the the\n\nu2\ta dog ran\n", encoding="utf-8")
    output = tmp_path / "ranked.tsv"
    assert main(["score", "--model", str(tmp_path / "run"), "--input", str(candidates), "--output", str(output),
                 "--vocab", vocab, "--max-seq-length", "16"]) == 0
    rows = [line.split("\t") for line in output.read_text(encoding="utf-8").splitlines()]
    assert [(row[0], row[1]) for row in rows] == [("u1", "1"), ("u1", "2"), ("u2", "1")]
    u1 = score_texts(energy_model, ["the cat sat", "cat sat the the"], ElectraTokenizer(vocab_path=vocab),
                     max_seq_length=16)
    assert float(rows[0][2]) == pytest.approx(max(u1), abs=1e-4)
    assert rows[0][3] == ["the cat sat", "cat sat the the"][int(np.argmax(u1))]

    bad = tmp_path / "bad.tsv"
    bad.write_text("no tab here\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1: expected 'id<TAB>candidate text'"):
        read_candidates(str(bad))
    assert main(["score", "--model", str(model_dir), "--input", str(bad), "--vocab", vocab]) == 2
    assert "electra-tf score: error:" in capsys.readouterr().err


def test_texts_that_cannot_be_scored_whole_are_refused_by_index(energy_model, vocab):
    tokenizer = ElectraTokenizer(vocab_path=vocab)
    with pytest.raises(ValueError, match=r"`texts\[1\]` \(' '\) has no word pieces"):
        score_texts(energy_model, ["the cat sat", " "], tokenizer, max_seq_length=16)
    # 6 pieces + [CLS] + [SEP] = 8 tokens: scored whole at 8, refused at 7 rather than cut
    assert score_texts(energy_model, ["a dog ran to the park"], tokenizer, max_seq_length=8).shape == (1,)
    with pytest.raises(ValueError, match=r"`texts\[0\]` has 6 word pieces, 8 tokens .* at least 8"):
        score_texts(energy_model, ["a dog ran to the park"], tokenizer, max_seq_length=7)
    with pytest.raises(ValueError, match=r"`texts\[0\]` must be a string; received NoneType"):
        score_texts(energy_model, [None], tokenizer)
    positions = energy_model.encoder.max_sequence_length
    with pytest.raises(ValueError, match=f"the model has {positions} positions"):
        score_texts(energy_model, ["the cat"], tokenizer, max_seq_length=positions + 1)


@pytest.mark.parametrize("content, expected", [
    ("u1\t\n", r"line 1: expected a non-empty id and a non-empty candidate"),
    ("u1\tthe cat\n\t a dog\n", r"line 2: expected a non-empty id"),
    ("\n\n", r"has no candidates"),
])
def test_candidate_files_without_candidates_are_refused_by_line(tmp_path, content, expected):
    path = tmp_path / "nbest.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=expected):
        read_candidates(str(path))


def test_a_failed_score_run_leaves_an_earlier_ranking_whole(energy_model, vocab, tmp_path):
    model_dir = tmp_path / "discriminator"
    energy_model.save_pretrained(str(model_dir))
    output = tmp_path / "ranked.tsv"
    output.write_text("earlier ranking\n", encoding="utf-8")
    candidates = tmp_path / "nbest.tsv"
    candidates.write_text("u1\tthe cat sat on the mat\n", encoding="utf-8")
    assert main(["score", "--model", str(model_dir), "--input", str(candidates), "--output", str(output),
                 "--vocab", vocab, "--max-seq-length", "4"]) == 2  # too long: refused
    assert output.read_text(encoding="utf-8") == "earlier ranking\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["discriminator", "nbest.tsv", "ranked.tsv"]
