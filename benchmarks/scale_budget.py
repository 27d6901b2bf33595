"""Scale budget: what ELECTRA-Small, Base and Large cost at the paper's step counts, per device.

    python benchmarks/scale_budget.py [--measured PATH/results.json ...] [--markdown]

Training FLOPs per token are counted from the model sizes (the matmuls of
the discriminator and of the generator, forward and backward = 3 × forward;
the generator's vocabulary logits at the 15% masked positions only, as our
step computes them; attention scores and mixing included). Tokens are the
paper's: steps × batch × sequence length. Time on a device is
FLOPs / (peak × utilisation). The utilisation is

* **measured** where a results.json from `benchmarks/accelerator_check.py` (a
  GPU) or `benchmarks/pretrain_throughput.py`-style figures are given: tokens/s
  × FLOP/token / the device's peak;
* otherwise **assumed** (printed as such): 15% for Small, whose 256-wide
  matmuls cannot fill an accelerator, 35% for Base and 45% for Large, the
  range published BERT pretraining runs report with mixed precision and XLA.

Peaks are the vendors' dense bfloat16/float16 figures per chip; the CPU row is
TensorFlow's fp32 matmul peak measured on the 2-core AVX-512 machine
(`../shared/NOTES.md` of this project: 194 GFLOP/s), with the 1,471 tokens/s
our Small step reached there. Writes nothing; prints a table (Markdown with
`--markdown`, the form docs/scale_budget.md quotes).
"""

import argparse
import json

VOCAB_SIZE = 30522

# name: (hidden, layers, heads, intermediate, embedding, generator width, seq, batch, steps)
MODELS = {
    "ELECTRA-Small": dict(hidden=256, layers=12, intermediate=1024, embedding=128, generator=1 / 4,
                          seq=128, batch=128, steps=1_000_000),
    "ELECTRA-Base": dict(hidden=768, layers=12, intermediate=3072, embedding=768, generator=1 / 3,
                         seq=512, batch=256, steps=766_000),
    "ELECTRA-Large": dict(hidden=1024, layers=24, intermediate=4096, embedding=1024, generator=1 / 4,
                          seq=512, batch=2048, steps=400_000),
}
ASSUMED_UTILISATION = {"ELECTRA-Small": 0.15, "ELECTRA-Base": 0.35, "ELECTRA-Large": 0.45}

# Dense peak FLOP/s per chip (bfloat16/float16 tensor cores or MXUs, no sparsity).
DEVICES = {
    "NVIDIA V100": 125e12,
    "NVIDIA A100": 312e12,
    "NVIDIA H100 / H200 (SXM)": 989e12,
    "TPU v3 chip": 123e12,
    "TPU v4 chip": 275e12,
    "TPU v5e chip": 197e12,
    "TPU v5p chip": 459e12,
}
CPU_MEASURED = {"name": "2-core AMD EPYC, AVX-512 (fp32, measured)", "peak": 194e9,
                "small_tokens_per_s": 1471.0}


def encoder_forward_flops(hidden, layers, intermediate, embedding, seq):
    """Forward FLOPs per token of one encoder: projections, attention, FFN, embedding projection."""
    per_layer = 2 * (4 * hidden * hidden + 2 * hidden * intermediate) + 4 * seq * hidden
    projection = 2 * embedding * hidden if embedding != hidden else 0
    return layers * per_layer + projection


def training_flops_per_token(hidden, layers, intermediate, embedding, generator, seq, mask_rate=0.15,
                             **_):
    """Forward + backward (3 × forward) FLOPs per token of the joint ELECTRA step.

    >>> round(training_flops_per_token(**MODELS["ELECTRA-Small"]) / 1e6)
    70
    """
    g_hidden, g_intermediate = int(round(hidden * generator)), int(round(intermediate * generator))
    discriminator = encoder_forward_flops(hidden, layers, intermediate, embedding, seq)
    discriminator += 2 * hidden * hidden + 2 * hidden  # the RTD head
    generator_flops = encoder_forward_flops(g_hidden, layers, g_intermediate, embedding, seq)
    # MLM head at the masked positions: dense to the embedding size, tied vocabulary logits.
    generator_flops += mask_rate * (2 * g_hidden * embedding + 2 * embedding * VOCAB_SIZE)
    return 3 * (discriminator + generator_flops)


