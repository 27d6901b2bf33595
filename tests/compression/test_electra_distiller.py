"""ElectraDistiller for classifiers, taggers and QA: the losses against hand computations
(masked positions add nothing); a short run lowers the KL; students keep the head."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from conftest import TINY, make_inputs

from electra_tf import (
    ElectraClassifier,
    ElectraEncoder,
    ElectraQuestionAnswering,
    ElectraTokenClassifier,
)
from electra_tf.compression.electra_distiller import (
    ElectraDistiller,
    distillation_loss,
    span_distillation_loss,
    student_from_teacher,
    token_distillation_loss,
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


# === Taggers and QA ===

def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def kl(teacher, student, temperature):
    p, q = softmax(teacher / temperature), softmax(student / temperature)
    return np.sum(p * np.log(p / q), axis=-1)


def test_token_loss_counts_only_the_labelled_pieces():
    # Positions labelled -100 ([CLS], later word pieces, padding) get wildly different
    # logits: they must not change either term.
    labels = np.array([[-100, 2, -100, 0, -100], [-100, 1, -100, -100, -100]])
    rng = np.random.default_rng(0)
    teacher = rng.normal(size=(2, 5, 3)).astype(np.float32)
    student = rng.normal(size=(2, 5, 3)).astype(np.float32)
    temperature, alpha = 2.0, 0.3
    kept = labels != -100
    soft = temperature**2 * kl(teacher, student, temperature)[kept].mean()
    hard = np.mean(-np.log(softmax(student)[kept, labels[kept]]))
    loss, soft_loss, hard_loss = token_distillation_loss(
        tf.constant(labels), tf.constant(teacher), tf.constant(student), temperature, alpha)
    np.testing.assert_allclose(float(soft_loss), soft, rtol=1e-5)
    np.testing.assert_allclose(float(hard_loss), hard, rtol=1e-5)
    np.testing.assert_allclose(float(loss), alpha * soft + (1 - alpha) * hard, rtol=1e-5)
    noisy_teacher, noisy_student = teacher.copy(), student.copy()
    noisy_teacher[~kept] = 50.0 * rng.normal(size=noisy_teacher[~kept].shape)
    noisy_student[~kept] = -50.0 * rng.normal(size=noisy_student[~kept].shape)
    again = token_distillation_loss(tf.constant(labels), tf.constant(noisy_teacher),
                                    tf.constant(noisy_student), temperature, alpha)
    np.testing.assert_allclose([float(x) for x in again],
                               [float(loss), float(soft_loss), float(hard_loss)], rtol=1e-5)
    # No labelled piece at all: both terms are 0, not nan.
    none = token_distillation_loss(tf.fill([2, 5], -100), tf.constant(teacher),
                                   tf.constant(student))
    assert [float(x) for x in none] == [0.0, 0.0, 0.0]


def test_span_loss_masks_the_padding():
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    rng = np.random.default_rng(1)
    outputs = {name: rng.normal(size=(2, 2, 6)).astype(np.float32)  # (teacher/student, B, T)
               for name in ("start_logits", "end_logits")}
    labels = {"start_positions": np.array([1, 3]), "end_positions": np.array([2, 5])}
    temperature, alpha = 3.0, 0.25

    def expected(name, model):
        logits = outputs[name]
        total = []
        for row in range(2):
            real = mask[row] == 1  # softmax over the real tokens only
            total.append(kl(logits[0, row, real], logits[1, row, real], temperature))
        return np.mean(total)

    soft = temperature**2 * (expected("start_logits", 0) + expected("end_logits", 0)) / 2
    hard = np.mean([-np.log(softmax(outputs[name][1])[np.arange(2), labels[key]])
                    for name, key in (("start_logits", "start_positions"),
                                      ("end_logits", "end_positions"))])
    teacher = {name: tf.constant(value[0]) for name, value in outputs.items()}
    student = {name: tf.constant(value[1]) for name, value in outputs.items()}
    loss, soft_loss, hard_loss = span_distillation_loss(
        {k: tf.constant(v) for k, v in labels.items()}, teacher, student, tf.constant(mask),
        temperature, alpha)
    np.testing.assert_allclose(float(soft_loss), soft, rtol=1e-5)
    np.testing.assert_allclose(float(hard_loss), hard, rtol=1e-5)
    np.testing.assert_allclose(float(loss), alpha * soft + (1 - alpha) * hard, rtol=1e-5)
    # Whatever the padded positions hold, the soft term stays the same.
    noisy = {name: tf.tensor_scatter_nd_update(value, [[0, 4], [0, 5]], [40.0, -40.0])
             for name, value in student.items()}
    _, soft_noisy, _ = span_distillation_loss(labels, teacher, noisy, tf.constant(mask),
                                              temperature, alpha)
    np.testing.assert_allclose(float(soft_noisy), soft, rtol=1e-5)
    # The "electra" head's answerability: a binary KL, weighted as in its own loss.
    teacher["impossible_logits"], student["impossible_logits"] = (
        tf.constant([1.0, -2.0]), tf.constant([0.0, 0.5]))
    with_impossible = {**labels, "is_impossible": np.array([0, 1])}
    _, soft_both, _ = span_distillation_loss(with_impossible, teacher, student,
                                             tf.constant(mask), temperature, alpha)
    two = lambda z: np.stack([np.zeros_like(z), z], -1)  # noqa: E731
    binary = kl(two(np.array([1.0, -2.0])), two(np.array([0.0, 0.5])), temperature).mean()
    np.testing.assert_allclose(float(soft_both), soft + 0.5 * temperature**2 * binary,
                               rtol=1e-5)


def sharpen(model):
    """Scales up the output layers: freshly initialised (stddev 0.02) logits are all ~0, so a
    random teacher's soft targets would be uniform and every student would already match them."""
    for layer in model.layers:
        if layer.name in ("logits", "qa_outputs", "start_logits", "end_logits"):
            layer.set_weights([50.0 * w for w in layer.get_weights()])
    return model


