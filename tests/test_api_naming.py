"""One naming vocabulary everywhere (STYLE.md §3): signatures match docstrings, no aliases.

Model classes, job configs (every dataclass under electra_tf.tasks, .pretraining and
.compression) and command-line flags (every subcommand of `electra-tf`) share one name per
concept. Two lengths are kept apart on purpose:
    max_sequence_length   a model's capacity: the encoder's position table (keras-hub's name);
                          only model classes and their configs take it
    max_seq_length        a job's packed input length (--max-seq-length): jobs, configs, flags,
                          preprocessing; it must be <= the encoder's max_sequence_length
Special token ids are `*_token_id` (keras-hub's names) in every public function, method and
attribute, and a command that creates a directory takes it as --output-dir.
A renamed name may stay only as a deprecated alias that warns (a DeprecationWarning in Python,
a note on stderr for a flag).
"""

import argparse
import dataclasses
import importlib
import inspect
import pkgutil
import re

import pytest

import electra_tf
from electra_tf.optimization.layerwise_decay_adamw import LayerwiseDecayAdamW
from electra_tf.optimization.warmup_linear_decay import WarmupLinearDecay
from electra_tf.preprocessing.electra_packer import ElectraPacker
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
from electra_tf.pretraining.electra_pretrainer import ElectraPretrainer
from electra_tf.pretraining.masked_lm_pretrainer import MaskedLMPretrainer
from electra_tf.serving.dynamic_batcher import DynamicBatcher
from electra_tf.serving.served_model import ServedModel
from electra_tf.serving.serving_config import ServingConfig
from electra_tf.serving.serving_metrics import ServingMetrics

# Config dataclasses (ElectraConfig, PretrainingConfig, ...) document their fields with comments.
PUBLIC_CLASSES = [getattr(electra_tf, name) for name in electra_tf.__all__
                  if inspect.isclass(getattr(electra_tf, name))
                  and not dataclasses.is_dataclass(getattr(electra_tf, name))] + [
    ElectraTokenizer, ElectraPacker, ElectraPretrainer, MaskedLMPretrainer, WarmupLinearDecay,
    LayerwiseDecayAdamW, DynamicBatcher, ServedModel, ServingConfig, ServingMetrics,
]

# Names other libraries use for the same things; we use the TF-Hub/Model Garden ones.
ALIASES = {
    "vocabulary_size": "vocab_size",
    "num_hidden_layers": "num_layers",
    "num_attention_heads": "num_heads",
    "intermediate_dim": "intermediate_size",
    "hidden_dim": "hidden_size",
    "embedding_dim": "embedding_size",
    "max_position_embeddings": "max_sequence_length",
    "hidden_dropout_prob": "dropout_rate",
    "dropout": "dropout_rate",
    "layer_norm_eps": "layer_norm_epsilon",
    "input_ids": "input_word_ids",
    "attention_mask": "input_mask",
    "token_type_ids": "input_type_ids",
    "num_labels": "num_classes",  # keras-hub's name; transformers' configs say num_labels
    "seq_length": "max_seq_length",
    **{f"{token}_id": f"{token}_token_id" for token in ("mask", "cls", "sep", "pad", "unk")},
}
# Special token ids: keras-hub's `*_token_id` in every public function, method and
# attribute; the short forms of earlier versions live on only as warning aliases
# (`electra_tf.utils.renamed_arguments`).
TOKEN_ID_ALIASES = {f"{token}_id": f"{token}_token_id"
                    for token in ("mask", "cls", "sep", "pad", "unk")}
# A job's packed input length is `max_seq_length` in every public function and method;
# `seq_length` lives on only as a warning alias. Two pure tensor helpers take the length of
# a tensor's sequence axis (T, often `tf.shape(x)[1]`), not a configured maximum: they
# call it `sequence_length` (their old `seq_length=` warns too).
SEQ_LENGTH_RENAMES = {
    "electra_tf.models.electra_encoder.directional_attention_bias": "sequence_length",
    "electra_tf.preprocessing.masking.positions_to_mask": "sequence_length",
}
# Where `seq_length` stays on purpose: the TF-Hub preprocessor's own interface
# (`preprocessor.bert_pack_inputs(segments, seq_length=...)` and its `seq_length` variable),
# which lives inside the SavedModel as a nested tf.function, not a public Python function.
SEQ_LENGTH_EXCEPTIONS = set()

