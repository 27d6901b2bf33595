"""Hugging Face `ElectraForQuestionAnswering` → `ElectraQuestionAnswering`, by function.

The file format is `electra_tf.checkpoint_formats.huggingface_question_answering`,
re-exported here; `ElectraQuestionAnswering.from_huggingface` builds the model from it.

>>> import tempfile, electra_tf
>>> encoder = electra_tf.ElectraEncoder(vocab_size=30, hidden_size=8, num_layers=1,
...                                     num_heads=2, intermediate_size=16)
>>> path = tempfile.mkdtemp() + "/squad_hf"
>>> save_huggingface_question_answering(
...     electra_tf.ElectraQuestionAnswering(encoder, head="huggingface"), path)
>>> load_huggingface_question_answering(path).head
'huggingface'
"""

from electra_tf.checkpoint_formats.huggingface_question_answering import (  # noqa: F401
    ARCHITECTURE,
    save_huggingface_question_answering,
)
from electra_tf.tasks.electra_question_answering import ElectraQuestionAnswering


def load_huggingface_question_answering(path):
    """`ElectraQuestionAnswering.from_huggingface(path)` (head="huggingface")."""
    return ElectraQuestionAnswering.from_huggingface(path)
