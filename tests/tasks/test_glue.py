"""`run_glue` end to end on every GLUE task, offline with TFDS' mock data."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from electra_tf.models.electra_encoder import ElectraEncoder
from electra_tf.tasks.glue_metrics import GLUE_TASKS, median_over_seeds, metric_names
from electra_tf.tasks.run_glue import (
    GlueConfig,
    encoder_hidden_size,
    format_glue_summary,
    glue_hyperparameters,
    run_glue,
)

# Mock GLUE texts are random lowercase letters and spaces; these pieces cover them.
LETTERS = "abcdefghij"
VOCAB = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(LETTERS)
         + ["##" + letter for letter in LETTERS])
SUBMISSIONS = {
    "cola": ["CoLA.tsv"], "sst2": ["SST-2.tsv"], "mrpc": ["MRPC.tsv"], "stsb": ["STS-B.tsv"],
    "qqp": ["QQP.tsv"], "mnli": ["MNLI-m.tsv", "MNLI-mm.tsv", "AX.tsv"], "qnli": ["QNLI.tsv"],
    "rte": ["RTE.tsv"], "wnli": ["WNLI.tsv"],
}
LABELS = {"mnli": {"entailment", "neutral", "contradiction"},
          "qnli": {"entailment", "not_entailment"}, "rte": {"entailment", "not_entailment"}}
NUM_EXAMPLES = 8


@pytest.fixture(scope="module", autouse=True)
def eager_keras_functions():
    """Keras' train and predict functions run eagerly here: for 8 examples, tracing them
    costs more than running them (tests/tasks/test_run_finetuning.py covers the graphs)."""
    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("glue") / "encoder")
    encoder = ElectraEncoder(vocab_size=len(VOCAB), hidden_size=8, num_layers=1, num_heads=2,
                             intermediate_size=16, embedding_size=8, max_sequence_length=16)
    encoder.save_pretrained(path)
    with open(os.path.join(path, "vocab.txt"), "w") as f:
        f.write("\n".join(VOCAB) + "\n")
    return path


def tiny_config(task, encoder_dir, output_dir, **overrides):
    options = dict(task=task, encoder=encoder_dir, output_dir=str(output_dir), epochs=1,
                   batch_size=8, max_seq_length=16, progress=False, log_every=1)
    options.update(overrides)
    return GlueConfig(**options)


def read_submission(path):
    with open(path) as f:
        lines = f.read().splitlines()
    return lines[0], [line.split("\t") for line in lines[1:]]


@pytest.mark.parametrize("task", GLUE_TASKS)
def test_every_task_end_to_end(task, encoder_dir, tmp_path):
    # MRPC runs two seeds (median and best-seed submission); one seed elsewhere, for time.
    seeds = 2 if task == "mrpc" else 1
    with tfds.testing.mock_data(num_examples=NUM_EXAMPLES):
        summary = run_glue(tiny_config(task, encoder_dir, tmp_path / "out", seeds=seeds))
    assert [run["seed"] for run in summary["seeds"]] == list(range(seeds))
    per_seed = [run["metrics"] for run in summary["seeds"]]
    for metrics in per_seed:
        assert sorted(metrics) == sorted(metric_names(task))
        assert all(np.isfinite(value) for value in metrics.values())
    for name in metric_names(task):
        assert summary["median"][name] == pytest.approx(np.median([m[name] for m in per_seed]))
    assert summary["median"] == median_over_seeds(per_seed)
    scores = [np.mean(list(metrics.values())) for metrics in per_seed]
    assert summary["submission"]["seed"] == int(np.argmax(scores))  # ties: the lower seed
    # Defaults resolved: hidden size 8 is no ELECTRA size → Base's rate and decay.
    assert summary["hyperparameters"]["learning_rate"] == 1e-4
    assert summary["hyperparameters"]["layer_decay"] == 0.8
    assert summary["hyperparameters"]["epochs"] == 1  # the override
    assert summary["hyperparameters"]["weight_decay"] == 0.0
    with open(tmp_path / "out" / "results.json") as f:
        assert json.load(f) == json.loads(json.dumps(summary))
    for seed in range(seeds):
        assert os.path.isdir(tmp_path / "out" / f"seed_{seed}" / "model")
        with open(tmp_path / "out" / f"seed_{seed}" / "results.json") as f:
            seed_results = json.load(f)
        assert seed_results["config"]["seed"] == seed
        assert seed_results["train_examples"] == NUM_EXAMPLES
        assert seed_results["config"]["weight_decay"] == 0.0

    files = sorted(os.listdir(tmp_path / "out" / "submission"))
    assert files == sorted(SUBMISSIONS[task])
    assert [os.path.basename(path) for path in summary["submission"]["files"]] == SUBMISSIONS[task]
    for name in files:
        header, rows = read_submission(tmp_path / "out" / "submission" / name)
        assert header == "index\tprediction"
        assert len(rows) == NUM_EXAMPLES and all(len(row) == 2 for row in rows)
        indices = [int(index) for index, _ in rows]
        assert indices == sorted(indices)
        predictions = [prediction for _, prediction in rows]
        if task == "stsb":
            for prediction in predictions:
                assert 0.0 <= float(prediction) <= 5.0
                assert len(prediction.split(".")[1]) == 3
        else:
            assert set(predictions) <= LABELS.get(task, {"0", "1"})
    table = format_glue_summary(summary)
    assert f"{seeds} seed(s)" in table and "median" in table


def test_bad_input():
    with pytest.raises(ValueError, match="cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli"):
        GlueConfig(task="sst-2", encoder="x")
    with pytest.raises(ValueError, match="`seeds` must be >= 1.*received 0"):
        GlueConfig(task="rte", encoder="x", seeds=0)
    with pytest.raises(ValueError, match="needs `encoder`"):
        GlueConfig(task="rte")


def test_paper_hyperparameters_by_model_size(caplog):
    assert glue_hyperparameters("cola", 256) == {
        "model_size": "small", "learning_rate": 3e-4, "layer_decay": 0.8, "epochs": 3}
    assert glue_hyperparameters("stsb", 768) == {
        "model_size": "base", "learning_rate": 1e-4, "layer_decay": 0.8, "epochs": 10}
    assert glue_hyperparameters("rte", 1024)["layer_decay"] == 0.9
    assert glue_hyperparameters("qqp", 1024)["learning_rate"] == 5e-5
    with caplog.at_level("INFO", logger="electra_tf.tasks.run_glue"):
        assert glue_hyperparameters("sst2", 384)["model_size"] == "base"
    assert "384" in caplog.text


def test_encoder_hidden_size_from_config_files(tmp_path, encoder_dir):
    assert encoder_hidden_size(encoder_dir) == 8
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text(json.dumps(
        {"model_type": "electra", "embedding_size": 128, "hidden_size": 256}))
    assert encoder_hidden_size(str(tmp_path / "hf")) == 256
    (tmp_path / "ours").mkdir()
    (tmp_path / "ours" / "config.json").write_text(json.dumps(
        {"class_name": "ElectraDiscriminator",
         "config": {"encoder": {"config": {"hidden_size": 1024}}}}))
    assert encoder_hidden_size(str(tmp_path / "ours")) == 1024
