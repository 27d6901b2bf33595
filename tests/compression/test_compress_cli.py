"""`electra-tf compress prune|distill|quantize` end to end on a tiny classifier and vocabulary."""

import json
import os

import numpy as np
import pytest
import tf_keras as keras
from conftest import TINY

from electra_tf import ElectraClassifier, ElectraEncoder
from electra_tf.cli.main import main
from electra_tf.tasks.run_finetuning import predict_classifier

WORDS = ("good great fine superb lovely warm fun bright sharp clever witty moving rich "
         "bad awful dull poor weak flat cold boring bland tired lame slow messy the a film "
         "is very and").split()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("compress")
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    assert len(tokens) == TINY["vocab_size"]
    keras.utils.set_random_seed(0)
    classifier = ElectraClassifier(ElectraEncoder(**TINY), num_classes=2)
    classifier.save_pretrained(str(root / "classifier"))
    (root / "classifier" / "vocab.txt").write_text("\n".join(tokens) + "\n")
    rng = np.random.default_rng(0)
    rows = ["label\ttext"]
    for _ in range(24):
        label = int(rng.integers(0, 2))
        words = WORDS[:13] if label else WORDS[13:26]
        rows.append(f"{label}\tthe film is {' '.join(rng.choice(words, 3))}")
    (root / "train.tsv").write_text("\n".join(rows) + "\n")
    return root


