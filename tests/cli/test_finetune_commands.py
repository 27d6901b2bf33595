"""`electra-tf finetune`, parsed by the module the main CLI wires in."""

import argparse

import pytest

from electra_tf.cli.finetune_commands import add_subcommands


def parser():
    parser = argparse.ArgumentParser(prog="electra-tf")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    return parser


def test_arguments_map_onto_the_config(monkeypatch):
    seen = {}

    def fake_run(config):
        seen["config"] = config
        return {"train_examples": 1, "train_seconds": 0.0, "train_skipped": {},
                "history": {"loss": [0.5]}, "dev": {"accuracy": 1.0},
                "config": {"output_dir": config.output_dir}}

    monkeypatch.setattr("electra_tf.tasks.run_finetuning.run_finetuning", fake_run)
    args = parser().parse_args([
        "finetune", "classify", "--encoder", "enc", "--train", "t.tsv", "--dev", "d.tsv",
        "--text-b-column", "text_b", "--label-names", "neg,pos", "--epochs", "2",
        "--learning-rate", "3e-4", "--skip-bad-rows", "--no-lower-case", "--head", "huggingface",
    ])
    args.run(args)
    config = seen["config"]
    assert (config.encoder, config.train, config.dev, config.text_b_column) == (
        "enc", "t.tsv", "d.tsv", "text_b")
    assert config.label_names == ["neg", "pos"] and config.epochs == 2
    assert config.learning_rate == 3e-4 and config.errors == "skip"
    assert config.lower_case is False and config.head == "huggingface"
    assert config.batch_size == 32  # unset options keep the config's defaults


def test_required_arguments():
    with pytest.raises(SystemExit):
        parser().parse_args(["finetune", "classify", "--train", "t.tsv"])
