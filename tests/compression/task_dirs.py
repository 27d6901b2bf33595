"""Tiny task directories (classify, tag, qa) and their data files, for the compression tests.

Each directory is what `electra-tf finetune classify|tag|qa` writes to OUTPUT/model
(`save_task_model`): config, weights, vocab.txt (the packaged uncased vocabulary) and task.json.
"""

import json

import numpy as np
import tf_keras as keras

from electra_tf import ElectraClassifier, ElectraEncoder, ElectraQuestionAnswering
from electra_tf import ElectraTokenClassifier
from electra_tf.data.packaged_corpus import packaged_squad_sample
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
from electra_tf.tasks.task_model_io import save_task_model

# Tiny sizes over the packaged 30,522-piece vocabulary (a 4-wide embedding keeps the table small).
ENCODER = dict(vocab_size=30522, hidden_size=8, num_layers=1, num_heads=2, intermediate_size=16,
               embedding_size=4, max_sequence_length=64, dropout_rate=0.0)
POSITIVE = "good great fine superb lovely warm fun bright".split()
NEGATIVE = "bad awful dull poor weak flat cold boring".split()
TAGS = ["O", "B-PER", "I-PER", "B-LOC"]
QA_SETTINGS = {"max_seq_length": 48, "doc_stride": 16, "max_query_length": 16,
               "lower_case": True, "n_best_size": 5, "max_answer_length": 10,
               "null_score_threshold": 0.0, "version_2": False}


def _classification_file(path, rng):
    rows = ["label\ttext"]
    for _ in range(16):
        label = int(rng.integers(0, 2))
        rows.append(f"{'pos' if label else 'neg'}\tthe film is "
                    f"{' '.join(rng.choice(POSITIVE if label else NEGATIVE, 3))}")
    path.write_text("\n".join(rows) + "\n")


def _conll_file(path, rng):
    sentences = []
    for _ in range(12):
        lines = ["Anna B-PER", "Smith I-PER", "visited O", "Paris B-LOC"]
        rng.shuffle(lines)  # word order does not matter here, only that every tag occurs
        sentences.append("\n".join(lines))
    path.write_text("-DOCSTART- O\n\n" + "\n\n".join(sentences) + "\n")


def make_task_dirs(root, seed=0):
    """Writes root/{classify,tag,qa} models and their data; returns {name: path (str)}."""
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    tokenizer = ElectraTokenizer()
    paths = {}
    classifier = ElectraClassifier(ElectraEncoder(**ENCODER), num_classes=2, head="huggingface")
    paths["classify"] = str(root / "classify")
    save_task_model(classifier, paths["classify"], "classify", tokenizer, 16, ["neg", "pos"],
                    extra={"text_column": "text", "text_b_column": None, "label_column": "label"})
    tagger = ElectraTokenClassifier(ElectraEncoder(**ENCODER), num_classes=len(TAGS))
    paths["tag"] = str(root / "tag")
    save_task_model(tagger, paths["tag"], "tag", tokenizer, 16, TAGS)
    qa_model = ElectraQuestionAnswering(ElectraEncoder(**ENCODER))
    paths["qa"] = str(root / "qa")
    save_task_model(qa_model, paths["qa"], "qa", tokenizer, QA_SETTINGS["max_seq_length"],
                    label_names=None, extra=QA_SETTINGS)
    _classification_file(root / "classify.tsv", rng)
    _conll_file(root / "tag.conll", rng)
    paths["classify_data"] = str(root / "classify.tsv")
    paths["tag_data"] = str(root / "tag.conll")
    paths["qa_data"] = packaged_squad_sample()
    return paths


def read_json(path):
    with open(path) as f:
        return json.load(f)
