"""Fine-tuning flags are derived from the job configs' fields: one default, one help, one name."""

import argparse
import dataclasses

import pytest

from electra_tf.cli.config_arguments import config_fields, config_kwargs, flag_name
from electra_tf.cli.finetune_commands import add_subcommands
from electra_tf.tasks.finetuning_options import FinetuningDataOptions, FinetuningOptions
from electra_tf.tasks.run_finetuning import FinetuningConfig
from electra_tf.tasks.run_glue import GlueConfig
from electra_tf.tasks.run_qa import QAConfig
from electra_tf.tasks.run_tagging import TaggingConfig

CONFIGS = {"classify": FinetuningConfig, "qa": QAConfig, "tag": TaggingConfig, "glue": GlueConfig}
FILES = ["--encoder", "e", "--train", "t"]
REQUIRED = {"classify": FILES, "qa": FILES, "tag": FILES, "glue": ["--task", "rte", "--encoder", "e"]}


def parse(task, *argv):
    parser = argparse.ArgumentParser(prog="electra-tf")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["finetune", task, *REQUIRED[task], *argv])


def subparser(task):
    parser = argparse.ArgumentParser(prog="electra-tf")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    finetune = parser._subparsers._group_actions[0].choices["finetune"]
    return finetune._subparsers._group_actions[0].choices[task]


@pytest.mark.parametrize("task", sorted(CONFIGS))
def test_every_field_is_a_flag_and_every_default_is_the_configs(task):
    config_class = CONFIGS[task]
    flags = {option for action in subparser(task)._actions for option in action.option_strings}
    assert {flag_name(field) for field in config_fields(config_class)} <= flags
    assert {field.name for field in config_fields(config_class)} == {
        field.name for field in dataclasses.fields(config_class)}
    # Flags left out are not passed: the config's own defaults apply.
    kwargs = config_kwargs(parse(task), config_class)
    assert set(kwargs) == ({"task", "encoder"} if task == "glue" else {"encoder", "train"})
    assert config_class(**kwargs) == config_class(**kwargs)  # builds with the defaults


@pytest.mark.parametrize("task", ["classify", "qa", "tag"])
def test_every_job_shares_the_finetuning_options(task):
    config_class = CONFIGS[task]
    assert issubclass(config_class, FinetuningDataOptions)
    args = parse(task, "--max-seq-length", "64", "--batch-size", "8", "--weight-decay", "0",
                 "--warmup-proportion", "0.2", "--no-lower-case", "--seed", "3")
    config = config_class(**config_kwargs(args, config_class))
    assert (config.max_seq_length, config.batch_size, config.weight_decay,
            config.warmup_proportion, config.lower_case, config.seed) == (64, 8, 0, 0.2, False, 3)
    assert issubclass(GlueConfig, FinetuningOptions)


def test_job_defaults_that_differ_are_the_subclasses():
    # SQuAD windows are longer; GLUE takes ELECTRA's per-size rates and no weight decay.
    assert QAConfig(encoder="e", train="t").max_seq_length == 384
    assert FinetuningConfig(encoder="e", train="t").max_seq_length == 128
    glue = GlueConfig(task="rte", encoder="e")
    assert (glue.learning_rate, glue.weight_decay) == (None, 0.0)


@pytest.mark.parametrize("task", ["classify", "qa", "tag"])
def test_skip_bad_rows_still_works_with_a_note(task, capsys):
    config_class = CONFIGS[task]
    assert config_kwargs(parse(task, "--skip-bad-examples"), config_class)["errors"] == "skip"
    assert "is deprecated" not in capsys.readouterr().err
    assert config_kwargs(parse(task, "--skip-bad-rows"), config_class)["errors"] == "skip"
    assert "--skip-bad-rows is deprecated; use --skip-bad-examples" in capsys.readouterr().err


def test_qa_head_simple_still_works_with_a_note(capsys):
    args = parse("qa", "--head", "simple")
    assert QAConfig(**config_kwargs(args, QAConfig)).head == "huggingface"
    assert "--head simple is deprecated; use --head huggingface" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse("qa", "--head", "dense")


def test_help_shows_the_configs_defaults(capsys):
    with pytest.raises(SystemExit):
        parse("qa", "--help")
    text = " ".join(capsys.readouterr().out.split())
    assert "word pieces per window (default: 384)" in text
    assert "--skip-bad-rows" not in text  # deprecated aliases stay out of the help
