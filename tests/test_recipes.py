"""One recipe per task: the CLI, the README, the examples and the benchmark agree.

The classification recipe is `FinetuningConfig`'s defaults; `electra-tf
finetune classify` leaves flags it was not given to them, the example and the
benchmark behind the README's headline figure read them, and the README's
Python snippet spells them out. The QA recipe is `QAConfig`'s, read the same
way by the CLI and examples/finetune_squad.py.
"""

import importlib.util
import os
import re

import pytest

import electra_tf
from electra_tf.cli.main import build_parser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSIFY = electra_tf.FinetuningConfig(encoder="-", train="-")
QA = electra_tf.QAConfig(encoder="-", train="-")


def _module(relative_path):
    path = os.path.join(ROOT, relative_path)
    spec = importlib.util.spec_from_file_location(
        "recipe_" + os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _parsed_config(argv, make_config):
    """The config a `finetune` command line builds (flags left out keep the config's defaults)."""
    from electra_tf.cli.config_arguments import config_kwargs

    args = build_parser().parse_args(argv)
    return make_config(**config_kwargs(args, make_config))


def test_the_classification_recipe_is_the_measured_one():
    assert (CLASSIFY.learning_rate, CLASSIFY.layer_decay, CLASSIFY.epochs, CLASSIFY.batch_size,
            CLASSIFY.warmup_proportion, CLASSIFY.max_seq_length) == (2e-4, 0.9, 3, 32, 0.1, 128)


def test_finetune_classify_defaults_are_the_recipe():
    config = _parsed_config(["finetune", "classify", "--encoder", "e", "--train", "t.tsv"],
                            electra_tf.FinetuningConfig)
    for field in ("learning_rate", "layer_decay", "epochs", "batch_size", "warmup_proportion",
                  "weight_decay", "max_seq_length", "dropout_rate"):
        assert getattr(config, field) == getattr(CLASSIFY, field), field


def test_finetune_qa_defaults_are_the_qa_recipe():
    config = _parsed_config(["finetune", "qa", "--encoder", "e", "--train", "t.json"],
                            electra_tf.QAConfig)
    for field in ("learning_rate", "layer_decay", "epochs", "batch_size", "max_seq_length",
                  "doc_stride", "max_query_length", "head"):
        assert getattr(config, field) == getattr(QA, field), field


def test_sentiment_benchmark_runs_the_recipe_at_48_pieces(monkeypatch):
    benchmark = _module("benchmarks/finetune_sentiment.py")
    monkeypatch.setattr("sys.argv", ["finetune_sentiment.py"])
    args = benchmark.parse_args()
    assert (args.learning_rate, args.layer_decay, args.epochs, args.batch_size,
            args.warmup_proportion, args.weight_decay, args.dropout_rate) == (
        CLASSIFY.learning_rate, CLASSIFY.layer_decay, CLASSIFY.epochs, CLASSIFY.batch_size,
        CLASSIFY.warmup_proportion, CLASSIFY.weight_decay, CLASSIFY.dropout_rate)
    assert args.max_seq_length == 48  # the one documented difference: CPU time


def test_examples_read_the_recipes(monkeypatch):
    sentiment = _module("examples/finetune_sentiment.py")
    squad = _module("examples/finetune_squad.py")
    assert sentiment.RECIPE == CLASSIFY and squad.RECIPE == QA
    # Their defaults come from the recipes: parse the command lines without running them.
    import argparse

    seen = []
    original = argparse.ArgumentParser.parse_args

    def capture(self, args=None, namespace=None):
        seen.append(original(self, args, namespace))
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    for module, argv in ((sentiment, []), (squad, ["--encoder", "e", "--train", "t.json"])):
        with pytest.raises(SystemExit):
            module.main(argv)
    sentiment_args, squad_args = seen
    assert (sentiment_args.learning_rate, sentiment_args.layer_decay, sentiment_args.epochs,
            sentiment_args.batch_size, sentiment_args.max_seq_length) == (
        CLASSIFY.learning_rate, CLASSIFY.layer_decay, CLASSIFY.epochs, CLASSIFY.batch_size,
        CLASSIFY.max_seq_length)
    assert (squad_args.learning_rate, squad_args.epochs, squad_args.max_seq_length,
            squad_args.doc_stride, squad_args.head) == (
        QA.learning_rate, QA.epochs, QA.max_seq_length, QA.doc_stride, QA.head)


def test_readme_snippet_and_headline_use_the_recipe():
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    call = re.search(r"create_finetuning_optimizer\(\s*([0-9.e-]+),.*?layer_decay=([0-9.]+)\)",
                     readme, re.S)
    assert call, "the README's fine-tuning snippet no longer calls create_finetuning_optimizer"
    assert (float(call.group(1)), float(call.group(2))) == (
        CLASSIFY.learning_rate, CLASSIFY.layer_decay)
    headline = readme[readme.index("| all-MiniLM-L6-v2, pretrained |"):]
    recipe = headline[:headline.index("\n\n", headline.index("Trained"))]
    written = " ".join(recipe.split())  # the README wraps its lines
    learning_rate = f"{CLASSIFY.learning_rate:.0e}".replace("e-0", "e-")  # 2e-4
    assert f"lr {learning_rate}, layer decay {CLASSIFY.layer_decay}" in written
    assert "--max-seq-length 48" in recipe
