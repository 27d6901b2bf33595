"""Training options of the jobs: gradient accumulation, bfloat16, MirroredStrategy, and their flags."""

import csv
import json
import warnings

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from conftest import TINY, make_inputs

from electra_tf import ElectraEncoder
from electra_tf.cli import main as cli
from electra_tf.pretraining.run_pretraining import PretrainingConfig, run_pretraining
from electra_tf.tasks.electra_classifier import ElectraClassifier
from electra_tf.tasks.run_finetuning import FinetuningConfig, run_finetuning
from electra_tf.tasks.run_qa import QAConfig
from electra_tf.tasks.run_tagging import TaggingConfig

WORDS = ["good", "great", "fine", "bad", "awful", "dull", "film", "plot", "the", "a", "."]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS


# --- (1) k micro-batches make the update of one k-times-larger batch ---

def _classifier_data(rows):
    features = make_inputs(batch_size=rows, seq_length=9, seed=1)
    labels = np.random.default_rng(2).integers(0, 3, size=rows)
    return features, labels


def test_accumulated_micro_batches_make_the_large_batch_update():
    # 14 rows in batches of 8: a full batch and a short one of 6, which k=4 cuts into
    # micro-batches of 1, 2, 1, 2 rows, weighted by their share of the batch.
    features, labels = _classifier_data(14)
    keras.utils.set_random_seed(0)
    reference = ElectraClassifier(ElectraEncoder(**TINY), num_classes=3, dropout_rate=0.0)
    models = {}
    for steps in (1, 4):
        model = ElectraClassifier(ElectraEncoder(**TINY), num_classes=3, dropout_rate=0.0)
        model.set_weights(reference.get_weights())
        # SGD moves by the gradient itself, so a sum in place of the mean or a wrong
        # weighting shows (Adam would hide a scale). The fine-tuning AdamW (layer-wise
        # rates, schedule, clipping) is compared in test_mirrored_job_matches_one_device.
        model.compile(optimizer=keras.optimizers.SGD(0.5), gradient_accumulation_steps=steps)
        model.fit(features, labels, batch_size=8, epochs=1, shuffle=False, verbose=0)
        models[steps] = model
    # One optimizer update per batch, not per micro-batch: schedules count updates.
    assert int(models[1].optimizer.iterations) == int(models[4].optimizer.iterations) == 2
    moved = 0.0
    for whole, accumulated, start in zip(models[1].weights, models[4].weights,
                                         reference.weights):
        np.testing.assert_allclose(accumulated.numpy(), whole.numpy(), rtol=0, atol=1e-5,
                                   err_msg=whole.name)
        moved = max(moved, float(np.abs(whole.numpy() - start.numpy()).max()))
    assert moved > 1e-3  # the updates are far larger than the tolerance


def test_accumulation_steps_are_validated():
    model = ElectraClassifier(ElectraEncoder(**TINY), num_classes=2)
    for bad in (0, 2.0, "2", True):
        with pytest.raises(ValueError, match="`gradient_accumulation_steps` must be an integer"):
            model.compile(gradient_accumulation_steps=bad)
    for config_class in (FinetuningConfig, QAConfig, TaggingConfig):
        with pytest.raises(ValueError, match="received -1"):
            config_class(encoder="e", train="t", gradient_accumulation_steps=-1)


# --- jobs on a tiny electra_tf encoder ---