def tiny_tagger(num_layers, seed, num_classes=4):
    keras.utils.set_random_seed(seed)
    return sharpen(ElectraTokenClassifier(ElectraEncoder(**{**TINY, "num_layers": num_layers}),
                                          num_classes=num_classes, dropout_rate=0.0))


def tiny_qa(num_layers, seed, head="electra"):
    keras.utils.set_random_seed(seed)
    return sharpen(ElectraQuestionAnswering(ElectraEncoder(**{**TINY, "num_layers": num_layers}),
                                            head=head, head_hidden_size=8, beam_size=3))


@pytest.mark.parametrize("make", [tiny_tagger, tiny_qa,
                                  lambda n, seed: tiny_qa(n, seed, head="huggingface")])
def test_student_from_teacher_keeps_the_task_model_and_its_head(make):
    teacher = make(4, 0)
    student = student_from_teacher(teacher, num_layers=2, layer_indices=[0, 3])
    assert type(student) is type(teacher) and student.encoder.num_layers == 2
    assert student.get_config()["encoder"]["config"]["num_layers"] == 2
    for layer, index in zip(student.encoder.transformer_layers, [0, 3]):
        for a, b in zip(layer.get_weights(),
                        teacher.encoder.transformer_layers[index].get_weights()):
            np.testing.assert_array_equal(a, b)
    heads = [layer for layer in teacher.layers if layer is not teacher.encoder and layer.weights]
    assert heads
    for layer in heads:  # every head weight copied
        for a, b in zip(layer.get_weights(), student.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"num_layers.*\[1, 4\].*received num_layers=5"):
        student_from_teacher(teacher, num_layers=5)
    with pytest.raises(ValueError, match="ElectraTokenClassifier or ElectraQuestionAnswering"):
        student_from_teacher(teacher.encoder, num_layers=1)


