"""`electra-tf export MODEL_DIR OUT --format ...`: outputs, refusals, atomic writes."""

import json
import os

import pytest
import tf_keras as keras

import electra_tf
from electra_tf.cli.main import main
from electra_tf.export import hub_saved_models
from electra_tf.export.export_model_directory import export_model_directory
from electra_tf.export.task_saved_model import METADATA_PATH

TINY_ENCODER = dict(vocab_size=30522, hidden_size=8, num_layers=1, num_heads=2,
                    intermediate_size=16, embedding_size=4, max_sequence_length=32)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    """An encoder directory and a classifier directory, written by save_pretrained."""
    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("models")
    encoder = electra_tf.ElectraEncoder(**TINY_ENCODER)
    encoder.save_pretrained(str(root / "encoder"))
    electra_tf.ElectraClassifier(encoder, num_classes=2).save_pretrained(str(root / "classifier"))
    electra_tf.ElectraQuestionAnswering(encoder).save_pretrained(str(root / "qa"))
    return {name: str(root / name) for name in ("encoder", "classifier", "qa")}


def snapshot(path):
    """Every file under `path` with its size and modification time."""
    return {
        os.path.relpath(os.path.join(folder, name), path):
            (os.path.getsize(os.path.join(folder, name)),
             os.path.getmtime(os.path.join(folder, name)))
        for folder, _, names in os.walk(path) for name in names
    }


def test_saved_model_then_refusals_and_a_failed_overwrite(model_dirs, tmp_path, capsys,
                                                          monkeypatch):
    out = str(tmp_path / "sentiment")
    assert main(["export", model_dirs["classifier"], out, "--format", "saved_model",
                 "--max-seq-length", "16", "--label-names", "negative,positive"]) == 0
    assert "exported ElectraClassifier as saved_model" in capsys.readouterr().out
    with open(os.path.join(out, METADATA_PATH)) as f:
        metadata = json.load(f)
    assert metadata["label_names"] == ["negative", "positive"]
    assert metadata["max_seq_length"] == 16 and metadata["inputs"] == ["text"]
    before = snapshot(out)
    assert "saved_model.pb" in before

    # An existing OUT without --overwrite: refused before anything is loaded or written.
    assert main(["export", model_dirs["classifier"], out, "--format", "hub"]) == 2
    assert "already exists" in capsys.readouterr().err

    # An export that fails midway, with --overwrite: the previous OUT stays as it was,
    # and no temporary directory is left next to it.
    def save_half_then_fail(tokenizer, path, max_seq_length):
        os.makedirs(path)
        with open(os.path.join(path, "saved_model.pb"), "w") as f:
            f.write("half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(hub_saved_models, "save_preprocessor", save_half_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        main(["export", model_dirs["classifier"], out, "--format", "hub", "--overwrite",
              "--max-seq-length", "16"])
    assert snapshot(out) == before
    with pytest.raises(RuntimeError, match="disk full"):
        main(["export", model_dirs["encoder"], str(tmp_path / "hub"), "--format", "hub",
              "--max-seq-length", "16"])
    assert sorted(os.listdir(tmp_path)) == ["sentiment"]


def test_question_answering_saved_model(model_dirs, tmp_path):
    out = str(tmp_path / "qa")
    assert main(["export", model_dirs["qa"], out, "--format", "saved_model",
                 "--max-seq-length", "24", "--text-pair"]) == 2  # pairs are for classifiers
    assert not os.path.exists(out)
    assert main(["export", model_dirs["qa"], out, "--format", "saved_model",
                 "--max-seq-length", "24", "--batch-parts", "2", "--width-parts", "2"]) == 0
    with open(os.path.join(out, METADATA_PATH)) as f:
        metadata = json.load(f)
    assert metadata["batch_parts"] == 2  # batches of 2 or more run as two parts
    assert metadata["width_parts"] == 2  # each block in two groups of heads and neurons
    assert metadata["task"] == "question_answering"
    assert metadata["inputs"] == ["question", "context"]
    assert metadata["outputs"] == ["answer", "start_char", "end_char", "score"]


