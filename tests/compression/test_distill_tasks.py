"""`electra-tf compress distill` on tagger and QA teachers: the student is a full task directory
that `predict_tags` / `predict_qa` read, with the requested layers; bad input writes nothing."""

import os

import pytest
import task_dirs
from task_dirs import TAGS, read_json

from electra_tf.cli.main import main
from electra_tf.tasks.run_qa import predict_qa
from electra_tf.tasks.run_tagging import predict_tags
from electra_tf.tasks.task_model_io import MODEL_DIRNAME, load_task_model

COMMON = ["--num-layers", "1", "--max-steps", "2", "--batch-size", "8", "--no-progress"]


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill_tasks")
    with pytest.MonkeyPatch.context() as patch:  # 2-layer teachers, so a student is shallower
        patch.setitem(task_dirs.ENCODER, "num_layers", 2)
        return {**task_dirs.make_task_dirs(root), "root": root}


def test_distilled_tagger_is_a_task_directory_that_tags(dirs, capsys):
    out = dirs["root"] / "tagger_student"
    # No --dev here (the QA test scores one): tagging a dev file twice costs ~10 s.
    assert main(["compress", "distill", dirs["tag"], "--train", dirs["tag_data"],
                 "--output-dir", str(out), *COMMON]) == 0
    model_dir = str(out / MODEL_DIRNAME)
    student, _, task = load_task_model(model_dir, "tag")
    assert type(student).__name__ == "ElectraTokenClassifier" and student.encoder.num_layers == 1
    assert task["label_names"] == TAGS and task["max_seq_length"] == 16  # the teacher's
    assert task["num_layers"] == 1 and task["compressed_from"].startswith("distill /")
    summary = read_json(out / "summary.json")
    assert summary["task"] == "tag" and summary["steps"] == 2
    assert set(summary["history"]) == {"loss", "soft_loss", "hard_loss", "accuracy"}
    assert list((out / "logs").rglob("events.out.tfevents.*"))
    (dirs["root"] / "texts.txt").write_text("Anna Smith visited Paris\n")
    [prediction] = predict_tags(model_dir, str(dirs["root"] / "texts.txt"))
    assert prediction["tokens"] == ["Anna", "Smith", "visited", "Paris"]
    assert set(prediction["tags"]) <= set(TAGS)


def test_distilled_qa_model_is_a_task_directory_that_answers(dirs, capsys):
    out = dirs["root"] / "qa_student"
    assert main(["compress", "distill", dirs["qa"], "--train", dirs["qa_data"],
                 "--dev", dirs["qa_data"], "--output-dir", str(out), *COMMON]) == 0
    printed = capsys.readouterr().out
    assert "dev f1 (teacher)" in printed and "dev f1 (student)" in printed
    model_dir = str(out / MODEL_DIRNAME)
    student, _, task = load_task_model(model_dir, "qa")
    assert type(student).__name__ == "ElectraQuestionAnswering" and student.encoder.num_layers == 1
    assert (task["max_seq_length"], task["doc_stride"]) == (48, 16)  # the teacher's windows
    summary = read_json(out / "summary.json")
    assert summary["task"] == "qa" and summary["dev_score_name"] == "f1"
    assert 0.0 <= summary["dev_score_student"] <= 100.0  # SQuAD F1, in percent
    assert task["num_layers"] == 1 and task["compressed_from"].startswith("distill /")
    assert set(summary["history"]) == {"loss", "soft_loss", "hard_loss"}
    [answer] = predict_qa(model_dir, [{"question": "Who visited?",
                                       "context": "Anna Smith visited Paris in May."}])
    assert isinstance(answer["answer"], str) and "score" in answer


def test_bad_input_is_a_clear_error_and_writes_nothing(dirs, capsys):
    out = dirs["root"] / "never"
    cases = [
        # Augmentation makes copies of classification texts only.
        ([dirs["tag"], "--train", dirs["tag_data"], "--augment-copies", "1"],
         "augment_copies=1"),
        # A student deeper than its teacher.
        ([dirs["qa"], "--train", dirs["qa_data"], "--num-layers", "3"],
         "must be an integer in [1, 2]"),
        # Not a task directory.
        ([str(dirs["root"]), "--train", dirs["tag_data"]], "not an electra_tf model directory"),
        # Another task's data file.
        ([dirs["tag"], "--train", dirs["classify_data"]], "CoNLL"),
    ]
    for arguments, message in cases:
        assert main(["compress", "distill", *arguments, "--output-dir", str(out),
                     "--max-steps", "1"]) == 2
        assert message in capsys.readouterr().err
        assert not os.path.exists(out)
    # An existing output is refused before any data is read, and kept.
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    assert main(["compress", "distill", dirs["tag"], "--train", "missing.conll",
                 "--output-dir", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and os.listdir(out) == ["keep.txt"]
