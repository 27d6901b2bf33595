"""benchmarks/structured_pruning.py: `--retime` measures the saved runs' speed again
(with the floor model that no pruning speeds up), `proportional_speedup` says what
pruning would give were time to scale with weights, and `--median-of` refuses runs
that differ in more than their seed."""

import json
import os
import re
import shutil
import sys

import pytest
from benchmark_scripts import load_benchmark as load
from conftest import TINY, make_inputs

from electra_tf import ElectraClassifier, ElectraEncoder


@pytest.fixture(scope="module")
def benchmark():
    return load("structured_pruning")


def _classifier(path, num_heads, intermediate_size):
    encoder = ElectraEncoder(**dict(TINY, vocab_size=30522, num_heads=num_heads, head_size=4,
                                    intermediate_size=intermediate_size))
    classifier = ElectraClassifier(encoder, num_classes=2)
    classifier(make_inputs())
    classifier.save_pretrained(path)
    return path


def test_retime_times_both_models_and_the_floor_of_each_run_in_both_formats(benchmark, tmp_path, monkeypatch):
    teacher = _classifier(str(tmp_path / "teacher"), num_heads=2, intermediate_size=16)
    runs = []
    for seed in (0, 1):  # the second run's pruned model is the first's, copied
        run = tmp_path / f"run{seed}"
        if seed == 0:
            _classifier(str(run / "pruned_model"), num_heads=1, intermediate_size=8)
        else:
            shutil.copytree(tmp_path / "run0", run)
        runs.append(str(run))
    out = tmp_path / "retime"
    exported = []  # (format, model), in call order: the models every run shares go out once

    def recording(export, fmt):
        def record_and_export(model, path, *args, **kwargs):
            sizes = (model.encoder.num_heads, model.encoder.intermediate_size)
            exported.append((fmt, {(2, 16): "unpruned", (1, 8): "pruned", (1, 1): "floor"}[sizes]))
            return export(model, path, *args, **kwargs)
        return record_and_export

    for name, fmt in (("export_task_saved_model", "saved_model"), ("export_tflite", "tflite")):
        monkeypatch.setattr(benchmark, name, recording(getattr(benchmark, name), fmt))
    monkeypatch.setattr(sys, "argv", ["structured_pruning.py", "--classifier", teacher,
                                      "--retime", *runs, "--output-dir", str(out),
                                      "--latency-rounds", "1", "--seq-length", "16"])
    benchmark.retime(benchmark.parse_args())
    with open(out / "results.json") as f:
        record = json.load(f)
    # SavedModels with 1 and 2 batch parts, TFLite at batch 1 and 32: each model once per
    # call; the second run exports only its own pruned model.
    first = [(fmt, model) for fmt in ("saved_model", "tflite") for _ in (1, 2)
             for model in benchmark.MODELS]
    second = [(fmt, "pruned") for fmt in ("saved_model", "tflite") for _ in (1, 2)]
    assert exported == first + second
    assert record["retime_of"] == runs and re.fullmatch(r"[0-9a-f]{40}", record["code"]["commit"])
    formats = ("saved_model", "saved_model_default_threads", "tflite")
    keys = [f"{fmt}_batch_{batch}" for fmt in formats for batch in (1, 32)]
    for run in runs:
        assert sorted(record["runs"][run]) == sorted(keys)
        for key in keys:
            ms = record["runs"][run][key]
            assert ms["unpruned"] > 0 and ms["pruned"] > 0 and ms["floor"] > 0
            assert ms["speedup"] == pytest.approx(ms["unpruned"] / ms["pruned"])
            assert ms["floor_share"] == pytest.approx(ms["floor"] / ms["unpruned"])
            # Timings of models this small are noise; the formula on them is not.
            assert ms["proportional_speedup"] == pytest.approx(
                benchmark.proportional_speedup(ms, record["parameters"][run]))
        sizes = record["parameters"][run]
        assert sizes["floor"] < sizes["pruned"] < sizes["unpruned"]
    for key in keys:
        for figure in ("speedup", "floor_share", "proportional_speedup"):
            values = [record["runs"][run][key][figure] for run in runs]
            assert record["figures"][f"{key}_{figure}"] == pytest.approx(sum(values) / 2)
    assert "cpu_model" in record["machine"]
    assert os.path.isdir(out / "pruned_saved_model") and os.path.isdir(out / "floor_saved_model")
    # The SavedModels were timed in each setting, each in its own process with its threads.
    settings = benchmark.SAVED_MODEL_SETTINGS
    assert record["saved_model_settings"] == settings
    for run in runs:
        timings = record["saved_model_timings"][run]
        for key, setting in settings.items():
            assert timings[key]["threads"] == [setting["intra_op_threads"],
                                               setting["inter_op_threads"]]
            assert all(timings[key][f"batch_{b}"][m] > 0 for b in (1, 32) for m in benchmark.MODELS)
        for batch in ("batch_1", "batch_32"):
            ms = record["runs"][run][f"saved_model_{batch}"]
            for model in benchmark.MODELS:  # each model's fastest setting
                assert ms[model] == min(timings[key][batch][model] for key in settings)
                assert ms[model] == timings[timings["fastest"][batch][model]][batch][model]
            default = record["runs"][run][f"saved_model_default_threads_{batch}"]
            assert all(default[m] == timings["default_threads"][batch][m] for m in benchmark.MODELS)
    parts = out / "unpruned_saved_model_2_parts" / "assets.extra" / "electra_tf_export.json"
    assert json.loads(parts.read_text())["batch_parts"] == 2


