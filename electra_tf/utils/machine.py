"""describe_machine: the CPU, cores and library versions a benchmark ran on, for its results.json.

Speed ratios measured on one CPU do not carry over to another (AVX2 vs
AVX-512 with VNNI and BF16 changes them), so every benchmark records this.
"""

import importlib.metadata
import os
import platform

# The SIMD flags that decide TensorFlow's and torch's CPU kernels.
SIMD_FLAGS = ("sse4_1", "sse4_2", "sse4a", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
              "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")


def describe_machine():
    """{cpu_model, cpu_flags_simd, cores, python, tensorflow, torch (if installed), ...}.

    >>> info = describe_machine()
    >>> sorted(key for key in ("cpu_model", "cores", "python", "tensorflow") if key in info)
    ['cores', 'cpu_model', 'python', 'tensorflow']
    """
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model in ("unknown", "", platform.machine()):
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    info = {"cpu_model": model, "cpu_flags_simd": [flag for flag in SIMD_FLAGS if flag in flags],
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
