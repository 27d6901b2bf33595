"""TF-Hub style pair of SavedModels: OUT/preprocessor and OUT/encoder, written together.

The layout of TF-Hub's BERT collections, where a text model is used as

    preprocessor = hub.KerasLayer("OUT/preprocessor")
    encoder = hub.KerasLayer("OUT/encoder", trainable=True)
    pooled = encoder(preprocessor(text))["pooled_output"]

See `preprocessor_saved_model` and `encoder_saved_model` for each half.
"""

import os

from electra_tf.export.encoder_saved_model import find_encoder, save_encoder
from electra_tf.export.preprocessor_saved_model import DEFAULT_SEQ_LENGTH, save_preprocessor
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
from electra_tf.utils.atomic_directory import atomic_directory
from electra_tf.utils.renamed_arguments import renamed_arguments
from electra_tf.utils.checks import is_integer

PREPROCESSOR_DIR = "preprocessor"
ENCODER_DIR = "encoder"


@renamed_arguments(seq_length="max_seq_length")
def export_hub_saved_models(
    model, path, tokenizer=None, max_seq_length=DEFAULT_SEQ_LENGTH, overwrite=False
):
    """Writes `path/preprocessor` and `path/encoder`, both or neither.

    Args:
        model: an `ElectraEncoder`, or a model holding one in `.encoder`
            (discriminator, classifier); only the encoder is exported.
        path: output directory, written atomically.
        tokenizer: the `ElectraTokenizer` of the model's vocabulary; None means
            the packaged uncased BERT one.
        max_seq_length: the length the preprocessor packs to by default; at most
            the encoder's `max_sequence_length`.
        overwrite: replace an existing `path`.

    Writing them takes seconds (the tokenizer graph is large), so the example
    is not run by the doctests:

        export_hub_saved_models(ElectraClassifier.from_pretrained("classifier"), "hub")
        # hub/preprocessor, hub/encoder: see the module docstring for their use.

    The arguments are checked before anything is written:

    >>> import tempfile, electra_tf
    >>> path = tempfile.mkdtemp() + "/hub"
    >>> encoder = electra_tf.ElectraEncoder(vocab_size=30, hidden_size=8, num_layers=1,
    ...                                     num_heads=2, intermediate_size=16)
    >>> export_hub_saved_models(encoder, path)
    Traceback (most recent call last):
    ...
    ValueError: The tokenizer has 30522 tokens but the encoder 30: pass the ElectraTokenizer
    of the encoder's vocabulary.
    >>> encoder = electra_tf.ElectraEncoder(vocab_size=30522, hidden_size=8, num_layers=1,
    ...                                     num_heads=2, intermediate_size=16,
    ...                                     max_sequence_length=64)
    >>> export_hub_saved_models(encoder, path, max_seq_length=128)
    Traceback (most recent call last):
    ...
    ValueError: `max_seq_length` must be an integer in [2, 64] (the encoder's max_sequence_length);
    received max_seq_length=128.
    >>> os.path.exists(path)
    False
    """
    encoder = find_encoder(model)
    tokenizer = ElectraTokenizer() if tokenizer is None else tokenizer
    if not isinstance(tokenizer, ElectraTokenizer):
        raise ValueError(
            f"`tokenizer` must be an ElectraTokenizer or None; received {type(tokenizer).__name__}."
        )
    if tokenizer.vocab_size != encoder.vocab_size:
        raise ValueError(
            f"The tokenizer has {tokenizer.vocab_size} tokens but the encoder "
            f"{encoder.vocab_size}: pass the ElectraTokenizer of the encoder's vocabulary."
        )
    if not is_integer(max_seq_length) or not 2 <= max_seq_length <= encoder.max_sequence_length:
        raise ValueError(
            f"`max_seq_length` must be an integer in [2, {encoder.max_sequence_length}] (the "
            f"encoder's max_sequence_length); received max_seq_length={max_seq_length!r}."
        )
    with atomic_directory(path, overwrite=overwrite) as tmp:
        save_preprocessor(tokenizer, os.path.join(tmp, PREPROCESSOR_DIR), max_seq_length)
        save_encoder(encoder, os.path.join(tmp, ENCODER_DIR))
