"""`electra-tf finetune|evaluate|predict tag` end to end on a tiny encoder and tiny CoNLL files."""

import json
import os

import numpy as np
import pytest

from electra_tf import ElectraEncoder, ElectraTokenClassifier
from electra_tf.cli.main import main
from electra_tf.tasks.tagging_metrics import tagging_metrics

PEOPLE = ["john", "mary", "peter", "anna"]
PLACES = ["paris", "london", "rome", "berlin"]
OTHER = ["lives", "in", "works", "near", "visited", "."]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + PEOPLE + PLACES + OTHER + ["##s"]


def sentences(count, seed):
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(count):
        person, place = rng.choice(PEOPLE), rng.choice(PLACES)
        verb = rng.choice(["lives in", "works near", "visited"]).split()
        words = [person.capitalize(), *verb, place.capitalize(), "."]
        tags = ["B-PER"] + ["O"] * len(verb) + ["B-LOC", "O"]
        rows.append(list(zip(words, tags)))
    return rows


def write_conll(path, rows):
    text = "-DOCSTART- -X- -X- O\n\n" + "\n\n".join(
        "\n".join(f"{word} NNP B-NP {tag}" for word, tag in row) for row in rows) + "\n"
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One fine-tuning run shared by the tests of this module."""
    root = tmp_path_factory.mktemp("tag")
    encoder = ElectraEncoder(vocab_size=len(VOCAB), hidden_size=16, num_layers=2, num_heads=2,
                             intermediate_size=32, max_sequence_length=16, dropout_rate=0.0)
    encoder.save_pretrained(str(root / "encoder"))
    (root / "encoder" / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    train = write_conll(root / "train.conll", sentences(48, seed=0))
    dev = write_conll(root / "dev.conll", sentences(12, seed=1))
    code = main(["finetune", "tag", "--encoder", str(root / "encoder"), "--train", train,
                 "--dev", dev, "--output-dir", str(root / "out"), "--max-seq-length", "12",
                 "--batch-size", "8", "--epochs", "8", "--learning-rate", "3e-3",
                 "--log-every", "2", "--no-progress"])
    assert code == 0
    return root


def test_finetune_writes_model_logs_curves_and_results(run, capsys):
    out = run / "out"
    with open(out / "results.json") as f:
        results = json.load(f)
    assert results["label_names"] == ["O", "B-LOC", "B-PER"]
    assert results["train_examples"] == results["train_sentences"] == 48
    assert len(results["history"]["loss"]) == 8
    assert results["dev"]["f1"] > 0.9  # the tiny tagger learns who and where
    assert os.listdir(out / "logs" / "train")  # TensorBoard event file
    assert (out / "learning_curves.png").stat().st_size > 0
    assert (out / "history.csv").read_text().startswith("step,")
    with open(out / "model" / "task.json") as f:
        task = json.load(f)
    assert (task["task"], task["max_seq_length"], task["label_names"]) == (
        "tag", 12, ["O", "B-LOC", "B-PER"])
    assert (out / "model" / "vocab.txt").read_text().split("\n")[:5] == VOCAB[:5]
    assert ElectraTokenClassifier.from_pretrained(str(out / "model")).num_classes == 3
    transformers = pytest.importorskip("transformers")
    reference = transformers.ElectraForTokenClassification.from_pretrained(str(out / "model_hf"))
    assert reference.config.id2label[2] == "B-PER"


def test_evaluate_prints_metrics_and_json_that_match_predictions(run, capsys):
    capsys.readouterr()
    code = main(["evaluate", "tag", "--model", str(run / "out"),  # the run directory
                 "--data", str(run / "dev.conll"), "--output", str(run / "metrics.json")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "f1: " in printed and "f1[PER]" in printed
    metrics = json.loads(printed.strip().split("\n")[-1])
    with open(run / "metrics.json") as f:
        assert json.load(f) == metrics
    # The same numbers from `predict tag` on the dev words and the metric function.
    rows = [line.split() for line in (run / "dev.conll").read_text().split("\n")]
    sentences_, gold, current = [], [], []
    for row in rows + [[]]:
        if row and row[0] != "-DOCSTART-":
            current.append(row)
        elif current:
            sentences_.append([r[0] for r in current])
            gold.append([r[-1] for r in current])
            current = []
    (run / "dev.jsonl").write_text("\n".join(json.dumps({"tokens": s}) for s in sentences_))
    # OUTPUT_DIR/tagger, where earlier versions wrote the model, still finds it.
    with pytest.warns(DeprecationWarning, match="now write their model to OUTPUT/model"):
        assert main(["predict", "tag", "--model", str(run / "out" / "tagger"), "--input",
                     str(run / "dev.jsonl"), "--output", str(run / "tags.jsonl")]) == 0
    predictions = [json.loads(line) for line in (run / "tags.jsonl").read_text().splitlines()]
    expected = tagging_metrics(gold, [p["tags"] for p in predictions])
    assert metrics["f1"] == pytest.approx(expected["f1"])
    assert metrics["sentences"] == 12 and metrics["truncated_words"] == 0


def test_predict_plain_text_gives_tags_and_entities(run, capsys):
    (run / "input.txt").write_text("Mary visited Rome.\n\nJohn lives in Berlin .\n")
    capsys.readouterr()
    assert main(["predict", "tag", "--model", str(run / "out" / "model"),
                 "--input", str(run / "input.txt")]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().split("\n")]
    assert [line["tokens"] for line in lines] == [["Mary", "visited", "Rome", "."],
                                                  ["John", "lives", "in", "Berlin", "."]]
    assert lines[0]["tags"] == ["B-PER", "O", "B-LOC", "O"]
    assert lines[0]["entities"] == [{"type": "PER", "start": 0, "end": 0, "text": "Mary"},
                                    {"type": "LOC", "start": 2, "end": 2, "text": "Rome"}]
    assert all(0.0 < p <= 1.0 for p in lines[1]["probabilities"])


def test_bad_inputs_exit_2_with_a_clear_message(run, capsys):
    model = str(run / "out" / "model")
    bad = run / "bad.conll"
    bad.write_text("Mary NNP B-NP B-PER\nvisited\n")
    assert main(["evaluate", "tag", "--model", model, "--data", str(bad)]) == 2
    assert "bad.conll:2: 1 column(s)" in capsys.readouterr().err
    bad.write_text("Mary NNP B-NP B-ORG\n")
    assert main(["evaluate", "tag", "--model", model, "--data", str(bad)]) == 2
    assert "tag 'B-ORG' is not one of the label names" in capsys.readouterr().err
    (run / "bad.jsonl").write_text('{"text": ""}\n')
    assert main(["predict", "tag", "--model", model, "--input", str(run / "bad.jsonl")]) == 2
    assert "bad.jsonl:1: expected a non-empty string" in capsys.readouterr().err
    assert main(["predict", "tag", "--model", str(run / "encoder"),
                 "--input", str(run / "input.txt")]) == 2
    assert "has no task.json" in capsys.readouterr().err
