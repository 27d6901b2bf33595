"""`electra-tf finetune|evaluate|predict qa` on the five real SQuAD questions with a tiny encoder.

Fine-tuning a from-scratch tiny encoder (the real uncased vocabulary) on the
sample and evaluating on the same questions measures *training* EM: 100
shows that features, the model, the loop and post-processing learn end to end.
"""

import json
import os

import pytest
import tf_keras as keras

from conftest import packaged_squad_sample
from electra_tf import ElectraEncoder
from electra_tf.cli.main import main

SAMPLE = packaged_squad_sample()
# Small windows: every context spans several (128 pieces, stride 64).
TRAINING = ["--max-seq-length", "128", "--doc-stride", "64", "--max-query-length", "32",
            "--batch-size", "8", "--epochs", "40", "--learning-rate", "3e-3",
            "--layer-decay", "1.0", "--no-progress"]


def tiny_encoder_dir(path):
    keras.utils.set_random_seed(0)
    ElectraEncoder(vocab_size=30522, hidden_size=32, num_layers=2, num_heads=2,
                   intermediate_size=64, max_sequence_length=128,
                   dropout_rate=0.0).save_pretrained(str(path))
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("qa")
    encoder = tiny_encoder_dir(root / "encoder")
    output = root / "run"
    code = main(["finetune", "qa", "--encoder", encoder, "--train", SAMPLE, "--dev", SAMPLE,
                 "--output-dir", str(output), *TRAINING])
    assert code == 0
    return output


def test_finetune_drives_training_em_to_100_and_writes_everything(trained, capsys):
    with open(trained / "results.json") as f:
        results = json.load(f)
    assert results["dev"]["exact_match"] == 100.0 and results["dev"]["f1"] == 100.0
    assert results["train_windows"] > results["train_examples"] == 5  # several windows each
    assert results["history"]["loss"][-1] < results["history"]["loss"][0] / 2
    with open(trained / "predictions.json") as f:
        assert json.load(f)["5733b1da4776f4190066106b"] == "Father Julius Nieuwl"
    assert os.listdir(trained / "logs" / "train")  # TensorBoard events
    assert (trained / "learning_curves.png").stat().st_size > 0
    assert sorted(os.listdir(trained / "model")) == [
        "config.json", "model.weights.h5", "task.json", "vocab.txt"]
    assert (trained / "model_hf" / "model.safetensors").exists()


def test_evaluate_prints_and_writes_em_f1(trained, tmp_path, capsys):
    output = tmp_path / "evaluation.json"
    assert main(["evaluate", "qa", "--model", str(trained / "model"), "--data", SAMPLE,
                 "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "exact_match: 100.00" in printed and "f1: 100.00" in printed
    with open(output) as f:
        report = json.load(f)
    assert report["metrics"]["total"] == 5 and len(report["predictions"]) == 5


def test_predict_answers_json_lines(trained, tmp_path, capsys):
    with open(SAMPLE) as f:
        paragraph = json.load(f)["data"][0]["paragraphs"][0]
    questions = tmp_path / "questions.jsonl"
    questions.write_text("\n".join(json.dumps(record) for record in [
        {"id": "q1", "question": paragraph["qas"][0]["question"], "context": paragraph["context"]},
        {"question": paragraph["qas"][1]["question"], "context": paragraph["context"]},
    ]) + "\n")
    output = tmp_path / "answers.jsonl"
    assert main(["predict", "qa", "--model", str(trained / "model"), "--input", str(questions),
                 "--output", str(output)]) == 0
    answers = [json.loads(line) for line in output.read_text().splitlines()]
    assert answers[0]["id"] == "q1" and answers[0]["answer"] == "Saint Bernadette Soubirous"
    assert answers[0]["start_char"] == paragraph["context"].index("Saint Bernadette")
    assert answers[1]["answer"] == "a golden statue of the Virgin Mary"
    assert all(isinstance(answer["score"], float) for answer in answers)
    # Without --output the lines go to standard output.
    assert main(["predict", "qa", "--model", str(trained / "model"), "--input",
                 str(questions)]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == answers


def test_bad_requests_get_clear_errors(trained, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Who?"}\n')
    assert main(["predict", "qa", "--model", str(trained / "model"), "--input", str(bad)]) == 2
    assert "Record 1: expected an object with 'question' and 'context'" in capsys.readouterr().err
    bad.write_text('{"question": "Who?", "context": "  "}\n')
    assert main(["predict", "qa", "--model", str(trained / "model"), "--input", str(bad)]) == 2
    assert "empty context" in capsys.readouterr().err
    assert main(["evaluate", "qa", "--model", str(tmp_path), "--data", SAMPLE]) == 2
    assert "no task.json" in capsys.readouterr().err
    malformed = tmp_path / "squad.json"
    malformed.write_text('{"data": [{"paragraphs": [{"context": "abc", "qas": [{"id": "1", '
                         '"question": "q?", "answers": [{"text": "xyz", "answer_start": 0}]}]}]}]}')
    output = tmp_path / "run"
    assert main(["finetune", "qa", "--encoder", str(trained / "model"), "--train",
                 str(malformed), "--output-dir", str(output), *TRAINING]) == 2
    assert "answer 'xyz' is not at answer_start=0" in capsys.readouterr().err
    assert not output.exists()
    assert main(["finetune", "qa", "--encoder", str(trained / "model"), "--train", SAMPLE,
                 "--output-dir", str(output)]) == 2  # 384-piece windows, 128 positions
    assert "max_seq_length=384 exceeds the encoder's max_sequence_length=128" in (
        capsys.readouterr().err)
