"""Texts to predict on: plain text (one per line) or JSON lines with a "text" field.

JSON lines may add "text_b" (the second text of a pair, for classifiers) or
"tokens" (a list of words, for taggers, instead of "text"). Blank lines are
skipped; a line that is not what is expected raises a ValueError naming it.
"""

import json
import os
import re

# Words of plain text for tagging: runs of letters/digits (with inner - or ')
# and single punctuation marks, as CoNLL tokenizes ("U.S." is split, though).
_WORD_REGEX = re.compile(r"\w+(?:[-']\w+)*|[^\w\s]")


def split_words(text):
    """Plain text → CoNLL-like words, punctuation split off.

    >>> split_words("Peter Blackburn visited New York-based EU offices.")
    ['Peter', 'Blackburn', 'visited', 'New', 'York-based', 'EU', 'offices', '.']
    """
    return _WORD_REGEX.findall(text)


def _is_json_file(path, lines):
    if os.path.splitext(path)[1].lower() in (".jsonl", ".ndjson", ".json"):
        return True
    content = [line.strip() for line in lines if line.strip()]
    return bool(content) and all(line.startswith("{") for line in content)


def read_prediction_inputs(path, allow_pairs=True, allow_tokens=False):
    """Reads the inputs of `electra-tf predict`.

    Args:
        path: a text file, one text per line, or a JSON-lines file (.jsonl,
            or every line a JSON object) with "text" (and "text_b").
        allow_pairs: accept "text_b" (classifiers); otherwise it is an error.
        allow_tokens: accept "tokens" (a list of words) instead of "text" (taggers).

    Returns:
        A list of dicts with "text" and, when given, "text_b" / "tokens".

    >>> import tempfile
    >>> path = tempfile.mkdtemp() + "/in.jsonl"
    >>> _ = open(path, "w").write('{"text": "Is it?", "text_b": "Yes."}\\n\\n')
    >>> read_prediction_inputs(path)
    [{'text': 'Is it?', 'text_b': 'Yes.'}]
    """
    if not os.path.isfile(path):
        raise ValueError(f"Input file not found: received path={path!r}.")
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    json_lines = _is_json_file(path, lines)
    inputs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if not json_lines:
            inputs.append({"text": line.strip()})
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not valid JSON ({error.msg}).") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object with a \"text\" field; "
                             f"received a {type(row).__name__}.")
        item = {}
        if allow_tokens and "tokens" in row:
            tokens = row["tokens"]
            if (not isinstance(tokens, list) or not tokens
                    or not all(isinstance(t, str) and t.strip() for t in tokens)):
                raise ValueError(f"{path}:{number}: \"tokens\" must be a non-empty list of "
                                 f"non-empty strings; received {tokens!r}.")
            item["tokens"] = tokens
            item["text"] = " ".join(tokens)
        else:
            keys = ["text"] + (["text_b"] if allow_pairs and "text_b" in row else [])
            for key in keys:
                value = row.get(key)
                if not isinstance(value, str) or not value.strip():
                    expected = '"text" (or "tokens")' if allow_tokens else f'"{key}"'
                    raise ValueError(f"{path}:{number}: expected a non-empty string in "
                                     f"{expected}; received {value!r} (keys {sorted(row)}).")
                item[key] = value
        if "text_b" in row and not allow_pairs:
            raise ValueError(f"{path}:{number}: \"text_b\" (a sentence pair) is not used by "
                             "this model; remove it.")
        inputs.append(item)
    if not inputs:
        raise ValueError(f"{path} has no texts to predict on (all lines are blank).")
    return inputs
