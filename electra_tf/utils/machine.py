"""describe_machine: the CPU, cores and library versions a benchmark ran on, for its results.json.

Speed ratios measured on one CPU do not carry over to another (AVX2 vs
AVX-512 with VNNI and BF16 changes them), so every benchmark records this:
`write_benchmark_results` writes OUTPUT_DIR/results.json with the machine in it.
"""

import importlib.metadata
import os
import platform
import subprocess

# The SIMD flags that decide TensorFlow's and torch's CPU kernels.
SIMD_FLAGS = ("sse4_1", "sse4_2", "sse4a", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
              "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx512_vp2intersect", "amx_bf16",
              "amx_int8", "amx_tile")


def cpu_info(cpuinfo="/proc/cpuinfo"):
    """{cpu_model, cpu_family, cpu_model_number, cpu_flags_simd} read from `cpuinfo` (Linux).

    Two CPUs can share a model name ("AMD EPYC" names several generations on a cloud
    machine); the family and model numbers tell them apart (AMD family 25 is Zen 3 and Zen 4,
    26 is Zen 5; Intel family 6 with its model number). Missing fields are left out.

    >>> info = cpu_info()
    >>> isinstance(info["cpu_model"], str) and isinstance(info["cpu_flags_simd"], list)
    True
    """
    model, family, number, flags = platform.processor() or "unknown", None, None, set()
    try:
        with open(cpuinfo) as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "model name" and model in ("unknown", "", platform.machine()):
                    model = value
                elif key == "cpu family" and family is None and value.isdigit():
                    family = int(value)
                elif key == "model" and number is None and value.isdigit():
                    number = int(value)
                elif key == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    info = {"cpu_model": model}
    if family is not None:
        info["cpu_family"] = family
    if number is not None:
        info["cpu_model_number"] = number
    info["cpu_flags_simd"] = [flag for flag in SIMD_FLAGS if flag in flags]
    return info


def describe_cpu(info=None):
    """The CPU as a benchmark prints it: model name, then family and model number where known.

    `info` is `cpu_info()`'s or `describe_machine()`'s dict (read now when None).

    >>> describe_cpu({"cpu_model": "AMD EPYC", "cpu_family": 26, "cpu_model_number": 2})
    'AMD EPYC, family 26 model 2'
    >>> describe_cpu({"cpu_model": "unknown"})
    'unknown'
    """
    info = cpu_info() if info is None else info
    if "cpu_family" not in info:
        return info["cpu_model"]
    number = info.get("cpu_model_number", "?")
    return f"{info['cpu_model']}, family {info['cpu_family']} model {number}"


def describe_machine():
    """{cpu_model, cpu_family, cpu_model_number, cpu_flags_simd, cores, python, tensorflow, ...}.

    >>> info = describe_machine()
    >>> sorted(key for key in ("cpu_model", "cores", "python", "tensorflow") if key in info)
    ['cores', 'cpu_model', 'python', 'tensorflow']
    """
    info = {**cpu_info(),
            "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "python": platform.python_version()}
    import tensorflow as tf

    info["tensorflow"] = tf.__version__
    for name in ("tf-keras", "torch", "transformers"):
        try:
            info[name] = importlib.metadata.version(name)  # read, not imported
        except importlib.metadata.PackageNotFoundError:
            pass
    return info


def code_version():
    """{"commit", "modified"}: the git commit of the electra_tf checkout that runs, or None.

    "modified" is True when the library or the benchmark scripts differ from
    that commit (results under benchmarks/results/ do not count: a benchmark
    writes them). None outside a git checkout, e.g. a pip-installed package.

    >>> version = code_version()
    >>> version is None or sorted(version)
    ['commit', 'modified']
    """
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              timeout=30)

    try:
        head = git("rev-parse", "--show-toplevel", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return None
    lines = head.stdout.split()
    if head.returncode != 0 or len(lines) != 2 or os.path.realpath(lines[0]) != os.path.realpath(root):
        return None  # not the checkout this package lives in
    changes = git("status", "--porcelain", "--untracked-files=no", "--", "electra_tf",
                  "benchmarks", ":(exclude)benchmarks/results")
    return {"commit": lines[1], "modified": bool(changes.stdout.strip())}


def write_benchmark_results(output_dir, results):
    """Writes `results`, `describe_machine()` and `code_version()` to `output_dir`/results.json.

    Every script under benchmarks/ ends with this, so a figure quoted in the
    README comes from a committed file that names the machine it ran on and
    the commit it measured ("code"; None outside a git checkout). The file
    is written atomically.
    `results` is a JSON-able dict; its own "machine" entry, if any, is kept
    (a benchmark may add devices it found) and completed.

    >>> import json, os, tempfile
    >>> path = write_benchmark_results(tempfile.mkdtemp(), {"tokens_per_second": 1471.0})
    >>> record = json.load(open(path))
    >>> record["tokens_per_second"], "cpu_model" in record["machine"]
    (1471.0, True)

    Returns:
        The path written.
    """
    from electra_tf.utils.json_files import write_json

    if not isinstance(results, dict):
        raise ValueError(f"`results` must be a dict; received {type(results).__name__}.")
    record = dict(results)
    record["machine"] = {**describe_machine(), **dict(results.get("machine") or {})}
    record.setdefault("code", code_version())
    path = os.path.join(output_dir, "results.json")
    write_json(path, record)
    return path