def test_prune(workdir, capsys):
    out = workdir / "pruned"
    code = main(["compress", "prune", str(workdir / "classifier"), "--train",
                 str(workdir / "train.tsv"), "--dev", str(workdir / "train.tsv"),
                 "--output-dir", str(out), "--sparsity", "0.5", "--max-steps", "6",
                 "--batch-size", "8", "--max-seq-length", "12", "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "all pruned kernels" in printed and "dev_accuracy_after" in printed
    report = json.loads((out / "sparsity.json").read_text())
    assert report["overall_sparsity"] == pytest.approx(0.5, abs=0.02)
    assert ElectraClassifier.from_pretrained(str(out / "model")).num_classes == 2
    assert list((out / "logs").rglob("events.out.tfevents.*"))
    # A full task directory, though the input (save_pretrained only) had no task.json.
    task = json.loads((out / "model" / "task.json").read_text())
    assert task["task"] == "classify" and task["label_names"] == ["0", "1"]
    assert task["compressed_from"] == f"prune {workdir / 'classifier'}"
    (workdir / "texts.txt").write_text("the film is great\nthe film is dull\n")
    predictions = predict_classifier(str(out / "model"), str(workdir / "texts.txt"))
    assert [sorted(p["probabilities"]) for p in predictions] == [["0", "1"]] * 2


def test_prune_with_distillation(workdir, capsys):
    out = workdir / "pruned_distilled"
    code = main(["compress", "prune", str(workdir / "classifier"), "--train",
                 str(workdir / "train.tsv"), "--output-dir", str(out), "--sparsity", "0.5",
                 "--max-steps", "4", "--batch-size", "8", "--max-seq-length", "12",
                 "--distill-alpha", "0.9", "--no-progress"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert "soft_loss" in summary["history"]  # trained on the unpruned model's predictions
    assert summary["sparsity"]["overall_sparsity"] == pytest.approx(0.5, abs=0.02)


def test_prune_with_augmented_texts(workdir, capsys):
    out = workdir / "pruned_augmented"
    code = main(["compress", "prune", str(workdir / "classifier"), "--train",
                 str(workdir / "train.tsv"), "--output-dir", str(out), "--sparsity", "0.5",
                 "--batch-size", "8", "--max-seq-length", "12", "--distill-alpha", "1.0",
                 "--augment-copies", "2", "--no-progress"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["augment_copies"] == 2
    assert summary["steps"] == 9  # one epoch: 24 reviews and 48 augmented copies, batches of 8
    assert summary["sparsity"]["overall_sparsity"] == pytest.approx(0.5, abs=0.02)
    # Augmented texts have no labels: without the teacher there is nothing to learn from them.
    code = main(["compress", "prune", str(workdir / "classifier"), "--train",
                 str(workdir / "train.tsv"), "--output-dir", str(workdir / "no_teacher"),
                 "--augment-copies", "2"])
    assert code == 2 and "distill-alpha" in capsys.readouterr().err
    assert not (workdir / "no_teacher").exists()


def test_distill(workdir, capsys):
    out = workdir / "student"
    code = main(["compress", "distill", str(workdir / "classifier"), "--train",
                 str(workdir / "train.tsv"), "--output-dir", str(out), "--num-layers", "1",
                 "--max-steps", "3", "--batch-size", "8", "--max-seq-length", "12",
                 "--no-progress"])
    assert code == 0
    student = ElectraClassifier.from_pretrained(str(out / "model"))
    assert student.encoder.num_layers == 1
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["history"]["soft_loss"]) == 1
    code = main(["compress", "distill", str(workdir / "classifier"), "--train",
                 str(workdir / "train.tsv"), "--output-dir", str(workdir / "student_augmented"),
                 "--num-layers", "1", "--batch-size", "8", "--max-seq-length", "12",
                 "--augment-copies", "1", "--no-progress"])
    assert code == 0
    summary = json.loads((workdir / "student_augmented" / "summary.json").read_text())
    assert summary["augment_copies"] == 1 and summary["steps"] == 6  # (24 + 24) / 8
    assert list((out / "logs").rglob("events.out.tfevents.*"))


def test_existing_output_is_refused_and_kept(workdir, capsys):
    out = workdir / "existing"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    code = main(["compress", "prune", str(workdir / "classifier"), "--train",
                 str(workdir / "train.tsv"), "--output", str(out), "--max-steps", "2"])
    assert code == 2
    err = capsys.readouterr().err
    assert "already exists" in err
    # --output, the flag's earlier name, still works, with a note.
    assert "--output is deprecated; use --output-dir" in err
    assert os.listdir(out) == ["keep.txt"]


def test_bad_input_is_a_clear_error(workdir, capsys):
    code = main(["compress", "prune", str(workdir / "train.tsv"), "--train",
                 str(workdir / "train.tsv"), "--output-dir", str(workdir / "x")])
    assert code == 2 and "not an electra_tf model directory" in capsys.readouterr().err
    code = main(["compress", "distill", str(workdir / "train.tsv"), "--train",
                 str(workdir / "train.tsv"), "--output", str(workdir / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "not an electra_tf model directory" in err
    assert "--output is deprecated; use --output-dir" in err  # its earlier name still works
    with pytest.raises(SystemExit):
        main(["compress", "distill", str(workdir / "classifier"), "--train", "t.tsv"])
    assert "--output-dir is required" in capsys.readouterr().err
    code = main(["compress", "quantize", str(workdir / "classifier"), str(workdir / "m.tflite"),
                 "--mode", "int8"])
    assert code == 2 and "calibration" in capsys.readouterr().err
    assert not (workdir / "x").exists() and not (workdir / "m.tflite").exists()


def test_quantize_int8(workdir, capsys):
    pytest.importorskip("electra_tf.export.tflite_export")
    out = workdir / "model.tflite"
    code = main(["compress", "quantize", str(workdir / "classifier"), str(out),
                 "--quantize", "int8", "--calibration-data", str(workdir / "train.tsv"),
                 "--num-calibration-examples", "8", "--max-seq-length", "12"])
    assert code == 0 and out.stat().st_size > 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["quantize"] == "int8"
    # --float-dense-layers 0: every dense layer int8, so the file is smaller than the default.
    all_int8 = workdir / "model_all_int8.tflite"
    code = main(["compress", "quantize", str(workdir / "classifier"), str(all_int8),
                 "--quantize", "int8", "--calibration-data", str(workdir / "train.tsv"),
                 "--num-calibration-examples", "8", "--max-seq-length", "12",
                 "--float-dense-layers", "0"])
    assert code == 0 and all_int8.stat().st_size < out.stat().st_size


def test_one_quantization_path_one_set_of_flags_one_calibration_format(workdir, capsys):
    """`compress quantize` and `export --format tflite` are one route: same flags, same file."""
    calibration = ["--calibration-data", str(workdir / "train.tsv"),
                   "--num-calibration-examples", "8", "--max-seq-length", "12", "--float-dense-layers", "0"]
    compressed, exported = workdir / "by_compress.tflite", workdir / "by_export.tflite"
    assert main(["compress", "quantize", str(workdir / "classifier"), str(compressed),
                 "--quantize", "int8", *calibration]) == 0
    assert main(["export", str(workdir / "classifier"), str(exported), "--format", "tflite",
                 "--quantize", "int8", *calibration]) == 0
    assert compressed.read_bytes() == exported.read_bytes()
    # The same texts as plain lines calibrate to the same file: one reader for every format.
    texts = [line.split("\t", 1)[1] for line in (workdir / "train.tsv").read_text().splitlines()[1:]]
    (workdir / "calibration.txt").write_text("\n".join(texts) + "\n")
    plain = workdir / "from_plain_text.tflite"
    assert main(["compress", "quantize", str(workdir / "classifier"), str(plain), "--quantize", "int8",
                 *calibration[2:], "--calibration-data", str(workdir / "calibration.txt")]) == 0
    assert plain.read_bytes() == compressed.read_bytes()
    # The old flag still works, with a note that it is deprecated.
    capsys.readouterr()
    old = workdir / "old_flag.tflite"
    with pytest.warns(DeprecationWarning, match="--mode"):
        assert main(["compress", "quantize", str(workdir / "classifier"), str(old), "--mode", "int8",
                     *calibration]) == 0
    assert "--mode is deprecated" in capsys.readouterr().err
    assert old.read_bytes() == compressed.read_bytes()


def test_qat_writes_a_full_int8_file_that_matches_the_qat_model(workdir, capsys):
    out = workdir / "qat"
    code = main(["compress", "qat", str(workdir / "classifier"), "--train",
                 str(workdir / "train.tsv"), "--dev", str(workdir / "train.tsv"),
                 "--output-dir", str(out), "--max-steps", "4", "--batch-size", "8",
                 "--max-seq-length", "12", "--calibration-batches", "2", "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "int8 file:" in printed and "dev accuracy:" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["task"] == "classify"
    assert {"dev_score_before", "dev_score_int8", "tflite_max_difference"} <= set(summary)
    assert summary["tflite_max_difference"] < 1e-3
    assert summary["tflite_bytes"] == (out / "model.tflite").stat().st_size
    assert list((out / "logs").rglob("events.out.tfevents.*"))
    # The trained float weights, as a task directory the other commands read.
    task = json.loads((out / "model" / "task.json").read_text())
    assert task["compressed_from"] == f"qat {workdir / 'classifier'}"
    assert task["max_seq_length"] == 12
    # Every dense layer of the file is int8.
    from electra_tf.export.tflite_export import tflite_interpreter

    interpreter = tflite_interpreter(str(out / "model.tflite"), use_xnnpack=False)
    dense = [op for op in interpreter._get_ops_details() if op["op_name"] == "FULLY_CONNECTED"]
    head = ElectraClassifier.from_pretrained(str(workdir / "classifier")).dense
    assert len(dense) == 1 + 4 * TINY["num_layers"] + (head is not None) + 1  # + the logits
    for op in dense:
        assert interpreter._get_tensor_details(op["inputs"][1], 0)["dtype"] == np.int8


def test_qat_after_pruning_keeps_the_zeros_and_can_distil(workdir):
    pruned = workdir / "pruned_for_qat"
    assert main(["compress", "prune", str(workdir / "classifier"), "--train",
                 str(workdir / "train.tsv"), "--output-dir", str(pruned), "--sparsity", "0.5",
                 "--max-steps", "2", "--batch-size", "8", "--max-seq-length", "12",
                 "--no-progress"]) == 0
    out = workdir / "pruned_qat"
    assert main(["compress", "qat", str(pruned / "model"), "--train", str(workdir / "train.tsv"),
                 "--output-dir", str(out), "--max-steps", "3", "--batch-size", "8",
                 "--learning-rate", "1e-2", "--distill-alpha", "0.5", "--teacher",
                 str(workdir / "classifier"), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kernel_sparsity_before"] > 0.45
    assert summary["kernel_sparsity_after"] >= summary["kernel_sparsity_before"]
    assert "soft_loss" in summary["history"]
    assert summary["teacher"] == str(workdir / "classifier")


def test_qat_refusals_leave_nothing_written(workdir, capsys):
    out = workdir / "qat_refused"
    code = main(["compress", "qat", str(workdir / "classifier"), "--train",
                 str(workdir / "train.tsv"), "--output-dir", str(out), "--teacher",
                 str(workdir / "classifier")])
    assert code == 2 and "--teacher" in capsys.readouterr().err
    code = main(["compress", "qat", str(workdir / "classifier"), "--train",
                 str(workdir / "missing.tsv"), "--output-dir", str(out)])
    assert code == 2 and "missing.tsv" in capsys.readouterr().err
    code = main(["compress", "qat", str(workdir / "classifier"), "--train",
                 str(workdir / "train.tsv"), "--output-dir", str(out), "--calibration-batches",
                 "0"])
    assert code == 2 and "calibration_batches" in capsys.readouterr().err
    assert not out.exists()
