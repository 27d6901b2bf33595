"""benchmarks/objectives.py saves each (objective, seed) cell as it finishes and skips it on a rerun."""

import json
import os

import pytest
from benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def benchmark():
    return load_benchmark("objectives", "objectives_benchmark")


def test_cells_are_saved_one_by_one_and_a_rerun_continues(benchmark, tmp_path, monkeypatch):
    ran = []

    def fake_cell(objective, seed, args, splits, scratch, probes, learning_rate):
        assert learning_rate == 3e-4
        if len(ran) == 3 and not os.environ.get("SECOND_SITTING"):
            raise KeyboardInterrupt  # the first sitting is stopped during its fourth cell
        ran.append((objective, seed))
        return {"objective": objective, "seed": seed, "minutes_budget": args.minutes, "steps": 10 * (seed + 1),
                "dev_accuracy": 0.5 + 0.01 * seed + (0.1 if objective == "electra" else 0.0), "best_epoch": 1,
                "final_metrics": {"mlm_accuracy": 0.1 * (seed + 1), **({"rtd_auc": 0.6 + 0.2 * seed}
                                                                     if objective == "electra" else {})},
                "cell_minutes": 0.0}

    monkeypatch.setattr(benchmark, "run_cell", fake_cell)
    monkeypatch.setattr(benchmark, "sentiment_splits", lambda args: (None, None, None, {}))
    monkeypatch.setattr(benchmark, "probe_all", lambda objectives, args, scratch, path: {})
    monkeypatch.setattr(benchmark, "choose_recipe", lambda args, splits, scratch, probes, path: 3e-4)
    argv = ["--seeds", "2", "--objectives", "electra", "mlm", "--minutes", "2",
            "--output-dir", str(tmp_path)]
    with pytest.raises(KeyboardInterrupt):
        benchmark.main(argv)
    cells = sorted(os.listdir(tmp_path / "cells"))
    assert cells == ["electra-seed0.json", "electra-seed1.json", "mlm-seed0.json"]  # seed by seed
    monkeypatch.setenv("SECOND_SITTING", "1")
    benchmark.main(argv)
    assert ran[3:] == [("mlm", 1)]  # only the missing cell ran
    rows = {row["objective"]: row for row in benchmark.summarize(benchmark.load_cells(str(tmp_path / "cells")))}
    assert rows["electra"]["median"] == pytest.approx(0.605) and rows["electra"]["seeds"] == 2
    assert (rows["mlm"]["min"], rows["mlm"]["max"]) == pytest.approx((0.5, 0.51))
    table = (tmp_path / "objectives.md").read_text()
    assert "| electra | 2 | 15 | 0.6050 | 0.6000 – 0.6100 | 0.150 | 0.700 |" in table
    assert "| mlm | 2 | 15 | 0.5050 | 0.5000 – 0.5100 | 0.150 | – |" in table  # an MLM has no discriminator
    assert (tmp_path / "objectives.png").read_bytes()[:4] == b"\x89PNG"
    with open(tmp_path / "cells" / "mlm-seed1.json") as f:
        assert json.load(f)["seed"] == 1


def test_each_objective_gets_the_steps_its_idle_probe_fits_into_the_budget(benchmark):
    args = benchmark.parse_args(["--minutes", "3", "--batch-size", "16"])
    probes = {"electra batch 16 seq 128": 2.0, "mlm batch 16 seq 128": 1.5}
    assert benchmark.budget_steps("electra", args, probes) == 90  # 180 s / 2.0 s
    assert benchmark.budget_steps("mlm", args, probes) == 120  # the cheaper step gets more steps
    assert benchmark.budget_steps("electra", benchmark.parse_args(["--minutes", "0.01", "--batch-size", "16"]),
                                  probes) == 10  # never fewer than 10


def test_the_fine_tuning_rate_is_chosen_on_validation_only_and_kept(benchmark, tmp_path, monkeypatch):
    """The rate with the best mean validation accuracy wins, even where another rate's dev accuracy is higher."""
    validation = {("random_init", 1e-4): 0.60, ("random_init", 1e-3): 0.70,
                  ("electra", 1e-4): 0.72, ("electra", 1e-3): 0.64}  # means: 1e-4 0.66, 1e-3 0.67
    tried = []

    class Encoder:
        def __init__(self, objective):
            self.objective, self.weights = objective, "pretrained"

        def get_weights(self):
            return self.weights

        def set_weights(self, weights):
            self.weights = weights

    def fake_fine_tune(encoder, splits, seed, rate, args):
        assert encoder.weights == "pretrained"  # every rate starts from the same weights
        encoder.weights = "fine-tuned"
        tried.append((encoder.objective, rate))
        score = validation[(encoder.objective, rate)]
        return 1.0 - score, 2, [{"validation_accuracy": 0.0, "dev_accuracy": 0.0},
                                {"validation_accuracy": score, "dev_accuracy": 1.0 - score}]

    monkeypatch.setattr(benchmark, "make_encoder", lambda objective, seed, args, scratch, probes: (
        Encoder(objective), {}))
    monkeypatch.setattr(benchmark, "fine_tune", fake_fine_tune)
    monkeypatch.setattr(benchmark, "describe_machine", lambda: {"cpu_model": "test"})
    args = benchmark.parse_args(["--recipe-learning-rates", "1e-4", "1e-3"])
    path = str(tmp_path / "recipe.json")
    assert benchmark.choose_recipe(args, None, None, {}, path) == 1e-3
    assert sorted(tried) == sorted(validation)
    with open(path) as f:
        recipe = json.load(f)
    assert recipe["mean_validation_accuracy"] == pytest.approx({"0.0001": 0.66, "0.001": 0.67})
    assert benchmark.choose_recipe(args, None, None, {}, path) == 1e-3 and len(tried) == 4  # kept, not rerun
    with pytest.raises(ValueError, match="delete it"):  # other settings never reuse a stale choice
        benchmark.choose_recipe(benchmark.parse_args(["--recipe-learning-rates", "1e-4", "1e-3", "--epochs", "2"]),
                                None, None, {}, path)
    fixed = benchmark.parse_args(["--finetune-learning-rate", "5e-5"])
    assert benchmark.choose_recipe(fixed, None, None, {}, path) == 5e-5
