"""The small corpus shipped inside the package: two Jane Austen novels (see assets/README.md).

Enough text to see ELECTRA learn in minutes on a laptop, offline: the quickstart
trains on Northanger Abbey and evaluates on Persuasion, a novel it never saw.
"""

import os

ASSETS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
SPLITS = {
    "train": "northangerabbey.txt.gz",
    "held_out": "persuasion.txt.gz",
}


def packaged_corpus(split="train"):
    """The path of the packaged "train" or "held_out" novel: gzipped text, paragraphs apart.

    Usable wherever a corpus glob is expected, e.g. `PretrainingConfig(corpus=...)`.

    >>> os.path.basename(packaged_corpus("held_out"))
    'persuasion.txt.gz'
    """
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {sorted(SPLITS)}; received {split!r}.")
    return os.path.join(ASSETS_DIR, SPLITS[split])
