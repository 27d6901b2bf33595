"""Reading a checkpoint directory's JSON files with errors that say what was expected."""

import json
import os


def read_checkpoint_json(directory, name, expected):
    """The parsed JSON file `name` of a checkpoint `directory`.

    Args:
        directory: the checkpoint directory.
        name: the file's name in it, e.g. "config.json".
        expected: what the directory should be, for the error message, e.g.
            "a Hugging Face checkpoint directory (config.json + model.safetensors)".

    Raises:
        ValueError: the file is missing (naming `expected`) or not valid JSON.

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> read_checkpoint_json(folder, "config.json", "a checkpoint directory")
    Traceback (most recent call last):
    ...
    ValueError: No config.json in '...': expected a checkpoint directory.
    """
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        raise ValueError(f"No {name} in {directory!r}: expected {expected}.")
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from error
