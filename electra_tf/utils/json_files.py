"""The one way electra_tf writes JSON files: atomically, `write_json(path, value)`.

Other text files written whole or not at all go through `atomic_text_file(path)`.

Every job (fine-tuning, GLUE, pruning, distillation, evaluation reports) writes
its results.json, predictions and reports through these, so a crash never
leaves half a file behind and every call reads the same way: path first, as in
`open(path)`.

>>> import json, os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "run", "results.json")
>>> write_json(path, {"accuracy": 0.9})
>>> json.load(open(path))
{'accuracy': 0.9}
>>> write_json_lines(path + "l", [{"text": "a"}, {"text": "b"}])
>>> open(path + "l").read().splitlines()
['{"text": "a"}', '{"text": "b"}']
"""

import contextlib
import json
import os


def write_json(path, value, indent=2):
    """Writes `value` as JSON to `path` via a temporary file renamed into place.

    The folder is created when missing.
    """
    with atomic_text_file(path) as f:
        json.dump(value, f, indent=indent, ensure_ascii=False)


def write_json_lines(path, rows):
    """Writes one JSON object per line to `path` via a temporary file renamed into place."""
    with atomic_text_file(path) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def atomic_text_file(path):
    """`open(path + ".tmp", "w")`, renamed to `path` when the block succeeds, removed if not."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = f"{path}.tmp"
    try:
        with open(temporary, "w", encoding="utf-8") as f:
            yield f
    except BaseException:
        os.remove(temporary)
        raise
    os.replace(temporary, path)
