"""electra_tf: ELECTRA pretraining, fine-tuning, compression and export in tf-keras.

>>> import electra_tf
>>> discriminator = electra_tf.ElectraDiscriminator.from_preset("tiny")
"""

import os as _os

# tf-keras (Keras 2) is the Keras of this package: tfmot and TF-Hub need it.
_os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from electra_tf.compression.electra_distiller import ElectraDistiller  # noqa: E402
from electra_tf.layers.electra_embeddings import ElectraEmbeddings  # noqa: E402
from electra_tf.layers.transformer_layer import TransformerLayer  # noqa: E402
from electra_tf.models.electra_discriminator import ElectraDiscriminator  # noqa: E402
from electra_tf.models.electra_encoder import ElectraEncoder  # noqa: E402
from electra_tf.models.electra_generator import ElectraGenerator  # noqa: E402
from electra_tf.models.presets import PRESETS, ElectraConfig  # noqa: E402
from electra_tf.tasks.electra_classifier import ElectraClassifier  # noqa: E402
from electra_tf.tasks.electra_question_answering import ElectraQuestionAnswering  # noqa: E402
from electra_tf.tasks.electra_token_classifier import ElectraTokenClassifier  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ElectraClassifier",
    "ElectraConfig",
    "ElectraDiscriminator",
    "ElectraDistiller",
    "ElectraEmbeddings",
    "ElectraEncoder",
    "ElectraGenerator",
    "ElectraQuestionAnswering",
    "PRESETS",
    "ElectraTokenClassifier",
    "TransformerLayer",
]
