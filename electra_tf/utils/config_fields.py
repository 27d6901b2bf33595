"""`option`: a config dataclass field that carries its own documentation and command-line form.

A job config (`FinetuningConfig`, `QAConfig`, ...) states each setting once, with
its default and a one-line help; `electra_tf.cli.config_arguments` turns the
fields into flags (`max_seq_length` → `--max-seq-length`), so a default or a
help text is never written twice.

>>> import dataclasses
>>> @dataclasses.dataclass
... class Config:
...     batch_size: int = option(32, "examples per step")
>>> field, = dataclasses.fields(Config)
>>> field.default, field.metadata["help"]
(32, 'examples per step')
"""

import dataclasses

# The command-line keys `option` accepts, as `electra_tf.cli.config_arguments` reads them.
CLI_KEYS = ("flag", "aliases", "choices", "deprecated_values", "metavar", "nargs", "const",
            "minimum", "cli")


def option(default, help, **cli):  # noqa: A002 - `help`, as argparse spells it
    """A dataclass field with `default`, its `help` text and, optionally, its command-line form.

    Args:
        default: the field's default (None, a number, a string, a bool).
        help: one line saying what the setting does; the flag's --help.
        **cli: `flag` (a name other than `--field-name`, e.g. "--vocab"),
            `aliases` (deprecated flag names, still accepted with a note on
            stderr), `choices`, `deprecated_values` ({old value: new one},
            accepted with a note), `metavar`, `nargs` and `const` (as argparse's),
            `minimum` (integers: smaller values are refused while parsing),
            `cli=False` (no flag).

    >>> option(1, "steps", colour="red")
    Traceback (most recent call last):
    ...
    ValueError: Unknown command-line key(s) ['colour'] for an option; expected some of flag,
    aliases, choices, deprecated_values, metavar, nargs, const, minimum, cli.
    """
    unknown = sorted(set(cli) - set(CLI_KEYS))
    if unknown:
        raise ValueError(f"Unknown command-line key(s) {unknown} for an option; expected some "
                         f"of {', '.join(CLI_KEYS)}.")
    return dataclasses.field(default=default, metadata={"help": help, **cli})