def token_data():
    features = make_inputs(batch_size=8, seq_length=8)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, (8, 8)).astype(np.int32)
    labels[:, 0] = -100  # [CLS]
    labels[:, 2::3] = -100  # later word pieces
    labels[features["input_mask"] == 0] = -100  # padding
    return features, labels


def test_tagger_distillation_lowers_the_loss():
    teacher, student = tiny_tagger(2, seed=1), tiny_tagger(1, seed=2)
    features, labels = token_data()
    data = tf.data.Dataset.from_tensor_slices((features, labels)).batch(8)
    distiller = ElectraDistiller(teacher, student, temperature=2.0, alpha=0.8)
    distiller.compile(optimizer=keras.optimizers.Adam(3e-3))
    # One batch an epoch: the first epoch's numbers are the untrained student's.
    history = distiller.fit(data, epochs=8, verbose=0).history
    assert history["soft_loss"][-1] < 0.5 * history["soft_loss"][0], history
    assert history["loss"][-1] < history["loss"][0]
    assert set(history) == {"loss", "soft_loss", "hard_loss", "accuracy"}
    np.testing.assert_allclose(distiller(features), student(features), atol=1e-6)


def qa_data():
    """[CLS] q q [SEP] | c c c [SEP] (type 1 from position 4); rows 1 and 3 padded at the end."""
    features = make_inputs(batch_size=4, seq_length=8)
    features["input_mask"] = np.array([[1] * 8, [1] * 7 + [0], [1] * 8, [1] * 6 + [0] * 2])
    features["input_type_ids"] = np.array([[0] * 4 + [1] * 4] * 4) * features["input_mask"]
    features["input_word_ids"] = features["input_word_ids"] * features["input_mask"]
    labels = {"start_positions": np.array([4, 5, 0, 4], np.int32),
              "end_positions": np.array([5, 6, 0, 5], np.int32),
              "is_impossible": np.array([0, 0, 1, 0], np.int32)}
    return features, labels


@pytest.mark.parametrize("head", ["electra", "huggingface"])
def test_qa_distillation_lowers_the_loss(head):
    teacher, student = tiny_qa(2, seed=1, head=head), tiny_qa(1, seed=2, head=head)
    features, labels = qa_data()
    data = tf.data.Dataset.from_tensor_slices((features, labels)).batch(4)
    teacher_weights = [w.copy() for w in teacher.get_weights()]
    distiller = ElectraDistiller(teacher, student, temperature=2.0, alpha=0.8)
    distiller.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = distiller.fit(data, epochs=8, verbose=0).history
    assert history["soft_loss"][-1] < 0.5 * history["soft_loss"][0], history
    assert history["loss"][-1] < history["loss"][0]
    assert set(history) == {"loss", "soft_loss", "hard_loss"}
    for old, new in zip(teacher_weights, teacher.get_weights()):  # the teacher is not trained
        np.testing.assert_array_equal(old, new)
    with pytest.raises(ValueError, match="start_positions"):
        distiller.fit(features, labels["start_positions"], verbose=0)


def test_bad_task_pairs():
    tagger = tiny_tagger(2, seed=0)
    with pytest.raises(ValueError, match="same tags.*num_classes=4.*5"):
        ElectraDistiller(tagger, tiny_tagger(1, seed=0, num_classes=5))
    with pytest.raises(ValueError, match="must be an ElectraTokenClassifier.*ElectraClassifier"):
        ElectraDistiller(tagger, tiny_classifier(1, seed=0))
    with pytest.raises(ValueError, match="same QA head.*'electra'.*'huggingface'"):
        ElectraDistiller(tiny_qa(2, 0), tiny_qa(1, 0, head="huggingface"))
    with pytest.raises(ValueError, match="`teacher` must be an ElectraClassifier"):
        ElectraDistiller(tagger.encoder, tagger)
