"""The `electra-tf` console script, run as a real subprocess."""

import json
import os
import subprocess
import sys

import pytest

transformers = pytest.importorskip("transformers")


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "electra_tf.cli.main", *args],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def test_convert_huggingface_to_electra_tf_and_back(tmp_path):
    config = transformers.ElectraConfig(vocab_size=30, embedding_size=4, hidden_size=8,
                                        num_hidden_layers=1, num_attention_heads=2,
                                        intermediate_size=16, max_position_embeddings=12)
    transformers.ElectraForPreTraining(config).save_pretrained(str(tmp_path / "hf"))
    result = run_cli("convert", "--from", "huggingface", "--to", "electra_tf",
                     str(tmp_path / "hf"), str(tmp_path / "ours"))
    assert result.returncode == 0, result.stderr
    assert "ElectraDiscriminator" in result.stdout
    with open(tmp_path / "ours" / "config.json") as f:
        assert json.load(f)["class_name"].endswith("ElectraDiscriminator")
    result = run_cli("convert", "--from", "electra_tf", "--to", "huggingface",
                     str(tmp_path / "ours"), str(tmp_path / "back"))
    assert result.returncode == 0, result.stderr
    transformers.ElectraForPreTraining.from_pretrained(str(tmp_path / "back"))
    # Existing output: a clear error, exit 2, nothing touched.
    result = run_cli("convert", "--from", "electra_tf", "--to", "huggingface",
                     str(tmp_path / "ours"), str(tmp_path / "back"))
    assert result.returncode == 2 and "already exists" in result.stderr
    assert "Traceback" not in result.stderr


def test_google_conversion_needs_a_config(tmp_path):
    result = run_cli("convert", "--from", "google", "--to", "huggingface",
                     str(tmp_path / "ckpt"), str(tmp_path / "out"))
    assert result.returncode == 2 and "--config" in result.stderr
    assert not (tmp_path / "out").exists()


def test_presets_lists_sizes():
    result = run_cli("presets")
    assert result.returncode == 0
    assert "small_paper" in result.stdout and "13,549,057" in result.stdout
