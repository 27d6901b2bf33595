"""Where a keras-hub ELECTRA preset keeps its tokenizer, and how to read its vocabulary and casing.

`ElectraTokenizer.from_keras_hub` reads a preset with it; `electra_tf.conversion.keras_hub`
writes presets in the same layout (keras-hub's `save_to_preset`).
"""

import json
import os

TOKENIZER_NAME = "tokenizer.json"
VOCABULARY_PATH = os.path.join("assets", "tokenizer", "vocabulary.txt")


def keras_hub_vocabulary(path):
    """(vocabulary file, lower_case) of the tokenizer in the preset at `path`.

    >>> keras_hub_vocabulary("no/such/preset")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: No tokenizer vocabulary in 'no/such/preset': ...
    """
    vocab_path = os.path.join(path, VOCABULARY_PATH)
    if not os.path.isfile(vocab_path):
        raise ValueError(
            f"No tokenizer vocabulary in {path!r}: expected {VOCABULARY_PATH} (written by "
            "keras-hub's tokenizer.save_to_preset)."
        )
    lower_case = False  # keras-hub's ElectraTokenizer default
    tokenizer_path = os.path.join(path, TOKENIZER_NAME)
    if os.path.isfile(tokenizer_path):
        with open(tokenizer_path) as f:
            lower_case = bool(json.load(f).get("config", {}).get("lowercase", False))
    return vocab_path, lower_case
