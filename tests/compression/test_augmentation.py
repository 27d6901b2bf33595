"""Augmented distillation data: neighbours, word masking/swapping/cropping, the dataset, -1 labels."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from conftest import TINY

from electra_tf import ElectraClassifier, ElectraEncoder
from electra_tf.compression.augmentation import (
    UNLABELLED,
    augment_ids,
    augmented_distillation_dataset,
    embedding_neighbours,
)
from electra_tf.compression.electra_distiller import ElectraDistiller, distillation_loss
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ("good great fine superb lovely warm fun bright sharp clever witty moving rich "
         "bad awful dull poor weak flat cold boring bland tired lame slow messy the a film "
         "is very and").split()  # 32 words: with the specials, TINY's 37 tokens


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(SPECIALS + WORDS) + "\n")
    return ElectraTokenizer(str(path))


@pytest.fixture(scope="module")
def classifier():
    keras.utils.set_random_seed(0)
    return ElectraClassifier(ElectraEncoder(**TINY), num_classes=2)


def test_neighbours_are_the_nearest_other_whole_words():
    tokens = ["[MASK]", "good", "great", "bad", "##ly", "plot"]
    table = np.array([[1.0, 0.0],  # [MASK]: as close to "good" as can be, never a candidate
                      [1.0, 0.0], [0.9, 0.2], [0.5, -0.5], [1.0, 0.01], [0.0, 1.0]])
    neighbours = embedding_neighbours(table, tokens, [1, 1, 4, 5], num_neighbours=2)
    assert sorted(neighbours) == [1, 5]  # "##ly" is not a word: no neighbours
    assert neighbours[1].tolist() == [2, 3]  # great (cos .98), bad (.71); never itself
    assert neighbours[5].tolist() == [2, 1]
    with pytest.raises(ValueError, match="vocab_size"):
        embedding_neighbours(table[:3], tokens, [1])
    with pytest.raises(ValueError, match="num_neighbours"):
        embedding_neighbours(table, tokens, [1], num_neighbours=4)  # only 4 words


def test_augment_ids_swaps_and_masks_single_piece_words_only():
    # ids: 5 = "un", 6 = "##real", 7 = "film", 8 = "good"; 9 = [MASK]
    is_continuation = np.zeros(12, bool)
    is_continuation[6] = True
    neighbours = {5: np.array([10]), 7: np.array([11]), 8: np.array([10, 11])}
    rng = np.random.default_rng(0)
    swapped = augment_ids([5, 6, 7, 8], neighbours, is_continuation, 9, rng, mask_prob=0.0,
                          swap_prob=1.0, crop_prob=0.0)
    assert swapped[:3] == [5, 6, 11] and swapped[3] in (10, 11)  # "un ##real" kept whole
    masked = augment_ids([5, 6, 7, 8], neighbours, is_continuation, 9, rng, mask_prob=1.0,
                         swap_prob=0.0, crop_prob=0.0)
    assert masked == [5, 6, 9, 9]
    kept = augment_ids([5, 6, 7, 8], neighbours, is_continuation, 9, rng, mask_prob=0.0,
                       swap_prob=0.0, crop_prob=0.0)
    assert kept == [5, 6, 7, 8]
    with pytest.deprecated_call(match=r"augment_ids\(mask_id=...\) is deprecated"):
        assert augment_ids([7], neighbours, is_continuation, mask_id=9, rng=rng, mask_prob=1.0,
                           swap_prob=0.0, crop_prob=0.0) == [9]


def test_augment_ids_crops_to_a_contiguous_span():
    ids = list(range(20, 40))
    rng = np.random.default_rng(1)
    lengths = set()
    for _ in range(50):
        out = augment_ids(ids, {}, np.zeros(40, bool), 9, rng, crop_prob=1.0, max_span=5)
        assert 1 <= len(out) <= 5
        assert out == ids[ids.index(out[0]):ids.index(out[0]) + len(out)]
        lengths.add(len(out))
    assert lengths == {1, 2, 3, 4, 5}
    with pytest.raises(ValueError, match="mask_prob"):
        augment_ids(ids, {}, np.zeros(40, bool), 9, rng, mask_prob=1.5)
    with pytest.raises(ValueError, match="at most 1"):
        augment_ids(ids, {}, np.zeros(40, bool), 9, rng, mask_prob=0.6, swap_prob=0.6)


def test_dataset_holds_the_texts_and_unlabelled_copies(tokenizer, classifier):
    texts = ["the film is good", "the film is very dull and slow", "a lame film"]
    data = augmented_distillation_dataset({"text": texts, "label": [1, 0, 0]}, tokenizer,
                                          classifier, copies=2, batch_size=3, seed=0)
    ids, labels = [], []
    for features, batch_labels in data.take(3):  # one epoch: 3 texts × (1 + 2)
        word_ids = features["input_word_ids"].numpy()
        mask = features["input_mask"].numpy()
        assert word_ids.shape[1] == mask.sum(axis=1).max()  # padded to the longest only
        np.testing.assert_array_equal(mask, (word_ids > 0).astype(np.int32))
        assert not features["input_type_ids"].numpy().any()
        for row, length in zip(word_ids, mask.sum(axis=1)):
            assert row[0] == tokenizer.cls_token_id and row[length - 1] == tokenizer.sep_token_id
            ids.append(row[1:length - 1].tolist())
        labels.extend(batch_labels.numpy().tolist())
    assert sorted(labels) == [UNLABELLED] * 6 + [0, 0, 1]
    originals = [tokenizer.tokenize(t).numpy().tolist() for t in texts]
    for original, label in zip(originals, [1, 0, 0]):
        assert labels[ids.index(original)] == label
    copies = [i for i, label in zip(ids, labels) if label == UNLABELLED]
    assert any(c not in originals for c in copies)  # augmented, not repeated


def test_dataset_bad_input(tokenizer, classifier):
    good = {"text": ["a good film"], "label": [1]}
    with pytest.raises(ValueError, match="single texts"):
        augmented_distillation_dataset({**good, "text_b": ["x"]}, tokenizer, classifier)
    with pytest.raises(ValueError, match="as many labels"):
        augmented_distillation_dataset({"text": [], "label": []}, tokenizer, classifier)
    with pytest.raises(ValueError, match="class ids"):
        augmented_distillation_dataset({"text": ["a"], "label": [0.5]}, tokenizer, classifier)
    with pytest.raises(ValueError, match="copies"):
        augmented_distillation_dataset(good, tokenizer, classifier, copies=-1)
    with pytest.raises(ValueError, match="30522"):
        augmented_distillation_dataset(good, ElectraTokenizer(), classifier)


def test_unlabelled_examples_count_in_the_soft_term_only():
    teacher = tf.constant([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    student = tf.constant([[0.5, 0.0], [0.3, 0.2], [-1.0, 2.0]])
    loss, soft, hard = distillation_loss(tf.constant([1, UNLABELLED, 0]), teacher, student,
                                         temperature=2.0, alpha=0.25)
    _, soft_all, _ = distillation_loss(tf.constant([1, 1, 0]), teacher, student, 2.0, 0.25)
    _, _, hard_labelled = distillation_loss(tf.constant([1, 0]), tf.gather(teacher, [0, 2]),
                                            tf.gather(student, [0, 2]), 2.0, 0.25)
    np.testing.assert_allclose(float(soft), float(soft_all), rtol=1e-6)
    np.testing.assert_allclose(float(hard), float(hard_labelled), rtol=1e-6)
    np.testing.assert_allclose(float(loss), 0.25 * float(soft) + 0.75 * float(hard), rtol=1e-6)
    _, _, hard_none = distillation_loss(tf.constant([UNLABELLED] * 3), teacher, student)
    assert float(hard_none) == 0.0


def test_distiller_trains_on_augmented_data(tokenizer, classifier):
    student = ElectraClassifier.from_config(classifier.get_config())
    student.set_weights([w * 0.5 for w in classifier.get_weights()])
    texts = ["the film is good", "a dull film", "very fun and witty", "boring and slow"]
    data = augmented_distillation_dataset({"text": texts, "label": [1, 0, 1, 0]}, tokenizer,
                                          classifier, copies=3, batch_size=8, seed=1)
    distiller = ElectraDistiller(classifier, student, alpha=0.5)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = distiller.fit(data, epochs=2, steps_per_epoch=2, verbose=0).history
    assert all(np.isfinite(history["loss"])) and all(np.isfinite(history["hard_loss"]))
    # Accuracy counts the labelled texts only: a multiple of 1/4 per epoch's 4 labelled texts.
    assert all(abs(4 * a - round(4 * a)) < 1e-6 for a in history["accuracy"])
