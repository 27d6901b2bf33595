"""benchmarks/mixed_precision_curves.py: the noise criterion on saved runs, argument checks;
encoder_inference's best-variant pick."""

import json
import os

import numpy as np
import pytest
from benchmark_scripts import load_benchmark as load


@pytest.fixture(scope="module")
def curves():
    return load("mixed_precision_curves")


def test_smooth_and_distance(curves):
    assert curves.smooth([2.0, 4.0, 6.0], 3) == [2.0, 3.0, 4.0]
    assert curves.mean_distance([1.0, 2.0, 3.0], [1.0, 1.0, 5.0], 1) == 1.5
    with pytest.raises(ValueError, match="No steps"):
        curves.mean_distance([1.0], [1.0], 5)


def write_runs(curves, folder, steps, bfloat16_offset, seed_offset):
    """Saved runs as one_run writes them, with chosen gaps between the curves."""
    rng = np.random.default_rng(1)
    base = 40 - 20 * np.linspace(0, 1, steps) + rng.normal(0, 0.5, steps)
    losses = {"float32_seed0": base, "float32_seed1": base + seed_offset,
              "bfloat16_seed0": base + bfloat16_offset}
    os.makedirs(os.path.join(folder, "runs"))
    for name, values in losses.items():
        with open(os.path.join(folder, "runs", f"{name}.json"), "w") as f:
            json.dump({"name": name, "loss": values.tolist(), "seconds_per_step": 1.0}, f)


@pytest.mark.parametrize("bfloat16_offset, seed_offset, within", [
    (0.05, 0.5, True),   # bfloat16 closer to float32 than another float32 seed is
    (1.0, 0.2, False),   # bfloat16 off by more than float32's run-to-run noise
])
def test_saved_runs_are_judged_against_float32_noise(curves, tmp_path, bfloat16_offset,
                                                     seed_offset, within):
    write_runs(curves, tmp_path, 60, bfloat16_offset, seed_offset)
    curves.main(["--steps", "60", "--window", "10", "--output-dir", str(tmp_path)])
    record = json.load(open(tmp_path / "results.json"))
    assert record["bfloat16_within_noise"] is within
    assert record["float32_seed_noise"] == pytest.approx(seed_offset, rel=1e-6)
    assert record["bfloat16_vs_float32_same_seed"] == pytest.approx(bfloat16_offset, rel=1e-6)
    assert "cpu_model" in record["machine"]
    assert (tmp_path / "loss_curves.png").stat().st_size > 0


def test_saved_runs_of_another_length_are_refused(curves, tmp_path):
    write_runs(curves, tmp_path, 60, 0.1, 0.5)
    with pytest.raises(ValueError, match="60 steps, not --steps 80"):
        curves.main(["--steps", "80", "--window", "10", "--output-dir", str(tmp_path)])
    assert not (tmp_path / "results.json").exists()


def test_too_few_steps_for_the_window_are_refused(curves, tmp_path):
    with pytest.raises(ValueError, match="--steps must be at least twice --window"):
        curves.main(["--steps", "30", "--window", "25", "--output-dir", str(tmp_path)])
    assert not os.listdir(tmp_path)


def test_encoder_inference_compares_each_precisions_best_variant():
    inference = load("encoder_inference")
    rows = {"electra_tf tf.function": {"vs_torch_same_precision": 1.1},
            "electra_tf remove_padding": {"vs_torch_same_precision": 1.5},
            # The A/B of the attention's old float transposes is never "ours".
            "electra_tf float transposes": {"vs_torch_same_precision": 1.6},
            "electra_tf bfloat16": {"vs_torch_same_precision": 0.4},
            "electra_tf bfloat16 remove_padding": {"vs_torch_same_precision": 0.7},
            "torch ElectraModel": {"vs_torch_same_precision": 1.0}}
    assert inference.best_vs_torch(rows) == {
        "float32": ("electra_tf remove_padding", 1.5),
        "bfloat16": ("electra_tf bfloat16 remove_padding", 0.7)}
