"""benchmarks/width_parts_serving.py: the plain and the width-parts export of a classifier,
each setting timed in a fresh process with the threads it names, the same probabilities from
both, the ratios printed and recorded with the machine; bad counts refused."""

import json
import os
import re

import pytest
from benchmark_scripts import load_benchmark
from conftest import TINY

from electra_tf import ElectraClassifier, ElectraEncoder


@pytest.fixture(scope="module")
def benchmark():
    return load_benchmark("width_parts_serving")


def test_each_setting_runs_in_its_own_process_with_its_threads(benchmark, tmp_path, capsys):
    classifier_dir = str(tmp_path / "classifier")
    encoder = ElectraEncoder(**dict(TINY, vocab_size=30522, max_sequence_length=64))
    classifier = ElectraClassifier(encoder, num_classes=2)
    classifier(_inputs())
    classifier.save_pretrained(classifier_dir)
    out = tmp_path / "results"
    benchmark.main(["--classifier", classifier_dir, "--reviews", "3", "--rounds", "2",
                    "--max-seq-length", "32", "--output-dir", str(out)])
    record = json.loads((out / "results.json").read_text())
    figures = record["figures"]
    assert set(figures) == {"default threads", "one thread", "2 width parts"}
    assert figures["one thread"]["threads"] == [1, 1]
    assert figures["2 width parts"]["threads"] == [1, 2]
    for figure in figures.values():
        assert len(figure["turn_medians"]) == 2 and figure["ms_per_review"] > 0
    width = figures["2 width parts"]
    for name in ("default threads", "one thread"):
        assert width[f"vs {name}"] == pytest.approx(
            figures[name]["ms_per_review"] / width["ms_per_review"])
    assert record["max_abs_probability_difference"] < 1e-5
    assert "cpu_model" in record["machine"] and record["model"]["num_layers"] == TINY["num_layers"]
    assert not any(name.endswith("_saved_model") for name in os.listdir(out))  # removed
    printed = capsys.readouterr().out
    assert re.search(r"2 width parts +[0-9.]+ ms a review +\(threads \[1, 2\]\) vs default "
                     r"threads [0-9.]+x, vs one thread [0-9.]+x", printed), printed


def _inputs():
    import tensorflow as tf

    return {"input_word_ids": tf.constant([[101, 102]]), "input_mask": tf.ones([1, 2], tf.int32),
            "input_type_ids": tf.zeros([1, 2], tf.int32)}


@pytest.mark.parametrize("flag", ["--width-parts", "--rounds", "--reviews"])
def test_bad_counts_are_refused(benchmark, flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        benchmark.parse_args([flag, "0"])
    assert exit_info.value.code == 2
    assert f"{flag} must be >= 1; received 0" in capsys.readouterr().err
