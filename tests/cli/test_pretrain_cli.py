"""`electra-tf vocab | prepare | pretrain | quickstart` as real subprocesses, tiny settings."""

import gzip
import json
import os
import subprocess
import sys

import pytest

from electra_tf.data.packaged_corpus import packaged_corpus

# Tiny model, short sequences, few steps: each run is dominated by the TF import.
TINY_RUN = ["--preset", "tiny", "--batch-size", "4", "--max-seq-length", "32",
            "--checkpoint-every", "2", "--log-every", "1", "--no-progress"]


def run_cli(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "electra_tf.cli.main", *map(str, args)],
        capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The first 2,000 lines of the packaged training novel, gzipped."""
    path = tmp_path_factory.mktemp("corpus") / "austen.txt.gz"
    with gzip.open(packaged_corpus("train"), "rt", encoding="utf-8") as f:
        lines = [next(f) for _ in range(2000)]
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(lines)
    return path


@pytest.fixture(scope="module")
def vocab(corpus, tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    result = run_cli("vocab", "--corpus", corpus, "--size", 400, path)
    assert result.returncode == 0, result.stderr
    assert "use it with --vocab" in result.stdout
    return path


def test_vocab_has_special_tokens_first_and_loads_in_the_tokenizer(vocab, corpus):
    from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer

    tokens = vocab.read_text(encoding="utf-8").split("\n")[:-1]
    assert tokens[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert 100 < len(tokens) <= 440 and len(set(tokens)) == len(tokens)
    tokenizer = ElectraTokenizer(vocab_path=str(vocab))
    assert (tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.mask_token_id) == (0, 1, 4)
    ids = tokenizer.tokenize("Catherine Morland was fond of all boy's plays.").numpy().tolist()
    assert ids and tokenizer.unk_token_id not in ids  # every character is in the vocabulary
    # An existing file is kept unless --overwrite.
    result = run_cli("vocab", "--corpus", corpus, "--size", 400, vocab)
    assert result.returncode == 2 and "already exists" in result.stderr
    assert "Traceback" not in result.stderr
    assert vocab.read_text(encoding="utf-8").split("\n")[:-1] == tokens
    assert not [p for p in os.listdir(vocab.parent) if p != "vocab.txt"]  # no temporary left


def test_prepare_then_pretrain_from_shards_resume_and_refusal(corpus, vocab, tmp_path):
    prefix = tmp_path / "shards" / "train"
    result = run_cli("prepare", "--corpus", corpus, "--output", prefix, "--max-seq-length", 32,
                     "--shards", 2, "--vocab", vocab)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(prefix.parent)) == ["train-00000-of-00002.tfrecord",
                                                 "train-00001-of-00002.tfrecord"]
    assert f"--corpus '{prefix}-*.tfrecord'" in result.stdout

    out = tmp_path / "run"
    pretrain = ["pretrain", "--corpus", f"{prefix}*.tfrecord", "--vocab", vocab,
                "--output-dir", out, *TINY_RUN]
    result = run_cli(*pretrain, "--steps", 4)
    assert result.returncode == 0, result.stderr
    assert "to step 4" in result.stdout and "rtd_auc" in result.stdout
    for name in ("discriminator", "discriminator_hf", "generator", "learning_curves.png"):
        assert name in result.stdout and (out / name).exists()
    with open(out / "history.json") as f:
        assert json.load(f)["config"]["corpus"].endswith("*.tfrecord")

    # Checkpoints present: --no-resume refuses and deletes nothing.
    result = run_cli(*pretrain, "--steps", 6, "--no-resume")
    assert result.returncode == 2, result.stderr
    assert "--no-resume" in result.stderr and "step 4" in result.stderr
    assert "Traceback" not in result.stderr
    assert os.listdir(out / "checkpoints" / "chief")

    # The same command with more steps continues where the first run stopped.
    result = run_cli(*pretrain, "--steps", 6)
    assert result.returncode == 0, result.stderr
    assert "to step 6, resumed from step 4: 2 steps" in result.stdout


def test_quickstart_trains_and_reports_held_out_rtd_metrics(tmp_path):
    out = tmp_path / "quickstart"
    result = run_cli("quickstart", "--output", out, "--steps", 3)
    assert result.returncode == 0, result.stderr
    # --output, the flag's earlier name, still works, with a note.
    assert "--output is deprecated; use --output-dir" in result.stderr
    assert "pretraining:" in result.stderr  # the progress bar
    for metric in ("rtd_accuracy", "rtd_precision", "rtd_recall", "rtd_auc"):
        assert metric in result.stdout
    assert "persuasion" in result.stdout
    with open(out / "evaluation.json") as f:
        report = json.load(f)
    assert report["pretraining"]["step"] == 3
    assert 0.0 <= report["held_out"]["rtd_auc"] <= 1.0
    assert (out / "discriminator" / "model.weights.h5").exists()


def test_shards_of_another_length_are_exit_2_before_anything_is_written(tmp_path):
    import tensorflow as tf

    shard = tmp_path / "train-00000-of-00001.tfrecord"
    features = {name: tf.train.Feature(int64_list=tf.train.Int64List(value=[101] + [1] * 14 + [102]))
                for name in ("input_word_ids", "input_mask", "input_type_ids")}
    with tf.io.TFRecordWriter(str(shard)) as writer:
        writer.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
    out = tmp_path / "run"
    result = run_cli("pretrain", "--corpus", shard, "--output", out, "--steps", 2, *TINY_RUN)
    assert result.returncode == 2
    # --output, the flag's earlier name, still works, with a note.
    assert "electra-tf pretrain: note: --output is deprecated; use --output-dir" in result.stderr
    assert (f"electra-tf pretrain: error: Shard '{shard}': record 0 holds 16 input_word_ids "
            "values; expected 32 (--max-seq-length 32)") in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("command", [
    ["pretrain", "--steps", "2", "--output-dir", "{tmp}/run"],
    ["prepare", "--output", "{tmp}/shards/train"],
    ["vocab", "--size", "100", "{tmp}/vocab.txt"],
])
def test_a_glob_matching_nothing_is_exit_2_naming_the_glob(command, tmp_path):
    glob = str(tmp_path / "no_such_dir" / "*.txt.gz")
    result = run_cli(command[0], "--corpus", glob,
                     *[arg.format(tmp=tmp_path) for arg in command[1:]])
    assert result.returncode == 2
    assert f"electra-tf {command[0]}: error: No files match '{glob}'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "vocab.txt").exists() and not (tmp_path / "shards").exists()


def test_pretrain_in_batch_parts_with_one_thread_per_op(corpus, vocab, tmp_path):
    out = tmp_path / "parts"
    result = run_cli("pretrain", "--corpus", corpus, "--vocab", vocab, "--output-dir", out, *TINY_RUN,
                     "--steps", 2, "--batch-parts", 2, "--intra-op-threads", 1, "--inter-op-threads", 2)
    assert result.returncode == 0, result.stderr
    # The pools are read back from TensorFlow after the run: set before its first op, they held.
    assert "Each step in 2 batch part(s); TensorFlow threads: intra-op 1, inter-op 2." in result.stdout
    assert "to step 2" in result.stdout
    config = json.loads((out / "history.json").read_text())["config"]
    assert (config["batch_parts"], config["intra_op_threads"], config["inter_op_threads"]) == (2, 1, 2)

    for flags, message in ((["--batch-parts", 0], "received batch_parts=0"),
                           (["--intra-op-threads", -1], "received intra_op_threads=-1")):
        bad_out = tmp_path / f"bad{flags[0]}"
        result = run_cli("pretrain", "--corpus", corpus, "--vocab", vocab, "--output-dir", bad_out,
                         *TINY_RUN, "--steps", 2, *flags)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        assert not bad_out.exists()
