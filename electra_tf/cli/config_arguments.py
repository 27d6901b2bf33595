"""Command-line flags derived from a job config's dataclass fields: argument parsing only.

A field `max_seq_length: int = option(128, "word pieces per packed input")` becomes
`--max-seq-length` (type int, that help, "(default: 128)"); the default itself
stays in the dataclass: a flag left out is not passed, so the config applies it.
`config_kwargs(args, Config)` turns the parsed flags back into keyword arguments.

    add_config_arguments(parser, FinetuningConfig, required=("encoder", "train"))
    config = FinetuningConfig(**config_kwargs(parser.parse_args(argv), FinetuningConfig))

How a field's type reads on the command line (`electra_tf.utils.config_fields.option`
can say otherwise):
    int, float, str      --field-name VALUE
    bool, default True   --no-field-name (sets False); default False: --field-name
    list                 --field-name a,b,c (comma-separated)
    const=...            --field-name alone sets that value (errors: --skip-bad-examples)
"""

import argparse
import dataclasses
import sys

from electra_tf.utils.config_fields import CLI_KEYS

# Names argparse or our subcommands already use for their own `dest`s.
_RESERVED_DESTS = ("command", "task", "run")
_NOT_A_FLAG = {"cli": False}


def flag_name(field):
    """The flag of a config field: its metadata's "flag", else `--name-with-dashes`.

    Booleans that default to True are switched off with `--no-name`.
    """
    if "flag" in field.metadata:
        return field.metadata["flag"]
    name = field.name.replace("_", "-")
    if field.type is bool and field.default is True:
        return f"--no-{name}"
    return f"--{name}"


def config_dest(name):
    """The argparse `dest` of the field `name` (a few names are the subcommands' own)."""
    return f"config_{name}" if name in _RESERVED_DESTS else name


def config_fields(config_class, exclude=()):
    """The fields of `config_class` that have a flag, the training options last."""
    from electra_tf.tasks.training_options import TrainingOptions

    training = {field.name for field in dataclasses.fields(TrainingOptions)}
    fields = [field for field in dataclasses.fields(config_class)
              if field.init and field.name not in exclude
              and field.metadata.get("cli", True) is not False]
    return ([field for field in fields if field.name not in training]
            + [field for field in fields if field.name in training])


def add_config_arguments(parser, config_class, required=(), exclude=(), help=None):  # noqa: A002
    """Adds a flag for every field of the dataclass `config_class` to `parser`.

    Args:
        parser: an `argparse.ArgumentParser` (a subcommand's).
        config_class: a job config dataclass whose fields are `option`s.
        required: field names that the command line must give.
        exclude: field names that get no flag.
        help: {field name: help text} to use instead of the field's.
    """
    help = help or {}  # noqa: A001
    for field in config_fields(config_class, exclude):
        flag = flag_name(field)
        options = _argument_options(field, help.get(field.name), field.name in required)
        parser.add_argument(flag, **options)
        for alias in field.metadata.get("aliases", ()):
            add_deprecated_alias(parser, alias, flag, options)


def config_kwargs(args, config_class):
    """The keyword arguments for `config_class` among the parsed `args`: the flags given.

    >>> import dataclasses
    >>> from electra_tf.utils.config_fields import option
    >>> @dataclasses.dataclass
    ... class Config:
    ...     batch_size: int = option(32, "examples per step")
    ...     lower_case: bool = option(True, "lower-case the text")
    >>> parser = argparse.ArgumentParser()
    >>> add_config_arguments(parser, Config)
    >>> config_kwargs(parser.parse_args(["--no-lower-case"]), Config)
    {'lower_case': False}
    >>> Config(**config_kwargs(parser.parse_args(["--batch-size", "8"]), Config))
    Config(batch_size=8, lower_case=True)
    """
    values = vars(args)
    return {field.name: values[config_dest(field.name)]
            for field in dataclasses.fields(config_class)
            if config_dest(field.name) in values}


