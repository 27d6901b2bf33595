"""Every count an argument check takes refuses a bool: `True` is not 1 here.

In Python `isinstance(True, int)` holds, so a check written `isinstance(v, int)`
let `num_classes=True` through as 1. These checks test `is_integer` / `is_number`
(electra_tf/utils/checks.py); each case passes `True` (or `False` where 0 is a
valid value) and expects the check's own ValueError naming the argument and the
value received, and passes the same argument as an int to show the check is the
one that refused.
"""

import numpy as np
import pytest
import tensorflow as tf

import electra_tf
from conftest import TINY


def tiny_encoder():
    return electra_tf.ElectraEncoder(**TINY)


def tiny_classifier(vocab_size=TINY["vocab_size"]):
    encoder = electra_tf.ElectraEncoder(**{**TINY, "vocab_size": vocab_size})
    return electra_tf.ElectraClassifier(encoder, num_classes=2)


def layerwise_decay_adamw(num_layers):
    from electra_tf.optimization.layerwise_decay_adamw import LayerwiseDecayAdamW

    return LayerwiseDecayAdamW(1e-3, num_layers=num_layers, layer_decay=0.8)


def classifier(num_classes):
    return electra_tf.ElectraClassifier(tiny_encoder(), num_classes=num_classes)


def question_answering(name):
    return lambda value: electra_tf.ElectraQuestionAnswering(tiny_encoder(), **{name: value})


def glue_config(seeds):
    from electra_tf.tasks.run_glue import GlueConfig

    return GlueConfig(task="rte", encoder="checkpoints/electra-small", seeds=seeds)


def tflite(name):
    from electra_tf.export.tflite_export import tflite_flatbuffer

    arguments = {"max_seq_length": 4, "batch_size": None}

    def export(value):
        encoder = tiny_encoder()
        return tflite_flatbuffer(encoder, **{**arguments, name: value})

    return export


def embeddings(name):
    from electra_tf.layers.electra_embeddings import ElectraEmbeddings

    arguments = dict(vocab_size=37, max_sequence_length=16, type_vocab_size=2)
    return lambda value: ElectraEmbeddings(**{**arguments, name: value}, embedding_size=4)


def neighbours(num_neighbours):
    from electra_tf.compression.augmentation import embedding_neighbours

    tokens = ["[PAD]", "cat", "dog", "fish", "bird"]
    table = np.random.default_rng(0).normal(size=(len(tokens), 4)).astype(np.float32)
    return embedding_neighbours(table, tokens, [1, 2], num_neighbours=num_neighbours)


def augmentation(copies):
    from electra_tf.compression.augmentation import augmented_distillation_dataset
    from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer

    tokenizer = ElectraTokenizer()
    return augmented_distillation_dataset({"text": ["a film", "a play"], "label": [0, 1]},
                                          tokenizer, tiny_classifier(tokenizer.vocab_size),
                                          copies=copies)


def quantization_aware_training(calibration_batches):
    from electra_tf.compression.quantization import quantization_aware_training

    data = tf.data.Dataset.from_tensors(({"input_word_ids": tf.ones([1, 4], tf.int32)}, [0]))
    with quantization_aware_training(tiny_classifier(), data,
                                     calibration_batches=calibration_batches):
        pass


def compress_steps(max_steps):
    from electra_tf.compression.compress import _steps

    return _steps(tf.data.Dataset.range(3), 1, max_steps)


def pruning_schedule(total_steps):
    from electra_tf.compression.pruning import pruning_schedule

    return pruning_schedule(0.5, total_steps=total_steps)


def packer(name):
    from electra_tf.preprocessing.electra_packer import ElectraPacker

    return lambda value: ElectraPacker(**{name: value})


def wordpiece_vocabulary(vocab_size, tmp_path):
    from electra_tf.data.wordpiece_vocabulary import train_wordpiece_vocabulary

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a small corpus\n")
    return train_wordpiece_vocabulary(str(corpus), vocab_size, str(tmp_path / "vocab.txt"))


def dynamic_batcher(name):
    from electra_tf.serving.dynamic_batcher import DynamicBatcher

    def make(value):
        batcher = DynamicBatcher(lambda payloads: payloads, **{name: value})
        batcher.close()

    return make


# (where: "function argument", a call taking the value, the bool it refuses, an int it accepts
# or None to skip that half)
CASES = [
    ("LayerwiseDecayAdamW num_layers", layerwise_decay_adamw, True, 2),
    ("ElectraClassifier num_classes", classifier, True, 2),
    ("ElectraQuestionAnswering beam_size", question_answering("beam_size"), True, 2),
    ("ElectraQuestionAnswering head_hidden_size", question_answering("head_hidden_size"),
     True, 4),
    ("GlueConfig seeds", glue_config, True, 2),
    ("tflite_flatbuffer max_seq_length", tflite("max_seq_length"), True, 4),
    ("tflite_flatbuffer batch_size", tflite("batch_size"), True, 1),
    ("ElectraEmbeddings vocab_size", embeddings("vocab_size"), True, 37),
    ("ElectraEmbeddings max_sequence_length", embeddings("max_sequence_length"), True, 16),
    ("ElectraEmbeddings type_vocab_size", embeddings("type_vocab_size"), True, 2),
    ("embedding_neighbours num_neighbours", neighbours, True, 2),
    ("augmented_distillation_dataset copies", augmentation, False, 0),
    ("quantization_aware_training calibration_batches", quantization_aware_training, True,
     None),
    ("compress max_steps", compress_steps, True, 2),
    ("pruning_schedule total_steps", pruning_schedule, True, 10),
    ("ElectraPacker max_seq_length", packer("max_seq_length"), True, 8),
    ("ElectraPacker cls_token_id", packer("cls_token_id"), True, 1),
    ("ElectraPacker pad_token_id", packer("pad_token_id"), False, 0),
    ("DynamicBatcher max_batch_size", dynamic_batcher("max_batch_size"), True, 2),
    ("DynamicBatcher max_queue", dynamic_batcher("max_queue"), True, 2),
    ("DynamicBatcher num_workers", dynamic_batcher("num_workers"), True, 2),
    ("DynamicBatcher batch_timeout_ms", dynamic_batcher("batch_timeout_ms"), False, 0),
]


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_a_bool_is_refused_where_a_count_is_expected(case):
    where, call, refused, accepted = case
    argument = where.split()[-1]
    with pytest.raises(ValueError, match=rf"`{argument}`.*received.*{refused}"):
        call(refused)
    if accepted is not None:
        call(accepted)  # the same argument as an int passes that check


def test_a_bool_vocabulary_size_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"`vocab_size` must be an int.*received True"):
        wordpiece_vocabulary(True, tmp_path)


def test_a_squad_answer_whose_start_is_a_bool_is_a_bad_answer():
    from electra_tf.data.squad_dataset import SquadExample, check_example

    example = SquadExample(id="q1", question="Who?", context="Ada wrote it.",
                           answers=[{"text": "da", "answer_start": True}])
    assert check_example(example)[0] == "bad_answer"
    example.answers = [{"text": "da", "answer_start": 1}]
    assert check_example(example) is None
