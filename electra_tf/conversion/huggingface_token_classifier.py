"""Hugging Face `ElectraForTokenClassification` → `ElectraTokenClassifier`, by function.

The file format is `electra_tf.checkpoint_formats.huggingface_token_classifier`,
re-exported here; `ElectraTokenClassifier.from_huggingface` builds the tagger from it.

>>> import tempfile, electra_tf
>>> encoder = electra_tf.ElectraEncoder(vocab_size=30, hidden_size=8, num_layers=1,
...                                     num_heads=2, intermediate_size=16)
>>> path = tempfile.mkdtemp() + "/ner_hf"
>>> save_huggingface_token_classifier(electra_tf.ElectraTokenClassifier(encoder, num_classes=3),
...                                   path, label_names=["O", "B-PER", "I-PER"])
>>> load_huggingface_token_classifier(path).num_classes, read_label_names(path)
(3, ['O', 'B-PER', 'I-PER'])
"""

from electra_tf.checkpoint_formats.huggingface_token_classifier import (  # noqa: F401
    ARCHITECTURE,
    read_label_names,
    save_huggingface_token_classifier,
)
from electra_tf.tasks.electra_token_classifier import ElectraTokenClassifier


def load_huggingface_token_classifier(path):
    """`ElectraTokenClassifier.from_huggingface(path)`."""
    return ElectraTokenClassifier.from_huggingface(path)
