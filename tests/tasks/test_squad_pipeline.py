"""QA pipeline correctness: gold-span logits → features → post-processing → EM 100; it learns.

Acceptance "QA pipeline correctness" (issue 4): (a) logits that put a large
value at the gold start and end pieces of every window holding the answer
give EM 100 on the real five-question sample, also when every context spans
several windows; (b) fine-tuning a tiny encoder (the real uncased
vocabulary) on the sample drives training EM to 100 (the "huggingface" head is
trained through the CLI in tests/cli/test_qa_commands.py, the "electra"
head here).
"""

import json
import os

import numpy as np
import pytest

from conftest import packaged_squad_sample
from electra_tf.data.squad_dataset import SquadExample, create_squad_features, read_squad_file
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
from electra_tf.tasks.squad_metrics import squad_evaluate
from electra_tf.tasks.squad_postprocessing import postprocess_predictions

SAMPLE = packaged_squad_sample()
GOLD = 20.0  # the logit at gold positions; every other logit is noise in [0, 1)
WINDOWS = [(384, 128, 64), (64, 16, 24), (40, 8, 16)]  # max_seq_length, doc_stride, max_query


@pytest.fixture(scope="module")
def tokenizer():
    return ElectraTokenizer()


@pytest.fixture(scope="module")
def sample():
    return read_squad_file(SAMPLE)[0]


def gold_outputs(features, head, rng):
    """Model outputs, in the head's format, whose best span is the gold one in each window."""
    labels = features.labels
    windows, seq = features.inputs["input_word_ids"].shape
    start = rng.random((windows, seq), dtype=np.float32)
    end = rng.random((windows, seq), dtype=np.float32)
    holds = labels["is_impossible"] == 0
    start[holds, labels["start_positions"][holds]] = GOLD
    end[holds, labels["end_positions"][holds]] = GOLD
    if head == "huggingface":
        return {"start_logits": start, "end_logits": end}
    beam = 4  # the electra head: end logits for each of the top starts
    top = np.argsort(-start, axis=1)[:, :beam]
    return {"start_logits": start, "start_top_index": top,
            "end_logits": np.repeat(end[:, None], beam, axis=1),
            "impossible_logits": np.where(holds, -GOLD, GOLD).astype(np.float32)}


@pytest.mark.parametrize("head", ["huggingface", "electra"])
@pytest.mark.parametrize("window", WINDOWS, ids=lambda w: f"seq{w[0]}-stride{w[1]}")
def test_gold_span_logits_give_em_100(tokenizer, sample, head, window):
    max_seq_length, doc_stride, max_query_length = window
    features = create_squad_features(sample, tokenizer, max_seq_length=max_seq_length,
                                     doc_stride=doc_stride, max_query_length=max_query_length,
                                     training=True)
    counts = np.bincount(features.example_index)
    if max_seq_length < 384:
        assert counts.min() >= 3  # every context is longer than one window
    else:
        assert counts.max() == 1
    outputs = gold_outputs(features, head, np.random.default_rng(max_seq_length))
    results = postprocess_predictions(features, outputs)
    predictions = {key: value["answer"] for key, value in results.items()}
    assert squad_evaluate(sample, predictions) == {
        "exact_match": 100.0, "f1": 100.0, "total": 5, "missing": 0}
    assert predictions["5733b1da4776f4190066106b"] == "Father Julius Nieuwl"  # mid-word end
    for example in sample:  # the answer comes back at its character offset too
        assert results[example.id]["start_char"] == example.answers[0]["answer_start"]


def test_post_processing_respects_max_answer_length(tokenizer, sample):
    features = create_squad_features(sample, tokenizer, training=True)
    outputs = gold_outputs(features, "huggingface", np.random.default_rng(0))
    results = postprocess_predictions(features, outputs, max_answer_length=3)
    # "a golden statue of the Virgin Mary" is 7 pieces: the gold span is no longer allowed.
    answer = results["5733be284776f4190066117e"]["answer"]
    assert answer != "a golden statue of the Virgin Mary"
    assert len(tokenizer(answer).numpy()) <= 3
    assert results["5733b1da4776f41900661068"]["answer"] == "1882"  # 1 piece: unchanged


@pytest.mark.parametrize("head", ["huggingface", "electra"])
def test_squad_v2_null_answers(tokenizer, head):
    context = "ELECTRA was published in 2020 by Clark, Luong, Le and Manning."
    examples = [
        SquadExample("has", "When was ELECTRA published?", context,
                     [{"text": "2020", "answer_start": 25}]),
        SquadExample("none", "Who published BERT?", context, [], is_impossible=True),
    ]
    features = create_squad_features(examples, tokenizer, max_seq_length=48, max_query_length=16,
                                     training=True)
    outputs = gold_outputs(features, head, np.random.default_rng(1))
    if head == "huggingface":  # the null span ([CLS], [CLS]) wins for the unanswerable question
        outputs["start_logits"][1, 0] = outputs["end_logits"][1, 0] = GOLD
    results = postprocess_predictions(features, outputs, version_2=True)
    predictions = {key: value["answer"] for key, value in results.items()}
    assert predictions == {"has": "2020", "none": ""}
    assert squad_evaluate(examples, predictions, version_2=True)["exact_match"] == 100.0
    # A high threshold keeps the best non-null span instead.
    results = postprocess_predictions(features, outputs, version_2=True,
                                      null_score_threshold=1e6)
    assert results["none"]["answer"] != ""


def test_outputs_must_cover_every_window(tokenizer, sample):
    features = create_squad_features(sample, tokenizer, training=True)
    outputs = gold_outputs(features, "huggingface", np.random.default_rng(0))
    with pytest.raises(ValueError, match="one per window"):
        postprocess_predictions(features, {k: v[:-1] for k, v in outputs.items()})


def test_electra_head_finetuning_drives_training_em_to_100(tmp_path):
    import tf_keras as keras

    from electra_tf import ElectraEncoder
    from electra_tf.tasks.run_qa import QAConfig, run_qa

    keras.utils.set_random_seed(0)
    ElectraEncoder(vocab_size=30522, hidden_size=32, num_layers=2, num_heads=2,
                   intermediate_size=64, max_sequence_length=128,
                   dropout_rate=0.0).save_pretrained(str(tmp_path / "encoder"))
    summary = run_qa(QAConfig(
        encoder=str(tmp_path / "encoder"), train=SAMPLE, dev=SAMPLE, head="electra",
        output_dir=str(tmp_path / "run"), max_seq_length=128, doc_stride=64,
        max_query_length=32, batch_size=8, epochs=40, learning_rate=3e-3, layer_decay=1.0,
        beam_size=5, progress=False))
    assert summary["dev"]["exact_match"] == 100.0
    with open(tmp_path / "run" / "results.json") as f:
        assert json.load(f)["dev"]["f1"] == 100.0
    assert not (tmp_path / "run" / "model_hf").exists()  # no transformers class for this head


@pytest.mark.parametrize("source, name, split", [
    ("tfds:squad/v1.1", "squad/v1.1", "validation"),
    ("tfds:squad/v1.1[:500]", "squad/v1.1", "validation[:500]"),
    ("tfds:squad/v2.0[:10%]", "squad/v2.0", "validation[:10%]"),
])
def test_read_squad_passes_a_tfds_slice_to_the_split(monkeypatch, source, name, split):
    from electra_tf.tasks import run_qa

    calls = []
    monkeypatch.setattr(run_qa, "load_squad_tfds",
                        lambda name, split, errors: calls.append((name, split)) or ([], {}))
    run_qa.read_squad(source, "validation")
    assert calls == [(name, split)]
