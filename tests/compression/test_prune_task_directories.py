"""`electra-tf compress prune` / `run_prune` on tagger and QA directories, and the task_data API."""

import os

import pytest
from task_dirs import QA_SETTINGS, TAGS, make_task_dirs, read_json

from electra_tf.cli.main import main
from electra_tf.compression.compress import run_prune
from electra_tf.compression.task_data import (
    load_task_model_and_tokenizer,
    task_dataset,
    task_metrics,
)
from electra_tf.tasks.run_qa import predict_qa
from electra_tf.tasks.run_tagging import predict_tags
from electra_tf.tasks.task_model_io import load_task_model


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    return make_task_dirs(tmp_path_factory.mktemp("tasks"))


def assert_pruned_to(report, target):
    assert report["layers"]
    for row in report["layers"]:
        # One entry of a small kernel (the QA head's is 8x2) moves its sparsity by 1/size.
        assert row["sparsity"] == pytest.approx(target, abs=max(0.02, 1 / row["size"])), row


def test_prune_a_tagger_directory(dirs, tmp_path, capsys):
    out = tmp_path / "pruned"
    code = main(["compress", "prune", dirs["tag"], "--train", dirs["tag_data"],
                 "--output-dir", str(out), "--sparsity", "0.5", "--max-steps", "2",
                 "--batch-size", "4", "--no-progress"])
    assert code == 0
    assert "all pruned kernels" in capsys.readouterr().out
    assert_pruned_to(read_json(out / "sparsity.json"), 0.5)
    summary = read_json(out / "summary.json")
    assert summary["task"] == "tag" and summary["steps"] == 2
    assert (out / "sparsity.txt").is_file() and list((out / "logs").rglob("events.out.*"))
    # OUTPUT/model is a full task directory: it loads, keeps the tags, and predicts.
    model, _, task = load_task_model(str(out / "model"), "tag")
    assert task["label_names"] == TAGS and task["max_seq_length"] == 16
    assert task["compressed_from"] == f"prune {os.path.abspath(dirs['tag'])}"
    (tmp_path / "sentences.txt").write_text("Anna Smith visited Paris\n")
    [prediction] = predict_tags(str(out / "model"), str(tmp_path / "sentences.txt"))
    assert len(prediction["tags"]) == 4 and set(prediction["tags"]) <= set(TAGS)


def test_prune_a_qa_directory(dirs, tmp_path):
    out = tmp_path / "pruned"
    summary = run_prune(dirs["qa"], dirs["qa_data"], str(out), target_sparsity=0.6,
                        max_steps=2, batch_size=4, verbose=0, dev=dirs["qa_data"])
    assert summary["task"] == "qa" and summary["steps"] == 2
    assert summary["dev_score_name"] == "f1"  # SQuAD F1 of the model before and after
    assert 0.0 <= summary["dev_score_before"] <= 100.0
    assert 0.0 <= summary["dev_score_after"] <= 100.0
    assert_pruned_to(summary["sparsity"], 0.6)
    model, _, task = load_task_model(str(out / "model"), "qa")
    assert {key: task[key] for key in QA_SETTINGS} == QA_SETTINGS  # window settings kept
    assert task["compressed_from"].startswith("prune ")
    [answer] = predict_qa(str(out / "model"), [{"question": "Who visited Paris?",
                                                "context": "Anna Smith visited Paris."}])
    assert isinstance(answer["answer"], str)


def test_task_data_reads_a_classification_file_with_the_label_names(dirs):
    model, tokenizer, info = load_task_model_and_tokenizer(dirs["classify"])
    assert info["task"] == "classify" and info["label_names"] == ["neg", "pos"]
    data = task_dataset(info, model, tokenizer, dirs["classify_data"], batch_size=4)
    features, labels = next(iter(data))
    assert features["input_word_ids"].shape == (4, info["max_seq_length"])
    assert set(labels.numpy()) <= {0, 1}  # "neg"/"pos" in the file
    metrics = task_metrics(model, tokenizer, info, dirs["classify_data"])
    assert metrics["score_name"] == "accuracy" and metrics["score"] == metrics["accuracy"]


def test_tagger_dev_score_is_entity_f1(dirs):
    model, tokenizer, info = load_task_model_and_tokenizer(dirs["tag"])
    metrics = task_metrics(model, tokenizer, info, dirs["tag_data"])
    assert metrics["score_name"] == "f1" and metrics["score"] == metrics["f1"]
    assert set(metrics["per_type"]) == {"PER", "LOC"}


def test_bad_input_is_a_clear_error_and_writes_nothing(dirs, tmp_path):
    out = tmp_path / "never"
    cases = [
        # (model dir, train file, target sparsity, message)
        (str(tmp_path), dirs["tag_data"], 0.5, "not an electra_tf model directory"),
        (dirs["tag"], dirs["classify_data"], 0.5, "'tag' model reads a CoNLL file"),
        (dirs["qa"], dirs["tag_data"], 0.5, "not JSON"),
        (dirs["tag"], dirs["tag_data"], 1.0, r"\[0, 1\).*received 1.0"),
        (dirs["tag"], dirs["tag_data"], -0.5, r"\[0, 1\).*received -0.5"),
    ]
    for model_dir, train, target, message in cases:
        with pytest.raises(ValueError, match=message):
            run_prune(model_dir, train, str(out), target_sparsity=target, max_steps=1)
        assert not out.exists()
    with pytest.raises(ValueError, match="augments classification texts"):
        run_prune(dirs["tag"], dirs["tag_data"], str(out), distill_alpha=1.0, augment_copies=1)
    assert not out.exists()