@pytest.fixture
def encoder_dir(tmp_path):
    keras.utils.set_random_seed(0)
    path = tmp_path / "encoder"
    ElectraEncoder(**{**TINY, "vocab_size": len(VOCAB)}).save_pretrained(str(path))
    (path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    return str(path)


@pytest.fixture
def train_file(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(16):
        label = int(rng.integers(0, 2))
        rows.append(f"{label}\tthe film was {rng.choice(WORDS[:3] if label else WORDS[3:6])} .")
    (tmp_path / "train.tsv").write_text("label\ttext\n" + "\n".join(rows) + "\n")
    return str(tmp_path / "train.tsv")


def _job(encoder_dir, train_file, output_dir, **options):
    config = FinetuningConfig(encoder=encoder_dir, train=train_file, output_dir=output_dir,
                              max_seq_length=12, epochs=1, learning_rate=1e-3, dropout_rate=0.0,
                              log_every=1, progress=False, **options)
    return run_finetuning(config)


def _saved_classifier(output_dir):
    return ElectraClassifier.from_pretrained(f"{output_dir}/model")


# --- (2) bfloat16 stays finite, on float32 weights ---

def test_bfloat16_finetuning_with_accumulation_is_finite(encoder_dir, train_file, tmp_path):
    output_dir = str(tmp_path / "bf16")
    summary = _job(encoder_dir, train_file, output_dir, batch_size=4,
                   gradient_accumulation_steps=2, mixed_precision="bfloat16")
    assert keras.mixed_precision.global_policy().name == "float32"  # the caller's, back
    assert np.isfinite(summary["history"]["loss"]).all()
    with open(f"{output_dir}/history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(row["step"]) for row in rows] == [1, 2]  # 16 rows / (4 × 2): updates, logged
    assert np.isfinite([float(row["loss"]) for row in rows]).all()
    with open(f"{output_dir}/model/config.json") as f:
        saved = json.load(f)["config"]
    # The encoder was saved in float32 and fine-tuned in bfloat16 (load_encoder rebuilds it).
    assert saved["dtype"] == "mixed_bfloat16" and saved["encoder"]["config"]["dtype"] == "mixed_bfloat16"
    classifier = _saved_classifier(output_dir)
    assert all(w.dtype == tf.float32 for w in classifier.weights)
    assert all(np.isfinite(w.numpy()).all() for w in classifier.weights)


def test_bfloat16_pretraining_is_finite(tmp_path):
    from conftest import packaged_corpus

    config = PretrainingConfig(
        corpus=packaged_corpus("train"), output_dir=str(tmp_path / "run"), preset="tiny",
        model_overrides={"num_layers": 1}, max_seq_length=32, batch_size=4, steps=3,
        warmup_steps=1, checkpoint_every=3, log_every=1, shuffle_buffer=16, strategy="default",
        mixed_precision="bfloat16", progress=False)
    run_pretraining(config)
    assert keras.mixed_precision.global_policy().name == "float32"
    with open(tmp_path / "run" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    for key in ("loss", "mlm_loss", "rtd_loss"):
        assert np.isfinite([float(row[key]) for row in rows]).all(), key
    with open(tmp_path / "run" / "discriminator" / "config.json") as f:
        assert json.load(f)["config"]["dtype"] == "mixed_bfloat16"


# --- (3) two replicas make one device's run ---

def test_mirrored_job_matches_one_device(encoder_dir, train_file, tmp_path):
    # One device: batches of 8. Two logical CPUs (conftest) with 2 micro-batches of 4 per
    # update: each replica runs two micro-batches of 2, so the update sees the same 8 rows.
    one = _job(encoder_dir, train_file, str(tmp_path / "one"), batch_size=8, strategy="default")
    two = _job(encoder_dir, train_file, str(tmp_path / "two"), batch_size=4, strategy="mirrored",
               gradient_accumulation_steps=2)
    # Only the order of float32 sums differs (across replicas and micro-batches): ~1e-7
    # relative on the gradients. AdamW's step is lr · m / (sqrt(v) + 1e-6) with lr = 1e-3, so
    # even a gradient near epsilon moves its step by ≪ 1e-5 over the 2 updates.
    np.testing.assert_allclose(two["history"]["loss"], one["history"]["loss"], rtol=1e-5)
    single = _saved_classifier(str(tmp_path / "one"))
    mirrored = _saved_classifier(str(tmp_path / "two"))
    for whole, replicated in zip(single.weights, mirrored.weights, strict=True):
        np.testing.assert_allclose(replicated.numpy(), whole.numpy(), rtol=0, atol=1e-5,
                                   err_msg=whole.name)
    start = ElectraEncoder.from_pretrained(encoder_dir).get_weights()
    moved = max(float(np.abs(after - before).max())
                for after, before in zip(single.encoder.get_weights(), start))
    assert moved > 1e-4  # the runs trained: equality is not two untouched copies


# --- (4) the flags reach the configs; bad values are refused clearly ---

@pytest.mark.parametrize("task, module, job, config_class", [
    ("classify", "electra_tf.tasks.run_finetuning", "run_finetuning", FinetuningConfig),
    ("qa", "electra_tf.tasks.run_qa", "run_qa", QAConfig),
    ("tag", "electra_tf.tasks.run_tagging", "run_tagging", TaggingConfig),
])
def test_finetune_flags_reach_the_config(task, module, job, config_class, monkeypatch, capsys):
    import importlib

    received = []
    job_module = importlib.import_module(module)
    monkeypatch.setattr(job_module, job, lambda config: received.append(config))
    for formatter in ("format_summary", "format_tagging_summary"):
        monkeypatch.setattr(job_module, formatter, lambda summary: "", raising=False)
    common = ["finetune", task, "--encoder", "enc", "--train", "train"]
    cli.main(common + ["--strategy", "mirrored", "--mixed-precision", "bfloat16",
                       "--gradient-accumulation-steps", "4"])
    cli.main(common)
    flagged, default = received
    assert isinstance(flagged, config_class)
    assert (flagged.strategy, flagged.mixed_precision, flagged.gradient_accumulation_steps) == (
        "mirrored", "bfloat16", 4)
    assert flagged.examples_per_update == 4 * flagged.batch_size
    assert (default.strategy, default.mixed_precision, default.gradient_accumulation_steps) == (
        "auto", None, 1)
    for bad, message in ((["--mixed-precision", "fp16"], "invalid choice: 'fp16'"),
                         (["--gradient-accumulation-steps", "0"], "expected an integer >= 1"),
                         (["--gradient-accumulation-steps", "two"], "expected an integer >= 1"),
                         (["--strategy", "gpu"], "invalid choice: 'gpu'")):
        with pytest.raises(SystemExit):
            cli.main(common + bad)
        assert message in capsys.readouterr().err


def test_pretrain_mixed_precision_flag_and_config(monkeypatch, capsys):
    from electra_tf.pretraining import pretrain

    received = []
    monkeypatch.setattr(pretrain, "pretrain", lambda config, resume: received.append(config))
    monkeypatch.setattr(pretrain, "format_summary", lambda summary: "")
    for flag in (["--mixed-precision", "bfloat16"], ["--mixed-precision"], []):
        cli.main(["pretrain", "--corpus", "c.txt"] + flag)
    assert [config.mixed_precision for config in received] == ["bfloat16", "float16", None]
    with pytest.raises(SystemExit):
        cli.main(["pretrain", "--corpus", "c.txt", "--mixed-precision", "float8"])
    assert "invalid choice: 'float8'" in capsys.readouterr().err

    # Old configs: True/False still work, with a deprecation note; True is float16.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert PretrainingConfig(corpus="c", mixed_precision=True).mixed_precision == "float16"
        assert PretrainingConfig(corpus="c", mixed_precision=False).mixed_precision is None
    assert [w.category for w in caught] == [DeprecationWarning] * 2
    assert "deprecated; pass 'float16'" in str(caught[0].message)
    with pytest.raises(ValueError, match="one of 'float16', 'bfloat16' or None .*'fp8'"):
        PretrainingConfig(corpus="c", mixed_precision="fp8")
    with pytest.raises(ValueError, match="one of 'float16', 'bfloat16' or None .*'half'"):
        FinetuningConfig(encoder="e", train="t", mixed_precision="half")
    with pytest.raises(ValueError, match="`strategy` must be one of auto, default"):
        TaggingConfig(encoder="e", train="t", strategy="gpu")
