"""`electra-tf finetune glue`: flags map onto GlueConfig; bad input exits with a clear error."""

import argparse

import pytest

from electra_tf.cli.finetune_commands import add_subcommands
from electra_tf.cli.main import main


def parser():
    parser = argparse.ArgumentParser(prog="electra-tf")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    return parser


def test_arguments_map_onto_the_config(monkeypatch, capsys):
    seen = {}

    def fake_run(config):
        seen["config"] = config
        return {"task": config.task, "metric_names": ["accuracy"],
                "seeds": [{"seed": 0, "metrics": {"accuracy": 0.5}}],
                "median": {"accuracy": 0.5}, "submission": None,
                "config": {"output_dir": config.output_dir}}

    monkeypatch.setattr("electra_tf.tasks.run_glue.run_glue", fake_run)
    args = parser().parse_args([
        "finetune", "glue", "--task", "rte", "--encoder", "enc", "--seeds", "3",
        "--learning-rate", "2e-4", "--epochs", "2", "--output-dir", "runs/rte",
        "--no-submission",
    ])
    args.run(args)
    config = seen["config"]
    assert (config.task, config.encoder, config.seeds, config.output_dir) == (
        "rte", "enc", 3, "runs/rte")
    assert config.learning_rate == 2e-4 and config.epochs == 2 and config.submission is False
    # Unset flags keep the paper's defaults (None: resolved by model size and task).
    assert config.layer_decay is None and config.batch_size == 32
    assert config.weight_decay == 0.0 and config.max_seq_length == 128
    assert "median" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--task", "ax"], "expected one of cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli"),
    (["--task", "rte", "--seeds", "0"], "`seeds` must be >= 1"),
])
def test_bad_input_is_a_clear_error(argv, message, capsys):
    assert main(["finetune", "glue", "--encoder", "enc", *argv]) == 2
    assert message in capsys.readouterr().err


def test_finetune_lists_glue(capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["finetune", "--help"])
    assert "{classify,qa,tag,glue}" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # no `evaluate glue`: finetune glue scores the dev set
        parser().parse_args(["evaluate", "glue"])
