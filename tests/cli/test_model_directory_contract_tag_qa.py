"""The model-directory contract for taggers and QA models: fine-tune → prune → distill →
evaluate → predict → export → serve → convert through the CLI, settings given once.

The classifier's chain is `test_model_directory_contract.py`. Here a cased
tagger (its tags, sequence length and casing given at fine-tuning only) and a
QA model (its window, stride and question budget given at fine-tuning only)
go through every later command, none of which repeats a flag: each reads the
directory the one before wrote (config, weights, vocab.txt, task.json).
"""

import http.client
import json
import os
import sys

import numpy as np
import pytest
import tf_keras as keras

from conftest import packaged_squad_sample
from electra_tf import ElectraEncoder
from electra_tf.cli.main import main
from electra_tf.tasks.task_model_io import resolve_model_dir

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "serving"))
from serving_helpers import InProcessServer  # noqa: E402

FILES = {"config.json", "model.weights.h5", "vocab.txt", "task.json"}
PEOPLE = ["Ada", "Alan", "Grace", "Linus"]
PLACES = ["Paris", "London", "Rome", "Oslo"]
OTHER = ["lives", "in", "visited", "near", ".", "ada", "paris"]  # lower-case twins: cased ids
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + PEOPLE + PLACES + OTHER
TAGS = ["O", "B-PER", "B-LOC"]  # in the order the training file first shows them
TAG_SEQ_LENGTH = 12
SQUAD = packaged_squad_sample()
QA_WINDOW = ["--max-seq-length", "96", "--doc-stride", "48", "--max-query-length", "24"]