def test_floor_model_keeps_one_head_and_one_neuron_per_layer(benchmark, tmp_path):
    teacher = ElectraClassifier.from_pretrained(
        _classifier(str(tmp_path / "teacher"), num_heads=2, intermediate_size=16))
    floor = benchmark.floor_model(teacher)
    assert (floor.encoder.num_heads, floor.encoder.intermediate_size) == (1, 1)
    assert floor.encoder.num_layers == teacher.encoder.num_layers
    assert floor.encoder.head_size == teacher.encoder.head_size


def test_proportional_speedup_keeps_the_floor_and_scales_the_rest_by_weights_kept(benchmark):
    parameters = {"unpruned": 1000, "pruned": 600, "floor": 200}  # half the prunable weights
    proportional = benchmark.proportional_speedup
    assert proportional({"unpruned": 10.0, "floor": 0.0}, parameters) == pytest.approx(2.0)
    assert proportional({"unpruned": 10.0, "floor": 4.0}, parameters) == pytest.approx(10 / 7)
    assert proportional({"unpruned": 10.0, "floor": 10.0}, parameters) == pytest.approx(1.0)
    # Nothing pruned: no speed-up whatever the floor.
    assert proportional({"unpruned": 10.0, "floor": 4.0},
                   dict(parameters, pruned=1000)) == pytest.approx(1.0)


def test_speed_figures_name_each_format_and_batch(benchmark):
    speed = {"saved_model": {"batch_1": {"unpruned": 12.0, "pruned": 9.0, "floor": 4.0}}}
    figures = benchmark.speed_figures(speed, {"unpruned": 3, "pruned": 2, "floor": 1})
    assert figures == pytest.approx({"saved_model_batch_1_speedup": 12 / 9,
                                     "saved_model_batch_1_floor_share": 4 / 12,
                                     "saved_model_batch_1_proportional_speedup": 12 / 8})


def test_fastest_setting_takes_each_models_own_fastest(benchmark):
    timings = {"default_threads": {"batch_1": {"unpruned": 10.0, "pruned": 7.0},
                                   "batch_32": {"unpruned": 90.0, "pruned": 60.0}},
               "one_thread": {"batch_1": {"unpruned": 9.0, "pruned": 7.5},
                              "batch_32": {"unpruned": 150.0, "pruned": 55.0}}}
    fastest, chosen = benchmark.fastest_setting(timings)
    assert fastest == {"batch_1": {"unpruned": 9.0, "pruned": 7.0},
                       "batch_32": {"unpruned": 90.0, "pruned": 55.0}}
    assert chosen == {"batch_1": {"unpruned": "one_thread", "pruned": "default_threads"},
                      "batch_32": {"unpruned": "default_threads", "pruned": "one_thread"}}


def test_median_of_refuses_runs_with_other_settings(benchmark, tmp_path):
    runs = []
    for seed, steps in ((0, 250), (1, 100)):
        run = tmp_path / f"run{seed}"
        run.mkdir()
        (run / "results.json").write_text(json.dumps({
            "args": {"seed": seed, "output_dir": str(run), "median_of": None,
                     "distill_steps": steps},
            "figures": {"pruned_dev_accuracy": 0.8}}))
        runs.append(str(run))
    with pytest.raises(SystemExit, match="differ in more than their seed"):
        benchmark.median_of_runs(runs, str(tmp_path / "median"))


def test_each_turn_starts_with_untimed_warm_up_calls(benchmark):
    """A model's first calls after another model's turn (weights out of the caches) are
    not timed: here each function is slow on the first two calls of its turn, and only
    with two warm-up calls a turn does the median see its steady state."""
    import time

    last = {"function": None, "in_turn": 0}

    def slow_after_a_switch(name):
        def call():
            if last["function"] != name:
                last["function"], last["in_turn"] = name, 0
            last["in_turn"] += 1
            if last["in_turn"] <= 2:
                time.sleep(0.05)
        return call

    functions = [slow_after_a_switch("a"), slow_after_a_switch("b")]
    cold = benchmark.interleaved_calls(functions, rounds=3, calls=3)
    warm = benchmark.interleaved_calls(functions, rounds=3, calls=3, warmup=2)
    assert min(cold) >= 50 and max(warm) < 25, (cold, warm)
    assert benchmark.WARMUP_CALLS[1] >= 2 and benchmark.WARMUP_CALLS[32] >= 1