def add_deprecated_alias(parser, alias, flag, options):
    """Adds `alias`, an earlier name of `flag`: it still works, with a note on stderr.

    `options` are the keyword arguments `flag` was added with (its dest, action, type, ...).
    """
    action = options.get("action")
    const = options.get("const")
    if action in ("store_true", "store_false"):
        const = action == "store_true"
    nargs = 0 if action in ("store_const", "store_true", "store_false") else options.get("nargs")
    parser.add_argument(
        alias, dest=options["dest"], action=_DeprecatedFlag, canonical=flag, nargs=nargs,
        const=const, type=options.get("type"), choices=options.get("choices"),
        default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def add_skip_bad_examples_argument(parser, help):  # noqa: A002
    """`--skip-bad-examples` (errors="skip"; earlier `--skip-bad-rows`), default errors="raise"."""
    options = dict(dest="errors", action="store_const", const="skip", help=help)
    parser.add_argument("--skip-bad-examples", default="raise", **options)
    add_deprecated_alias(parser, "--skip-bad-rows", "--skip-bad-examples", options)


def add_output_dir_argument(parser, help, required=False, default=None):  # noqa: A002
    """`--output-dir`, the run directory a command creates (earlier `--output`), dest output_dir.

    Every command that writes a directory names it so, as the fine-tuning jobs do; a
    single output file keeps `--output`. A required one is a required group of the flag
    and its old name, so either satisfies argparse.
    """
    options = dict(dest="output_dir", help=help)
    if required:
        parser = parser.add_mutually_exclusive_group(required=True)
    parser.add_argument("--output-dir", default=default, **options)
    add_deprecated_alias(parser, "--output", "--output-dir", options)


class _DeprecatedFlag(argparse.Action):
    """A flag's earlier name: stores what the flag would, after a note on stderr."""

    def __init__(self, option_strings, dest, canonical, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.canonical = canonical

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: note: {option_string} is deprecated; use {self.canonical}.",
              file=sys.stderr)
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


def _argument_options(field, help_text, required):
    metadata = field.metadata
    unknown = sorted(set(metadata) - {"help", *CLI_KEYS})
    if unknown:
        raise ValueError(f"Field {field.name!r} has metadata {unknown} that no flag reads; "
                         f"expected some of help, {', '.join(CLI_KEYS)}.")
    text = help_text or metadata.get("help", "")
    if field.type is bool:
        text += " (default: on)" if field.default else ""
    elif field.default is not None and "const" not in metadata and "default" not in text \
            and not required:
        text += f" (default: {field.default})"
    options = {"dest": config_dest(field.name), "help": text.replace("%", "%%"),
               "default": argparse.SUPPRESS}
    if required:
        options["required"] = True
    if "const" in metadata and "nargs" not in metadata:
        options.update(action="store_const", const=metadata["const"])
    elif field.type is bool:
        options["action"] = "store_false" if field.default is True else "store_true"
    else:
        options["type"] = _value_type(field)
        if "choices" not in metadata:
            options["metavar"] = field.name.upper()
        for key in ("choices", "metavar", "nargs", "const"):
            if key in metadata:
                options[key] = metadata[key]
    return options


def _value_type(field):
    """A function from the flag's text to the field's value."""
    metadata = field.metadata
    if field.type is list:
        return _comma_separated
    if field.type in (int, float):
        convert = field.type
        if "minimum" in metadata:
            return _at_least(convert, metadata["minimum"])
        return convert
    if "deprecated_values" in metadata:
        return _renamed_values(metadata["deprecated_values"], flag_name(field))
    return str


def _comma_separated(text):
    return text.split(",")


def _at_least(convert, minimum):
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if convert is int else 'a number'} >= {minimum}; "
                f"received {text!r}")
        return value

    return parse


def _renamed_values(renamed, flag):
    def parse(text):
        if text in renamed:
            print(f"electra-tf: note: {flag} {text} is deprecated; use {flag} {renamed[text]}.",
                  file=sys.stderr)
            return renamed[text]
        return text

    return parse
