"""The small real data shipped inside the package (sources and licences in assets/README.md).

Enough to see ELECTRA learn in minutes on a laptop, offline: two Jane Austen novels to pretrain on
(the quickstart trains on Northanger Abbey and evaluates on Persuasion, a novel it never saw),
9,068 rated movie-review sentences to fine-tune a sentiment classifier on, and five real SQuAD v1.1
questions in the official JSON format.
"""

import os

ASSETS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
SPLITS = {
    "train": "northangerabbey.txt.gz",
    "held_out": "persuasion.txt.gz",
}
SENTIMENT_SPLITS = {
    "train": os.path.join("sentiment", "movie_train.tsv"),  # 8,000 sentences, balanced
    "dev": os.path.join("sentiment", "movie_dev.tsv"),  # 1,068 sentences, balanced
}
SQUAD_SAMPLE = os.path.join("squad", "squad_v1_sample.json")


def packaged_corpus(split="train"):
    """The path of the packaged "train" or "held_out" novel: gzipped text, paragraphs apart.

    Usable wherever a corpus glob is expected, e.g. `PretrainingConfig(corpus=...)`.

    >>> os.path.basename(packaged_corpus("held_out"))
    'persuasion.txt.gz'
    """
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {sorted(SPLITS)}; received {split!r}.")
    return os.path.join(ASSETS_DIR, SPLITS[split])


def packaged_sentiment(split="train"):
    """The path of the packaged movie-review sentiment "train" or "dev" file.

    A `label<TAB>text` TSV with a header row: label 1 is positive, 0 negative. Readable by
    `electra-tf finetune classify --train-file` and `read_classification_file`.

    >>> with open(packaged_sentiment("dev"), encoding="utf-8") as f:
    ...     f.readline().split()
    ['label', 'text']
    """
    if split not in SENTIMENT_SPLITS:
        raise ValueError(
            f"`split` must be one of {sorted(SENTIMENT_SPLITS)}; received {split!r}.")
    return os.path.join(ASSETS_DIR, SENTIMENT_SPLITS[split])


def packaged_squad_sample():
    """The path of five real SQuAD v1.1 questions in the official JSON format.

    >>> import json
    >>> with open(packaged_squad_sample(), encoding="utf-8") as f:
    ...     articles = json.load(f)["data"]
    >>> sum(len(paragraph["qas"]) for article in articles for paragraph in article["paragraphs"])
    5
    """
    return os.path.join(ASSETS_DIR, SQUAD_SAMPLE)