def budget_rows(utilisation_override=None):
    """One row per (model, device): tokens, FLOPs, utilisation, device-days."""
    rows = []
    for model, sizes in MODELS.items():
        tokens = sizes["steps"] * sizes["batch"] * sizes["seq"]
        flops = tokens * training_flops_per_token(**sizes)
        for device, peak in DEVICES.items():
            measured = (utilisation_override or {}).get((model, device))
            utilisation = measured if measured is not None else ASSUMED_UTILISATION[model]
            seconds = flops / (peak * utilisation)
            rows.append({"model": model, "device": device, "tokens": tokens, "flops": flops,
                         "utilisation": utilisation, "measured": measured is not None,
                         "tokens_per_s": tokens / seconds, "device_days": seconds / 86400})
        if model == "ELECTRA-Small":
            cpu_seconds = tokens / CPU_MEASURED["small_tokens_per_s"]
            rows.append({"model": model, "device": CPU_MEASURED["name"], "tokens": tokens, "flops": flops,
                         "utilisation": CPU_MEASURED["small_tokens_per_s"] * flops / tokens
                         / CPU_MEASURED["peak"], "measured": True,
                         "tokens_per_s": CPU_MEASURED["small_tokens_per_s"],
                         "device_days": cpu_seconds / 86400})
    return rows


def measured_utilisation(paths):
    """{(model, device): utilisation} from accelerator_check results.json files (Small, one GPU)."""
    measured = {}
    for path in paths:
        with open(path) as f:
            results = json.load(f)
        if results.get("cpu_smoke"):
            raise ValueError(f"{path} is a --cpu-smoke run: its figures are not a GPU's.")
        gpu = " ".join(results["machine"].get("gpus", []))
        device = next((name for name in DEVICES
                       if any(part in gpu for part in name.replace("NVIDIA ", "").split(" / "))), None)
        if device is None:
            raise ValueError(f"{path}: GPU {gpu!r} is not one of {sorted(DEVICES)}.")
        rows = results["pretraining_throughput"]["rows"]
        tokens_per_s = max(row["tokens_per_s"] for name, row in rows.items() if name.startswith("electra_tf"))
        sizes = MODELS["ELECTRA-Small"]
        measured[("ELECTRA-Small", device)] = (
            tokens_per_s * training_flops_per_token(**sizes) / DEVICES[device])
    return measured


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measured", nargs="*", default=[],
                        help="results.json files written by benchmarks/accelerator_check.py")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    rows = budget_rows(measured_utilisation(args.measured))
    for model, sizes in MODELS.items():
        row = next(r for r in rows if r["model"] == model)
        print(f"{model}: {sizes['steps']:,} steps × batch {sizes['batch']} × seq {sizes['seq']} = "
              f"{row['tokens'] / 1e9:,.1f} B tokens; "
              f"{training_flops_per_token(**sizes) / 1e6:,.0f} MFLOP/token; {row['flops']:.2e} FLOPs")
    print()
    if args.markdown:
        print("| model | device | utilisation | tokens/s per device | device-days |")
        print("|---|---|---|---|---|")
    for row in rows:
        kind = "measured" if row["measured"] else "assumed"
        if args.markdown:
            print(f"| {row['model']} | {row['device']} | {row['utilisation']:.0%} ({kind}) | "
                  f"{row['tokens_per_s']:,.0f} | {row['device_days']:,.1f} |")
        else:
            print(f"{row['model']:14s} {row['device']:42s} {row['utilisation']:5.0%} {kind:8s} "
                  f"{row['tokens_per_s']:14,.0f} tokens/s {row['device_days']:12,.1f} device-days")


if __name__ == "__main__":
    main()
