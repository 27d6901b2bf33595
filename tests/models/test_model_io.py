"""save_pretrained writes the model's weights only: no optimizer state, same predictions."""

import os

import h5py
import numpy as np

from conftest import TINY, make_inputs
from electra_tf import ElectraClassifier, ElectraEncoder
from electra_tf.models.model_io import WEIGHTS_NAME, load_pretrained, save_pretrained


def test_a_trained_model_is_saved_without_its_optimizer(tmp_path):
    classifier = ElectraClassifier(ElectraEncoder(**TINY), num_classes=2)
    classifier.compile()  # Adam: two slots per weight, which must not reach the file
    inputs = make_inputs()
    classifier.fit(inputs, np.array([0, 1, 0]), epochs=1, verbose=0)
    optimizer = classifier.optimizer

    save_pretrained(classifier, tmp_path / "model")
    with h5py.File(os.path.join(tmp_path, "model", WEIGHTS_NAME), "r") as f:
        assert "optimizer" not in f, list(f)
    assert classifier.optimizer is optimizer  # put back: training can go on

    restored = load_pretrained(tmp_path / "model")
    np.testing.assert_array_equal(restored(inputs).numpy(), classifier(inputs).numpy())