def _post(port, path, body):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("POST", path, body=json.dumps(body),
                       headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def _serve(export_dir, name, body):
    from electra_tf.serving.served_model import ServedModel
    from electra_tf.serving.serving_app import build_serving_app
    from electra_tf.serving.serving_config import ServingConfig

    app = build_serving_app({"1": ServedModel(str(export_dir))}, ServingConfig(name=name))
    server = InProcessServer(app)
    try:
        return _post(server.port, f"/v1/models/{name}:predict", body)
    finally:
        server.stop()


def _conll(path, count, seed):
    rng = np.random.default_rng(seed)
    sentences = []
    for _ in range(count):
        verb = ["lives", "in"] if rng.integers(2) else ["visited"]
        words = [str(rng.choice(PEOPLE)), *verb, str(rng.choice(PLACES)), "."]
        tags = ["B-PER", *["O"] * len(verb), "B-LOC", "O"]
        sentences.append("\n".join(f"{w} {t}" for w, t in zip(words, tags)))
    path.write_text("\n\n".join(sentences) + "\n")
    return str(path)


def _chain(root, task, finetune_flags, train, dev):
    """finetune → prune → distill; returns {stage: model directory}."""
    assert main(["finetune", task, *finetune_flags, "--train", train, "--dev", dev,
                 "--output-dir", str(root / "finetuned"), "--batch-size", "8",
                 "--no-progress"]) == 0
    common = ["--train", train, "--dev", dev, "--max-steps", "2", "--batch-size", "8",
              "--no-progress"]
    assert main(["compress", "prune", resolve_model_dir(str(root / "finetuned")),
                 "--output-dir", str(root / "pruned"), "--sparsity", "0.5", *common]) == 0
    assert main(["compress", "distill", resolve_model_dir(str(root / "pruned")),
                 "--output-dir", str(root / "distilled"), "--num-layers", "1", *common]) == 0
    return {stage: resolve_model_dir(str(root / stage))
            for stage in ("finetuned", "pruned", "distilled")}


@pytest.fixture(scope="module")
def tagger(tmp_path_factory):
    root = tmp_path_factory.mktemp("tag_contract")
    keras.utils.set_random_seed(0)
    ElectraEncoder(vocab_size=len(VOCAB), hidden_size=16, num_layers=2, num_heads=2,
                   intermediate_size=32, max_sequence_length=16,
                   dropout_rate=0.0).save_pretrained(str(root / "encoder"))
    (root / "encoder" / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    train, dev = _conll(root / "train.conll", 24, 0), _conll(root / "dev.conll", 8, 1)
    flags = ["--encoder", str(root / "encoder"), "--no-lower-case",
             "--max-seq-length", str(TAG_SEQ_LENGTH), "--epochs", "2", "--learning-rate", "3e-3"]
    return root, _chain(root, "tag", flags, train, dev)


@pytest.fixture(scope="module")
def qa(tmp_path_factory):
    root = tmp_path_factory.mktemp("qa_contract")
    keras.utils.set_random_seed(0)
    ElectraEncoder(vocab_size=30522, hidden_size=16, num_layers=2, num_heads=2,
                   intermediate_size=32, max_sequence_length=128,
                   dropout_rate=0.0).save_pretrained(str(root / "encoder"))
    flags = ["--encoder", str(root / "encoder"), *QA_WINDOW, "--epochs", "1"]
    return root, _chain(root, "qa", flags, SQUAD, SQUAD)


@pytest.mark.parametrize("stage", ["finetuned", "pruned", "distilled"])
def test_every_tagger_stage_writes_the_whole_directory(tagger, stage):
    root, stages = tagger
    assert FILES <= set(os.listdir(stages[stage]))
    with open(os.path.join(stages[stage], "task.json")) as f:
        task = json.load(f)
    assert task["task"] == "tag"
    assert sorted(task["label_names"]) == sorted(TAGS)
    assert (task["max_seq_length"], task["lower_case"]) == (TAG_SEQ_LENGTH, False)
    with open(os.path.join(stages[stage], "vocab.txt")) as f:
        assert f.read().split() == VOCAB
    if stage != "finetuned":
        assert task["compressed_from"]


@pytest.mark.parametrize("stage", ["finetuned", "pruned", "distilled"])
def test_every_qa_stage_writes_the_whole_directory(qa, stage):
    root, stages = qa
    assert FILES <= set(os.listdir(stages[stage]))
    with open(os.path.join(stages[stage], "task.json")) as f:
        task = json.load(f)
    assert task["task"] == "qa" and task["max_seq_length"] == 96
    if stage != "finetuned":
        assert task["compressed_from"]


def test_compressed_tagger_evaluates_predicts_exports_and_serves_without_flags(tagger):
    import tensorflow as tf

    root, stages = tagger
    model_dir = stages["distilled"]
    assert main(["evaluate", "tag", "--model", model_dir, "--data", str(root / "dev.conll"),
                 "--output", str(root / "metrics.json")]) == 0
    assert "f1" in json.loads((root / "metrics.json").read_text())
    (root / "texts.txt").write_text("Ada visited Paris .\nada visited paris .\n")
    assert main(["predict", "tag", "--model", model_dir, "--input", str(root / "texts.txt"),
                 "--output", str(root / "tags.jsonl")]) == 0
    rows = [json.loads(line) for line in (root / "tags.jsonl").read_text().splitlines()]
    assert [len(row["tags"]) for row in rows] == [4, 4]
    assert all(tag in TAGS for row in rows for tag in row["tags"])

    export = root / "export"
    assert main(["export", model_dir, str(export / "serving" / "1"), "--format", "saved_model"]) == 0
    assert main(["export", model_dir, str(export / "tagger.tflite"), "--format", "tflite"]) == 0
    info = json.loads((export / "serving" / "1" / "assets.extra" /
                       "electra_tf_export.json").read_text())
    assert sorted(info["label_names"]) == sorted(TAGS)
    assert info["max_seq_length"] == TAG_SEQ_LENGTH
    interpreter = tf.lite.Interpreter(model_path=str(export / "tagger.tflite"))
    assert interpreter.get_input_details()[0]["shape"].tolist() == [1, TAG_SEQ_LENGTH]
    status, body = _serve(export / "serving" / "1", "ner", {"instances": ["Ada visited Paris ."]})
    assert status == 200, body
    served = body["predictions"][0]
    # The server gives the tags `predict tag` gave: the same model, read from its directory.
    assert served["tags"] == rows[0]["tags"]

    assert main(["convert", "--from", "electra_tf", "--to", "huggingface", model_dir,
                 str(root / "distilled_hf")]) == 0
    config = json.loads((root / "distilled_hf" / "config.json").read_text())
    assert config["architectures"] == ["ElectraForTokenClassification"]
    assert sorted(config["id2label"].values()) == sorted(TAGS)


def test_compressed_qa_model_evaluates_predicts_exports_and_serves_without_flags(qa):
    root, stages = qa
    model_dir = stages["distilled"]
    assert main(["evaluate", "qa", "--model", model_dir, "--data", SQUAD,
                 "--output", str(root / "metrics.json")]) == 0
    assert "f1" in json.loads((root / "metrics.json").read_text())["metrics"]
    question = {"question": "Where is the statue?",
                "context": "A golden statue of the Virgin Mary stands atop the Main Building."}
    (root / "questions.jsonl").write_text(json.dumps(question) + "\n")
    assert main(["predict", "qa", "--model", model_dir, "--input", str(root / "questions.jsonl"),
                 "--output", str(root / "answers.jsonl")]) == 0
    answer = json.loads((root / "answers.jsonl").read_text().splitlines()[0])
    assert answer["answer"] in question["context"]

    export = root / "export"
    assert main(["export", model_dir, str(export / "serving" / "1"), "--format", "saved_model"]) == 0
    info = json.loads((export / "serving" / "1" / "assets.extra" /
                       "electra_tf_export.json").read_text())
    assert info["max_seq_length"] == 96
    status, body = _serve(export / "serving" / "1", "qa", {"instances": [question]})
    assert status == 200, body
    assert body["predictions"][0]["answer"] in question["context"]

    assert main(["convert", "--from", "electra_tf", "--to", "huggingface", model_dir,
                 str(root / "distilled_hf")]) == 0
    config = json.loads((root / "distilled_hf" / "config.json").read_text())
    assert config["architectures"] == ["ElectraForQuestionAnswering"]
