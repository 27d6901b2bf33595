"""A compiled task model saved as a `.keras` file loads compiled, silently, and trains on.

tf-keras calls `compile_from_config` when it loads a `.keras` file of a
compiled model; for a model with its own `compile()` the base class only
warns "`compile()` was not called as part of model loading" and leaves the
model uncompiled. The task models' `get_compile_config` /
`compile_from_config` (GradientAccumulationMixin) compile them again, with
their gradient accumulation and their optimizer state.
"""

import logging
import os

import numpy as np
import pytest
import tf_keras as keras

import electra_tf

INPUTS = {
    "input_word_ids": np.array([[2, 5, 6, 3, 0], [2, 7, 3, 0, 0]], np.int32),
    "input_mask": np.array([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]], np.int32),
    "input_type_ids": np.zeros((2, 5), np.int32),
}


def _encoder():
    return electra_tf.ElectraEncoder(vocab_size=20, hidden_size=8, num_layers=1, num_heads=2,
                                     intermediate_size=16, max_sequence_length=8)


CASES = {
    "classifier": (lambda: electra_tf.ElectraClassifier(_encoder(), num_classes=2),
                   np.array([0, 1])),
    "regression": (lambda: electra_tf.ElectraClassifier(_encoder(), num_classes=1,
                                                        problem_type="regression"),
                   np.array([0.25, 0.75], np.float32)),
    "tagger": (lambda: electra_tf.ElectraTokenClassifier(_encoder(), 3),
               np.array([[-100, 1, 2, -100, -100], [-100, 0, -100, -100, -100]])),
    "qa": (lambda: electra_tf.ElectraQuestionAnswering(_encoder()),
           {"start_positions": np.array([1, 1]), "end_positions": np.array([2, 1])}),
}


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _outputs(model):
    outputs = model(INPUTS, training=False)
    if isinstance(outputs, dict):
        return {key: np.asarray(value) for key, value in outputs.items()
                if not isinstance(value, (list, tuple))}
    return {"logits": np.asarray(outputs)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_compiled_task_model_keras_file_loads_compiled_without_warning(case, tmp_path):
    make_model, labels = CASES[case]
    model = make_model()
    model.compile(gradient_accumulation_steps=2)
    model.fit(INPUTS, labels, batch_size=2, epochs=1, verbose=0)
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)

    records = _Records()
    logger = logging.getLogger("tensorflow")
    logger.addHandler(records)
    try:
        loaded = keras.models.load_model(path)
    finally:
        logger.removeHandler(records)

    assert not [m for m in records.messages if "was not called" in m], records.messages
    assert type(loaded) is type(model)
    assert loaded._is_compiled
    assert loaded.gradient_accumulation_steps == 2
    assert int(loaded.optimizer.iterations) == 1  # the optimizer state came back too
    for name, value in _outputs(model).items():
        np.testing.assert_allclose(_outputs(loaded)[name], value, atol=1e-6)
    history = loaded.fit(INPUTS, labels, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert int(loaded.optimizer.iterations) == 2
