"""Hugging Face `ElectraForSequenceClassification` → `ElectraClassifier`, by function.

The file format is `electra_tf.checkpoint_formats.huggingface_classifier`, re-exported here;
`ElectraClassifier.from_huggingface` builds the classifier from it.

>>> import tempfile, electra_tf
>>> encoder = electra_tf.ElectraEncoder(vocab_size=30, hidden_size=8, num_layers=1,
...                                     num_heads=2, intermediate_size=16)
>>> path = tempfile.mkdtemp() + "/sentiment_hf"
>>> save_huggingface_classifier(electra_tf.ElectraClassifier(encoder, num_classes=3,
...                                                          head="huggingface"), path)
>>> load_huggingface_classifier(path).num_classes
3
"""

from electra_tf.checkpoint_formats.huggingface_classifier import (  # noqa: F401  (old home)
    ARCHITECTURE,
    PROBLEM_TYPE_NAMES,
    save_huggingface_classifier,
)
from electra_tf.tasks.electra_classifier import ElectraClassifier


def load_huggingface_classifier(path):
    """`ElectraClassifier.from_huggingface(path)`: an `ElectraClassifier(head="huggingface")`."""
    return ElectraClassifier.from_huggingface(path)