def test_bad_requests_are_clear_errors(model_dirs, tmp_path, capsys):
    out = str(tmp_path / "out")
    assert main(["export", str(tmp_path / "missing"), out, "--format", "hub"]) == 2
    assert "Model directory not found" in capsys.readouterr().err
    # An encoder has no task head to serve.
    assert main(["export", model_dirs["encoder"], out, "--format", "saved_model"]) == 2
    assert "received ElectraEncoder" in capsys.readouterr().err
    assert main(["export", model_dirs["encoder"], out, "--format", "hub",
                 "--quantize", "int8"]) == 2
    assert "with format='tflite'" in capsys.readouterr().err
    assert main(["export", model_dirs["encoder"], out, "--format", "hub",
                 "--max-seq-length", "64"]) == 2
    assert "max_sequence_length); received max_seq_length=64" in capsys.readouterr().err
    assert main(["export", model_dirs["classifier"], out, "--format", "tflite",
                 "--batch-parts", "2"]) == 2
    assert ("splits the batches of an end-to-end SavedModel (format='saved_model'); received "
            "batch_parts=2 with format='tflite'") in capsys.readouterr().err
    assert main(["export", model_dirs["classifier"], out, "--format", "saved_model",
                 "--max-seq-length", "16", "--batch-parts", "0"]) == 2
    assert "received batch_parts=0" in capsys.readouterr().err
    assert main(["export", model_dirs["classifier"], out, "--format", "tflite",
                 "--width-parts", "2"]) == 2
    assert ("splits the transformer blocks of an end-to-end SavedModel (format='saved_model'); "
            "received width_parts=2 with format='tflite'") in capsys.readouterr().err
    assert main(["export", model_dirs["classifier"], out, "--format", "saved_model",
                 "--max-seq-length", "16", "--width-parts", "0"]) == 2
    assert "positive integer number of groups; received 0" in capsys.readouterr().err
    assert not os.path.exists(out)
    with pytest.raises(SystemExit) as exit_info:
        main(["export", model_dirs["encoder"], out, "--format", "onnx"])
    assert exit_info.value.code == 2 and "invalid choice: 'onnx'" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"one of \['hub', 'saved_model', 'tflite'\]; "
                                         "received format='onnx'"):
        export_model_directory(model_dirs["encoder"], out, "onnx")
    assert os.listdir(tmp_path) == []


def test_tflite_format_calls_the_converter(model_dirs, tmp_path, capsys):
    pytest.importorskip("electra_tf.export.tflite_export")
    out = str(tmp_path / "classifier.tflite")
    assert main(["export", model_dirs["classifier"], out, "--format", "tflite",
                 "--max-seq-length", "16", "--quantize", "dynamic"]) == 0
    assert os.path.getsize(out) > 0 and "as tflite" in capsys.readouterr().out


def test_tflite_int8_needs_and_uses_calibration_texts(model_dirs, tmp_path, capsys):
    pytest.importorskip("electra_tf.export.tflite_export")
    out = str(tmp_path / "classifier_int8.tflite")
    command = ["export", model_dirs["classifier"], out, "--format", "tflite",
               "--max-seq-length", "16", "--quantize", "int8"]
    assert main(command) == 2
    assert "needs calibration texts" in capsys.readouterr().err and not os.path.exists(out)
    texts = tmp_path / "calibration.txt"
    texts.write_text("a gripping film\nslow and dull\nthe best of the year\n")
    assert main(command + ["--calibration-data", str(texts)]) == 0
    assert os.path.getsize(out) > 0 and "as tflite" in capsys.readouterr().out


def test_a_run_directory_exports_its_model(model_dirs, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(model_dirs["classifier"], run / "model")  # what `finetune classify` writes
    assert main(["export", str(run), str(tmp_path / "out"), "--format", "saved_model",
                 "--max-seq-length", "16"]) == 0
    with open(tmp_path / "out" / METADATA_PATH) as f:
        assert json.load(f)["task"] == "classification"
