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

    def fake_cell(objective, seed, args, splits, scratch, probes):
        if len(ran) == 3 and not os.environ.get("SECOND_SITTING"):
            raise KeyboardInterrupt  # the first sitting is stopped during its fourth cell
        ran.append((objective, seed))
        return {"objective": objective, "seed": seed, "minutes_budget": args.minutes, "steps": 10 * (seed + 1),
                "dev_accuracy": 0.5 + 0.01 * seed + (0.1 if objective == "electra" else 0.0), "best_epoch": 1,
                "cell_minutes": 0.0}

    monkeypatch.setattr(benchmark, "run_cell", fake_cell)
    monkeypatch.setattr(benchmark, "sentiment_splits", lambda args: (None, None, None, {}))
    monkeypatch.setattr(benchmark, "probe_all", lambda objectives, args, scratch, path: {})
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
    assert "| electra | 2 | 15 | 0.6050 | 0.6000 – 0.6100 |" in table
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
