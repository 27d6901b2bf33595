"""One model-directory contract: fine-tune → prune → distill → evaluate → predict → export → serve
through the CLI, giving the label names, sequence length, columns and casing once, at fine-tuning.

Every later command reads them from the directory the one before wrote (config, weights, vocab.txt,
task.json); none of them repeats a flag.
"""

import json
import os
import sys

import numpy as np
import pytest

from electra_tf import ElectraEncoder
from electra_tf.cli.main import main
from electra_tf.tasks.task_model_io import resolve_model_dir

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "serving"))
from serving_helpers import InProcessServer  # noqa: E402

# A cased vocabulary: a model that was told --no-lower-case must keep "Good" apart from "good".
WORDS = ["Good", "good", "great", "fine", "Bad", "bad", "awful", "dull", "film", "plot", "the",
         "was", "."]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
LABELS = ["negative", "positive"]


def model_dir_of(root, stage):
    """The model a stage's job wrote into its output directory (model/; classifier/ before)."""
    return resolve_model_dir(str(root / stage))


def rows(count, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        label = int(rng.integers(0, 2))
        word = rng.choice(WORDS[:4] if label else WORDS[4:8])
        out.append((LABELS[label], f"the film was {word} ."))
    return out


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("contract")
    encoder = ElectraEncoder(vocab_size=len(VOCAB), hidden_size=16, num_layers=2, num_heads=2,
                             intermediate_size=32, max_sequence_length=24, dropout_rate=0.0)
    encoder.save_pretrained(str(root / "encoder"))
    (root / "encoder" / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    for name, count, seed in (("train", 32, 0), ("dev", 12, 1)):
        # Columns named as the user's data names them: given once, at fine-tuning.
        (root / f"{name}.tsv").write_text("sentiment\treview\n" + "".join(
            f"{label}\t{text}\n" for label, text in rows(count, seed)))
    assert main(["finetune", "classify", "--encoder", str(root / "encoder"),
                 "--train", str(root / "train.tsv"), "--dev", str(root / "dev.tsv"),
                 "--text-column", "review", "--label-column", "sentiment",
                 "--label-names", ",".join(LABELS), "--no-lower-case", "--head", "huggingface",
                 "--output-dir", str(root / "finetuned"), "--max-seq-length", "10",
                 "--batch-size", "8", "--epochs", "2", "--learning-rate", "3e-3",
                 "--no-progress"]) == 0
    common = ["--train", str(root / "train.tsv"), "--dev", str(root / "dev.tsv"),
              "--max-steps", "3", "--batch-size", "8", "--no-progress"]
    assert main(["compress", "prune", str(root / "finetuned" / "model"),
                 "--output-dir", str(root / "pruned"), "--sparsity", "0.5", *common]) == 0
    assert main(["compress", "distill", model_dir_of(root, "pruned"),
                 "--output-dir", str(root / "distilled"), "--num-layers", "1", *common]) == 0
    # Structured pruning: one of the two heads and half the feed-forward neurons removed.
    assert main(["compress", "shrink", str(root / "finetuned" / "model"), "--output-dir",
                 str(root / "shrunk"), "--num-heads", "1", "--intermediate-size", "16",
                 "--importance-batches", "2", *common]) == 0
    return root


@pytest.mark.parametrize("stage", ["finetuned", "pruned", "distilled", "shrunk"])
def test_every_stage_writes_the_whole_directory(chain, stage):
    model_dir = chain / os.path.relpath(model_dir_of(chain, stage), chain)
    assert {"config.json", "model.weights.h5", "vocab.txt", "task.json"} <= set(os.listdir(model_dir))
    task = json.loads((model_dir / "task.json").read_text())
    assert task["label_names"] == LABELS
    assert (task["max_seq_length"], task["lower_case"]) == (10, False)
    assert (task["text_column"], task["label_column"]) == ("review", "sentiment")
    assert (model_dir / "vocab.txt").read_text().split() == VOCAB


@pytest.mark.parametrize("stage", ["pruned", "distilled", "shrunk"])
def test_evaluate_and_predict_read_a_compressed_model_without_flags(chain, stage, capsys):
    model_dir = model_dir_of(chain, stage)
    capsys.readouterr()
    assert main(["evaluate", "classify", "--model", model_dir, "--data", str(chain / "dev.tsv")]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["examples"] == 12
    (chain / "texts.txt").write_text("the film was Good .\nthe film was awful .\n")
    assert main(["predict", "classify", "--model", model_dir, "--input", str(chain / "texts.txt"),
                 "--output", str(chain / f"{stage}.jsonl")]) == 0
    predictions = [json.loads(line) for line in (chain / f"{stage}.jsonl").read_text().splitlines()]
    assert all(p["label"] in LABELS and set(p["probabilities"]) == set(LABELS) for p in predictions)
    # --max-seq-length overrides the trained length: whole sentences from a model trained at 10.
    assert main(["evaluate", "classify", "--model", model_dir, "--data", str(chain / "dev.tsv"),
                 "--max-seq-length", "24"]) == 0
    assert main(["evaluate", "classify", "--model", model_dir, "--data", str(chain / "dev.tsv"),
                 "--max-seq-length", "25"]) == 2
    assert "must be an integer in [3, 24]" in capsys.readouterr().err


def test_exports_and_serving_carry_labels_length_and_casing(chain):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the exported tokenizer's ops)

    model_dir = model_dir_of(chain, "distilled")
    export = chain / "export"
    assert main(["export", model_dir, str(export / "serving" / "1"), "--format", "saved_model"]) == 0
    assert main(["export", model_dir, str(export / "hub"), "--format", "hub"]) == 0
    assert main(["export", model_dir, str(export / "model.tflite"), "--format", "tflite"]) == 0
    info = json.loads((export / "serving" / "1" / "assets.extra" / "electra_tf_export.json").read_text())
    assert info["label_names"] == LABELS and info["max_seq_length"] == 10
    # The model's own cased vocabulary went along: "Good" is one known piece, not [UNK].
    preprocessor = tf.saved_model.load(str(export / "hub" / "preprocessor"))
    ids = preprocessor(tf.constant(["Good good"]))["input_word_ids"].numpy()[0]
    assert ids[1:3].tolist() == [VOCAB.index("Good"), VOCAB.index("good")]
    assert ids.shape == (10,)  # task.json's max_seq_length
    interpreter = tf.lite.Interpreter(model_path=str(export / "model.tflite"))
    assert interpreter.get_input_details()[0]["shape"].tolist() == [1, 10]

    from electra_tf.serving.serving_app import build_serving_app
    from electra_tf.serving.serving_config import ServingConfig
    from electra_tf.serving.served_model import ServedModel
    import http.client

    app = build_serving_app({"1": ServedModel(str(export / "serving" / "1"))},
                            ServingConfig(name="sentiment"))
    server = InProcessServer(app)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        connection.request("POST", "/v1/models/sentiment:predict",
                           body=json.dumps({"instances": ["the film was Good ."]}),
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        server.stop()
    assert response.status == 200
    assert body["predictions"][0]["label"] in LABELS


def test_huggingface_export_names_the_labels(chain):
    # `--head huggingface` wrote a transformers copy next to the model: id2label has the names.
    config = json.loads((chain / "finetuned" / "model_hf" / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert main(["convert", "--from", "electra_tf", "--to", "huggingface",
                 model_dir_of(chain, "distilled"), str(chain / "distilled_hf")]) == 0
    config = json.loads((chain / "distilled_hf" / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["architectures"] == ["ElectraForSequenceClassification"]