# Names of job settings (config fields, flags) and the one name each concept has here.
JOB_SYNONYMS = {
    "seq_length": "max_seq_length",
    "sequence_length": "max_seq_length",
    "max_length": "max_seq_length",
    "max_sequence_length": "max_seq_length",  # the encoder's capacity, not a job's length
    "num_labels": "num_classes",
    "n_classes": "num_classes",
    "mask_id": "mask_token_id",
    "skip_bad_rows": "skip_bad_examples",
    "skip_bad_sentences": "skip_bad_examples",
    "skip_bad_questions": "skip_bad_examples",
    "lr": "learning_rate",
    "num_train_epochs": "epochs",
    "train_batch_size": "batch_size",
    "warmup_ratio": "warmup_proportion",
    "vocab_file": "vocab_path",
    "do_lower_case": "lower_case",
    "dropout": "dropout_rate",
}
# Commands that create a run directory name it --output-dir, as the fine-tuning jobs always
# have (pretrain, quickstart and compress prune|distill said --output, kept as a hidden alias).
# A command whose output is one file keeps --output: predict's JSON lines, evaluate's metrics,
# score's text, compress quantize's .tflite, prepare's shard path prefix.
DIRECTORY_OUTPUT_COMMANDS = ("pretrain", "quickstart", "compress prune", "compress distill",
                             "compress shrink", "compress qat",
                             "finetune classify", "finetune qa", "finetune tag", "finetune glue")
# The transformers-compatible task head has one name in every task model.
HUGGINGFACE_HEAD = "huggingface"


def init_parameters(cls):
    return [name for name, p in inspect.signature(cls.__init__).parameters.items()
            if name not in ("self", "kwargs") and p.kind is not p.VAR_POSITIONAL]


def documented_arguments(cls):
    doc = inspect.getdoc(cls) or ""
    if "Args:" not in doc:
        return set()
    section = doc.split("Args:", 1)[1]
    section = re.split(r"\n\S", section, maxsplit=1)[0]  # up to the next unindented heading
    return set(re.findall(r"^\s{4}(\w+)(?:,\s*\w+)*:", section, flags=re.M)) | {
        name for line in re.findall(r"^\s{4}([\w, ]+):", section, flags=re.M)
        for name in re.split(r",\s*", line)
    }


@pytest.mark.parametrize("cls", PUBLIC_CLASSES, ids=lambda c: c.__name__)
def test_every_constructor_argument_is_documented(cls):
    missing = set(init_parameters(cls)) - documented_arguments(cls)
    assert not missing, f"{cls.__name__} documents no {sorted(missing)} under Args:"


@pytest.mark.parametrize("cls", PUBLIC_CLASSES, ids=lambda c: c.__name__)
def test_no_aliases_in_public_signatures(cls):
    used = set(init_parameters(cls)) & set(ALIASES)
    assert not used, {name: ALIASES[name] for name in used}


