"""`electra-tf finetune|evaluate|predict classify` end to end on a tiny encoder."""

import json
import os

import numpy as np
import pytest

from electra_tf import ElectraEncoder
from electra_tf.cli.main import main

WORDS = ["good", "great", "fine", "bad", "awful", "dull", "film", "plot", "the", "was", "."]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS


def rows(count, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        label = int(rng.integers(0, 2))
        word = rng.choice(WORDS[:3] if label else WORDS[3:6])
        out.append((["negative", "positive"][label], f"the film was {word} ."))
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("classify")
    encoder = ElectraEncoder(vocab_size=len(VOCAB), hidden_size=16, num_layers=2, num_heads=2,
                             intermediate_size=32, max_sequence_length=16, dropout_rate=0.0)
    encoder.save_pretrained(str(root / "encoder"))
    (root / "encoder" / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    for name, count, seed in (("train", 32, 0), ("dev", 12, 1)):
        (root / f"{name}.tsv").write_text(
            "label\ttext\n" + "".join(f"{label}\t{text}\n" for label, text in rows(count, seed)))
    code = main(["finetune", "classify", "--encoder", str(root / "encoder"),
                 "--train", str(root / "train.tsv"), "--dev", str(root / "dev.tsv"),
                 "--label-names", "negative,positive", "--output-dir", str(root / "out"),
                 "--max-seq-length", "10", "--batch-size", "8", "--epochs", "2",
                 "--learning-rate", "3e-3", "--log-every", "2", "--no-progress"])
    assert code == 0
    return root


def test_finetune_writes_tensorboard_logs_learning_curves_and_task_files(run):
    out = run / "out"
    assert os.listdir(out / "logs" / "train")
    assert (out / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    header = (out / "history.csv").read_text().split("\n")[0].split(",")
    assert {"step", "loss", "accuracy", "learning_rate"} <= set(header)
    with open(out / "model" / "task.json") as f:
        task = json.load(f)
    assert task["label_names"] == ["negative", "positive"] and task["max_seq_length"] == 10
    with open(out / "results.json") as f:
        results = json.load(f)
    assert set(results["dev"]) == {"accuracy", "f1", "matthews_correlation"}
    assert len(results["history"]["loss"]) == 2


def test_evaluate_prints_metrics_and_json(run, capsys):
    capsys.readouterr()
    # The run directory (OUTPUT_DIR) names its model/ too.
    assert main(["evaluate", "classify", "--model", str(run / "out"),
                 "--data", str(run / "dev.tsv"), "--output", str(run / "metrics.json")]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads(printed.strip().split("\n")[-1])
    assert f"accuracy: {metrics['accuracy']:.4f}" in printed
    assert metrics["examples"] == 12
    with open(run / "metrics.json") as f:
        assert json.load(f) == metrics
    with open(run / "out" / "results.json") as f:  # the same model and data as after training
        assert metrics["accuracy"] == json.load(f)["dev"]["accuracy"]
    # `predict classify` on the dev texts agrees with the accuracy `evaluate` reports.
    dev = rows(12, seed=1)
    (run / "dev.txt").write_text("".join(f"{text}\n" for _, text in dev))
    # OUTPUT_DIR/classifier, where earlier versions wrote the model, still finds it.
    with pytest.warns(DeprecationWarning, match="now write their model to OUTPUT/model"):
        assert main(["predict", "classify", "--model", str(run / "out" / "classifier"),
                     "--input", str(run / "dev.txt"), "--output",
                     str(run / "dev_pred.jsonl")]) == 0
    predicted = [json.loads(line)["label"] for line in
                 (run / "dev_pred.jsonl").read_text().splitlines()]
    assert metrics["accuracy"] == pytest.approx(
        np.mean([p == label for p, (label, _) in zip(predicted, dev)]))


def test_predict_text_and_json_lines(run, capsys):
    (run / "input.txt").write_text("the plot was awful .\n\nthe film was great .\n")
    assert main(["predict", "classify", "--model", str(run / "out" / "model"),
                 "--input", str(run / "input.txt"), "--output", str(run / "pred.jsonl")]) == 0
    predictions = [json.loads(line) for line in (run / "pred.jsonl").read_text().splitlines()]
    assert len(predictions) == 2 and predictions[0]["text"] == "the plot was awful ."
    for prediction in predictions:  # the label is the most probable class
        probabilities = prediction["probabilities"]
        assert prediction["label"] == max(probabilities, key=probabilities.get)
    assert sum(predictions[1]["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    (run / "input.jsonl").write_text(json.dumps({"text": "the film was dull ."}) + "\n")
    capsys.readouterr()
    assert main(["predict", "classify", "--model", str(run / "out" / "model"),
                 "--input", str(run / "input.jsonl")]) == 0
    assert json.loads(capsys.readouterr().out)["label"] in ("negative", "positive")


def test_bad_inputs_exit_2_with_a_clear_message(run, capsys):
    model = str(run / "out" / "model")
    (run / "bad.tsv").write_text("label\ttext\nneutral\tthe film .\n")
    assert main(["evaluate", "classify", "--model", model, "--data", str(run / "bad.tsv")]) == 2
    assert "bad.tsv:2: label 'neutral' is not one of ['negative', 'positive']" in (
        capsys.readouterr().err)
    (run / "cols.tsv").write_text("label\tsentence\npositive\tgood\n")
    assert main(["evaluate", "classify", "--model", model, "--data", str(run / "cols.tsv")]) == 2
    assert "no column(s) ['text']" in capsys.readouterr().err
    (run / "pair.jsonl").write_text('{"text": "good", "text_b": "bad"}\n')
    assert main(["predict", "classify", "--model", model, "--input",
                 str(run / "pair.jsonl")]) == 2
    assert "\"text_b\" (a sentence pair) is not used" in capsys.readouterr().err
    (run / "broken.jsonl").write_text('{"text": "good"}\n{oops\n')
    assert main(["predict", "classify", "--model", model, "--input",
                 str(run / "broken.jsonl")]) == 2
    assert "broken.jsonl:2: not valid JSON" in capsys.readouterr().err
    assert main(["predict", "classify", "--model", str(run / "out" / "missing"), "--input",
                 str(run / "input.txt")]) == 2
