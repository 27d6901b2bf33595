"""ElectraDistiller: the loss against a hand computation; a short run lowers the KL."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from conftest import TINY, make_inputs

from electra_tf import ElectraClassifier, ElectraEncoder
from electra_tf.compression.electra_distiller import (
    ElectraDistiller,
    distillation_loss,
    student_from_teacher,
)


def tiny_classifier(num_layers, seed):
    keras.utils.set_random_seed(seed)
    return ElectraClassifier(ElectraEncoder(**{**TINY, "num_layers": num_layers}), num_classes=3)


def test_loss_matches_a_hand_computation():
    labels = np.array([0, 2])
    teacher = np.array([[2.0, 1.0, -1.0], [0.5, 0.0, 3.0]])
    student = np.array([[0.0, 1.0, 0.0], [1.0, -1.0, 0.5]])
    temperature, alpha = 2.0, 0.3

    def softmax(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    p, q = softmax(teacher / temperature), softmax(student / temperature)
    soft = temperature**2 * np.mean(np.sum(p * np.log(p / q), axis=-1))
    hard = np.mean(-np.log(softmax(student)[np.arange(2), labels]))
    loss, soft_loss, hard_loss = distillation_loss(
        tf.constant(labels), tf.constant(teacher, tf.float32), tf.constant(student, tf.float32),
        temperature, alpha)
    np.testing.assert_allclose(float(soft_loss), soft, rtol=1e-5)
    np.testing.assert_allclose(float(hard_loss), hard, rtol=1e-5)
    np.testing.assert_allclose(float(loss), alpha * soft + (1 - alpha) * hard, rtol=1e-5)


def test_student_from_teacher_copies_the_chosen_layers():
    teacher = tiny_classifier(num_layers=6, seed=0)
    student = student_from_teacher(teacher, num_layers=3)
    assert student.encoder.num_layers == 3
    for layer, index in zip(student.encoder.transformer_layers, [1, 3, 5]):
        for a, b in zip(layer.get_weights(),
                        teacher.encoder.transformer_layers[index].get_weights()):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(student.logits.kernel.numpy(), teacher.logits.kernel.numpy())
    with pytest.raises(ValueError, match="num_layers"):
        student_from_teacher(teacher, num_layers=7)


def test_distillation_lowers_the_kl():
    teacher = tiny_classifier(num_layers=4, seed=1)
    student = tiny_classifier(num_layers=2, seed=2)  # random: far from the teacher
    features = make_inputs(batch_size=16, seq_length=8)
    labels = np.random.default_rng(0).integers(0, 3, 16).astype(np.int32)
    data = tf.data.Dataset.from_tensor_slices((features, labels)).batch(8)
    teacher_weights = [w.copy() for w in teacher.get_weights()]
    distiller = ElectraDistiller(teacher, student, temperature=2.0, alpha=1.0)
    distiller.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = distiller.evaluate(data, verbose=0, return_dict=True)["soft_loss"]
    history = distiller.fit(data, epochs=15, verbose=0)
    after = distiller.evaluate(data, verbose=0, return_dict=True)["soft_loss"]
    assert after < 0.5 * before, (before, after)
    assert set(history.history) == {"loss", "soft_loss", "hard_loss", "accuracy"}
    for old, new in zip(teacher_weights, teacher.get_weights()):  # the teacher is not trained
        np.testing.assert_array_equal(old, new)
    np.testing.assert_allclose(distiller(features), student(features), atol=1e-6)


def test_bad_arguments():
    teacher = tiny_classifier(num_layers=2, seed=0)
    keras.utils.set_random_seed(0)
    other = ElectraClassifier(ElectraEncoder(**TINY), num_classes=2)
    with pytest.raises(ValueError, match="same classes"):
        ElectraDistiller(teacher, other)
    with pytest.raises(ValueError, match="temperature"):
        ElectraDistiller(teacher, teacher, temperature=0.0)
    with pytest.raises(ValueError, match="own loss"):
        ElectraDistiller(teacher, teacher).compile(optimizer="adam", loss="mse")