def public_functions():
    """(qualified name, function) for every public function and method under electra_tf."""
    functions = []
    for info in pkgutil.walk_packages(electra_tf.__path__, "electra_tf."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(value):
                functions.append((f"{module.__name__}.{name}", value))
            elif inspect.isclass(value):
                for method_name, method in vars(value).items():
                    method = getattr(method, "__func__", method)  # classmethod, staticmethod
                    if inspect.isfunction(method) and (
                            not method_name.startswith("_") or method_name == "__init__"):
                        functions.append((f"{module.__name__}.{name}.{method_name}", method))
    return functions


def test_special_token_ids_have_one_name_in_every_public_function():
    functions = public_functions()
    assert len(functions) > 300  # the walk reached the package
    drifting, aliases = {}, {}
    for name, function in functions:
        used = set(inspect.signature(function).parameters) & set(TOKEN_ID_ALIASES)
        if used:
            drifting[name] = {old: TOKEN_ID_ALIASES[old] for old in sorted(used)}
        renamed = getattr(function, "__renamed_arguments__", {})
        aliases.update({(name, old): new for old, new in renamed.items()})
    assert not drifting, f"rename {drifting} (keep the old name through renamed_arguments)"
    # The old names still work, as aliases that warn.
    for (name, old), new in aliases.items():
        if old in TOKEN_ID_ALIASES:
            assert new == TOKEN_ID_ALIASES[old], (name, old, new)
    assert ("electra_tf.preprocessing.masking.mask_tokens", "mask_id") in aliases
    assert ("electra_tf.data.pretraining_dataset.batch_and_mask", "mask_id") in aliases


def test_the_packed_input_length_is_max_seq_length_in_every_public_function():
    drifting, aliases = [], {}
    for name, function in public_functions():
        if "seq_length" in inspect.signature(function).parameters and (
                name not in SEQ_LENGTH_EXCEPTIONS):
            drifting.append(name)
        renamed = getattr(function, "__renamed_arguments__", {})
        if "seq_length" in renamed:
            aliases[name] = renamed["seq_length"]
    assert not drifting, (f"rename seq_length to max_seq_length in {drifting} (keep the old name "
                          "through renamed_arguments)")
    for name, new in aliases.items():
        assert new == SEQ_LENGTH_RENAMES.get(name, "max_seq_length"), (name, new)
    assert set(SEQ_LENGTH_RENAMES) <= set(aliases)
    for name in ("electra_tf.export.tflite_export.export_tflite",
                 "electra_tf.export.tflite_export.tflite_flatbuffer",
                 "electra_tf.export.tflite_export.representative_dataset",
                 "electra_tf.export.tflite_export.calibration_examples",
                 "electra_tf.export.export_model_directory.export_model_directory",
                 "electra_tf.export.hub_saved_models.export_hub_saved_models",
                 "electra_tf.export.preprocessor_saved_model.export_preprocessor_saved_model",
                 "electra_tf.compression.compress.run_quantize"):
        assert aliases.get(name) == "max_seq_length", name


def test_the_old_seq_length_keyword_still_works_and_warns():
    from electra_tf.preprocessing.masking import positions_to_mask
    from electra_tf.export.tflite_export import calibration_examples

    example = {key: [[1, 2, 3, 4]] for key in ("input_word_ids", "input_mask", "input_type_ids")}
    with pytest.deprecated_call(match=r"calibration_examples\(seq_length=...\) is deprecated; "
                                      r"use max_seq_length="):
        assert len(calibration_examples([example], seq_length=4)) == 1
    with pytest.deprecated_call(match="use sequence_length="):
        mask = positions_to_mask([[1]], [[1.0]], seq_length=3)
    assert mask.numpy().tolist() == [[0.0, 1.0, 0.0]]


def test_special_token_id_attributes_keep_their_old_names_as_warning_aliases():
    tokenizer = ElectraTokenizer()
    for old, new in TOKEN_ID_ALIASES.items():
        with pytest.deprecated_call(match=f"ElectraTokenizer.{old} is deprecated; use {new}"):
            assert getattr(tokenizer, old) == getattr(tokenizer, new)


@pytest.mark.parametrize("cls", PUBLIC_CLASSES, ids=lambda c: c.__name__)
def test_docstring_has_an_example(cls):
    assert ">>>" in (inspect.getdoc(cls) or ""), f"{cls.__name__} has no runnable example"


# --- job configs and command-line flags -------------------------------------------------


def job_configs():
    """Every dataclass defined under electra_tf.tasks, .pretraining and .compression."""
    configs = []
    for package in ("tasks", "pretraining", "compression"):
        root = importlib.import_module(f"electra_tf.{package}")
        for info in pkgutil.walk_packages(root.__path__, f"electra_tf.{package}."):
            module = importlib.import_module(info.name)
            configs += [value for value in vars(module).values()
                        if inspect.isclass(value) and dataclasses.is_dataclass(value)
                        and value.__module__ == module.__name__]
    return configs


def cli_flags():
    """(subcommand path, argparse action) for every flag of every `electra-tf` subcommand."""
    from electra_tf.cli.main import build_parser

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, subparser in action.choices.items():
                    yield from walk(subparser, (*path, name))
            elif action.option_strings:
                yield " ".join(path), action

    return list(walk(build_parser(), ()))


def is_deprecated_alias(action):
    from electra_tf.cli.config_arguments import _DeprecatedFlag

    return isinstance(action, _DeprecatedFlag)


JOB_CONFIGS = job_configs()
CLI_FLAGS = cli_flags()


def test_the_walks_find_the_jobs_and_the_subcommands():
    names = {config.__name__ for config in JOB_CONFIGS}
    assert {"FinetuningConfig", "QAConfig", "TaggingConfig", "GlueConfig",
            "PretrainingConfig", "FinetuningOptions"} <= names
    commands = {path for path, _ in CLI_FLAGS}
    assert {"finetune classify", "finetune qa", "finetune tag", "finetune glue", "pretrain",
            "evaluate classify", "predict tag", "export", "compress prune"} <= commands


@pytest.mark.parametrize("config", JOB_CONFIGS, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_job_config_fields_use_the_vocabulary(config):
    drifting = {field.name: JOB_SYNONYMS[field.name] for field in dataclasses.fields(config)
                if field.name in JOB_SYNONYMS}
    assert not drifting, f"{config.__name__}: rename {drifting} (keep the old name as an alias)"


@pytest.mark.parametrize("path", sorted({path for path, _ in CLI_FLAGS}))
def test_command_line_flags_use_the_vocabulary(path):
    drifting = {}
    for flag_path, action in CLI_FLAGS:
        if flag_path != path or is_deprecated_alias(action):
            continue
        for flag in action.option_strings:
            name = flag.lstrip("-").replace("-", "_")
            name = name[3:] if name.startswith("no_") else name
            if name in JOB_SYNONYMS:
                drifting[flag] = "--" + JOB_SYNONYMS[name].replace("_", "-")
    assert not drifting, f"electra-tf {path}: rename {drifting} (keep the old flag as an alias)"


@pytest.mark.parametrize("path, action", [
    (path, action) for path, action in CLI_FLAGS if is_deprecated_alias(action)],
    ids=lambda value: value if isinstance(value, str) else value.option_strings[0])
def test_deprecated_flags_are_hidden_and_say_what_to_use(path, action, capsys):
    assert action.help == argparse.SUPPRESS
    parser = argparse.ArgumentParser(prog=f"electra-tf {path}")
    namespace = argparse.Namespace()
    action(parser, namespace, "x" if action.nargs != 0 else [], action.option_strings[0])
    assert f"{action.option_strings[0]} is deprecated; use {action.canonical}" in (
        capsys.readouterr().err)


def test_deprecated_flags_cover_the_renames():
    aliases = {(path, action.option_strings[0]) for path, action in CLI_FLAGS
               if is_deprecated_alias(action)}
    for path in ("finetune classify", "finetune tag", "evaluate classify", "evaluate tag"):
        assert (path, "--skip-bad-rows") in aliases
    assert ("export", "--seq-length") in aliases
    assert ("compress quantize", "--seq-length") in aliases
    for path in ("pretrain", "quickstart", "compress prune", "compress distill"):
        assert (path, "--output") in aliases


@pytest.mark.parametrize("path", DIRECTORY_OUTPUT_COMMANDS)
def test_commands_that_write_a_directory_take_output_dir(path):
    flags = {flag: action for flag_path, action in CLI_FLAGS if flag_path == path
             for flag in action.option_strings}
    assert "--output-dir" in flags and flags["--output-dir"].dest == "output_dir", path
    if "--output" in flags:  # only as the hidden, warning alias of --output-dir
        assert is_deprecated_alias(flags["--output"]), path
        assert flags["--output"].canonical == "--output-dir", path


def test_every_command_with_an_output_directory_is_listed():
    # A new command writing a directory joins DIRECTORY_OUTPUT_COMMANDS (and so --output-dir).
    assert {path for path, action in CLI_FLAGS
            if action.dest == "output_dir"} == set(DIRECTORY_OUTPUT_COMMANDS)
    for path, action in CLI_FLAGS:
        if "--output" in action.option_strings and not is_deprecated_alias(action):
            assert action.dest != "output_dir", f"electra-tf {path}: --output names a directory"


def test_the_transformers_head_has_one_name():
    from electra_tf.tasks import electra_classifier, electra_question_answering

    for module in (electra_classifier, electra_question_answering):
        assert HUGGINGFACE_HEAD in module.HEADS, module.__name__
    assert "simple" not in electra_question_answering.HEADS
    with pytest.deprecated_call(match="head='huggingface'"):
        from electra_tf.tasks.run_qa import QAConfig

        assert QAConfig(encoder="e", train="t", head="simple").head == HUGGINGFACE_HEAD


def test_max_sequence_length_is_a_models_and_max_seq_length_a_jobs():
    # Model constructors take the capacity; job configs and preprocessing the packed length.
    for cls in PUBLIC_CLASSES:
        if "max_seq_length" in init_parameters(cls):
            assert cls is ElectraPacker or dataclasses.is_dataclass(cls), cls.__name__
    for config in JOB_CONFIGS:
        assert "max_sequence_length" not in {field.name for field in dataclasses.fields(config)}
