"""ELECTRA-Small pretraining throughput: electra_tf against a transformers/torch loop, same run.

    python benchmarks/pretrain_throughput.py [--rounds 5] [--block 3] [--precisions float32,bfloat16]
    python benchmarks/pretrain_throughput.py --batch-parts 2 --intra-op-threads 1 --inter-op-threads 2

Both sides do the same work per step: batch 16 × seq 128, 15% masking
(19 prediction slots), a 1/4-width generator (hidden 64) sharing the
discriminator's embeddings, an exact sample from the generator's softmax
without gradient, RTD labels, loss = MLM + 50·RTD, AdamW with global-norm
clipping. The torch loop is given the same lever as ours (generator
vocabulary logits at the masked positions only) and samples with each
side's fastest exact sampler: Gumbel-max for torch (torch.multinomial on
the softmax took 340-400 ms against 230-260 ms over the (16, 19, 30522)
logits on 2 cores), TensorFlow's multinomial kernel for us. In bfloat16 ours runs under Keras' `mixed_bfloat16`
policy and torch under `torch.autocast("cpu", torch.bfloat16)`.

How it times (single runs on these 2-core machines drift by ±20%, and
timing each side in one block put the drift on one side):
1. the matmul peak of each framework and precision is measured first
   (chained 2048² matmuls), so the step can be read as a share of it;
2. every step function is built and warmed up;
3. then `--rounds` rounds, each running `--block` steps of every
   implementation in turn (ABAB…); a round's ratio compares blocks run
   seconds apart, and the figure reported is the median over rounds.

The step's matmul work is counted from the model sizes (forward + backward
= 3 × the forward's multiply-adds), so "share of peak" = that work / step
time / the measured matmul peak. Any "Using a while_loop for converting …"
warning TensorFlow logs while tracing our step is counted and printed (a
pfor fallback: per-example random numbers computed one by one).

`--intra-op-threads` / `--inter-op-threads` size TensorFlow's thread pools
(before its first op; torch keeps all cores, its fastest), and `--batch-parts
N` builds our step with `ElectraPretrainer(..., batch_parts=N)`: each step's
batch as N parts under one tape, with the whole batch's loss and gradients,
for one thread per op and N inter-op threads (`electra-tf pretrain
--batch-parts N --intra-op-threads 1 --inter-op-threads N`). With one thread
per op a single chain of matmuls runs on one core, so TensorFlow's peak is
then measured as `--inter-op-threads` independent chains at once: the
machine's peak either way.

Prints the table and the ratios, and writes them with the machine they ran
on to benchmarks/results/pretrain_throughput/results.json (`--output-dir`).
"""

import argparse
import logging
import os
import statistics
import time

import numpy as np

PRECISIONS = ("float32", "bfloat16")
KERAS_POLICY = {"float32": None, "bfloat16": "mixed_bfloat16"}


def parse_precisions(text):
    """`--precisions` "float32,bfloat16" → ["float32", "bfloat16"]; anything else is refused.

    >>> parse_precisions("bfloat16, float32")
    ['bfloat16', 'float32']
    """
    precisions = [p.strip() for p in text.split(",") if p.strip()]
    if not precisions or set(precisions) - set(PRECISIONS):
        raise ValueError(f"--precisions must list some of {PRECISIONS}; received {text!r}.")
    return precisions


def make_batch(batch_size, seq_length, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, 30000, (batch_size, seq_length)).astype(np.int32)
    ids[:, 0], ids[:, -1] = 101, 102
    ids[:, seq_length // 2] = 102
    return {
        "input_word_ids": ids,
        "input_mask": np.ones_like(ids),
        "input_type_ids": (np.arange(seq_length)[None] > seq_length // 2).astype(np.int32)
        * np.ones_like(ids),
    }


def time_steps(step, steps, warmup):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def electra_tf_step_time(batch, steps, warmup, jit_compile, preset="small", policy=None,
                         strategy=None, batch_parts=1):
    """Median seconds of our joint train step (see `electra_tf_step_function`)."""
    return time_steps(electra_tf_step_function(batch, jit_compile, preset, policy, strategy,
                                               batch_parts), steps, warmup)


def electra_tf_step_function(batch, jit_compile, preset="small", policy=None, strategy=None,
                             batch_parts=1):
    """Our joint train step, built and traced on first call: a function of no arguments.

    `policy`: a Keras mixed-precision policy ("mixed_float16", "mixed_bfloat16")
    set while the models are built, then put back. `strategy`: a tf.distribute
    strategy; `batch` is then the global batch, split over its replicas.
    `batch_parts`: the pretrainer's (each step's batch in that many parts).
    """
    import tensorflow as tf

    import electra_tf
    import tf_keras as keras
    from electra_tf import ElectraPretrainer, create_optimizer, get_preset, scaled_generator_config

    previous_policy = keras.mixed_precision.global_policy()
    if policy:
        keras.mixed_precision.set_global_policy(policy)
    strategy = strategy or tf.distribute.get_strategy()
    try:
        with strategy.scope():
            discriminator = electra_tf.ElectraDiscriminator.from_preset(preset)
            generator = scaled_generator_config(get_preset(preset, "discriminator"), 0.25).build(
                "generator", embedding_layer=discriminator.encoder.embedding_layer
            )
            pretrainer = ElectraPretrainer(generator, discriminator, batch_parts=batch_parts)
            pretrainer.compile(optimizer=create_optimizer(5e-4, 10_000, 1_000), jit_compile=jit_compile)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    batch = {k: tf.constant(v) for k, v in batch.items()}
    dataset = tf.data.Dataset.from_tensors(batch).unbatch().batch(len(batch["input_word_ids"])).repeat()
    iterator = iter(strategy.experimental_distribute_dataset(dataset))
    train_function = pretrainer.make_train_function()
    return lambda: float(train_function(iterator)["loss"])


def torch_step_time(batch, steps, warmup, masked_positions_only, preset="small", device="cpu",
                    autocast_dtype=None):
    """Median seconds of the transformers/torch loop (see `torch_step_function`)."""
    return time_steps(torch_step_function(batch, masked_positions_only, preset, device,
                                          autocast_dtype), steps, warmup)


def torch_step_function(batch, masked_positions_only, preset="small", device="cpu",
                        autocast_dtype=None):
    """The transformers/torch loop doing the same work: a function of no arguments.

    `device`: "cpu" or "cuda". `autocast_dtype`: None (fp32), torch.float16
    (with a GradScaler, as AMP training does) or torch.bfloat16.
    """
    import torch
    import transformers

    from electra_tf import get_preset, scaled_generator_config

    torch.manual_seed(0)
    sizes = get_preset(preset, "discriminator")

    def hf_config(config):
        return transformers.ElectraConfig(
            vocab_size=config.vocab_size, embedding_size=config.embedding_size,
            hidden_size=config.hidden_size, num_hidden_layers=config.num_layers,
            num_attention_heads=config.num_heads, intermediate_size=config.intermediate_size,
            max_position_embeddings=config.max_sequence_length, hidden_act="gelu",
        )

    discriminator_config = hf_config(sizes)
    generator_config = hf_config(scaled_generator_config(sizes, 0.25))
    discriminator = transformers.ElectraForPreTraining(discriminator_config)
    generator = transformers.ElectraForMaskedLM(generator_config)
    generator.electra.embeddings = discriminator.electra.embeddings  # tied, as the original
    generator.tie_weights()
    discriminator.to(device), generator.to(device)
    parameters = list({id(p): p for p in [*discriminator.parameters(), *generator.parameters()]}.values())
    no_decay = [p for p in parameters if p.ndim == 1]
    decay = [p for p in parameters if p.ndim > 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=5e-4, betas=(0.9, 0.999), eps=1e-6,
    )
    ids = torch.tensor(batch["input_word_ids"]).long().to(device)
    mask = torch.tensor(batch["input_mask"]).long().to(device)
    types = torch.tensor(batch["input_type_ids"]).long().to(device)
    scaler = torch.amp.GradScaler(device, enabled=autocast_dtype == torch.float16)
    num_predictions = int((0.15 + 0.005) * ids.shape[1])

    def step():
        with torch.autocast(device, dtype=autocast_dtype or torch.float32,
                            enabled=autocast_dtype is not None):
            loss = forward()
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        scaler.step(optimizer)
        scaler.update()
        return loss.item()

    def forward():
        # Mask 15%: distinct positions among non-special tokens, 85% → [MASK].
        special = (ids == 101) | (ids == 102) | (ids == 0)
        scores = torch.rand(ids.shape, device=device).masked_fill(special, -1.0)
        positions = scores.topk(num_predictions, dim=-1).indices  # (B, P)
        original = ids.gather(1, positions)
        use_mask = torch.rand(positions.shape, device=device) < 0.85
        masked_ids = ids.scatter(1, positions, torch.where(use_mask, 103, original))
        hidden = generator.electra(masked_ids, attention_mask=mask, token_type_ids=types)[0]
        if masked_positions_only:
            hidden = hidden.gather(1, positions[..., None].expand(-1, -1, hidden.shape[-1]))
            logits = generator.generator_lm_head(generator.generator_predictions(hidden))
        else:
            logits = generator.generator_lm_head(generator.generator_predictions(hidden))
            logits = logits.gather(1, positions[..., None].expand(-1, -1, logits.shape[-1]))
        mlm_loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), original.flatten())
        with torch.no_grad():
            gumbel = -torch.log(-torch.log(torch.rand(logits.shape, device=device) + 1e-9) + 1e-9)
            sampled = (logits.float() + gumbel).argmax(-1)
        corrupted = ids.scatter(1, positions, sampled)
        labels = (corrupted != ids).float()
        rtd_logits = discriminator(corrupted, attention_mask=mask, token_type_ids=types).logits
        rtd_loss = torch.nn.functional.binary_cross_entropy_with_logits(rtd_logits.float(), labels)
        return mlm_loss + 50.0 * rtd_loss

    torch.set_num_threads(os.cpu_count())
    discriminator.train(), generator.train()
    return step


def encoder_macs_per_token(config, seq_length):
    """Multiply-adds of one encoder forward, per token (dense layers and attention)."""
    hidden, inner = config.hidden_size, config.intermediate_size
    projection = config.embedding_size * hidden if config.embedding_size != hidden else 0
    per_layer = hidden * 3 * hidden + hidden * hidden + 2 * hidden * inner + 2 * seq_length * hidden
    return projection + config.num_layers * per_layer


def step_matmul_flops(discriminator_config, generator_config, batch_size, seq_length,
                      num_predictions):
    """Matmul FLOPs of one pretraining step: forward + backward = 3 × forward, 2 per multiply-add.

    Discriminator: encoder + head (dense H→H, H→1) on every token. Generator:
    encoder on every token, head (dense Hg→E, logits E→V) on the masked
    positions only.

    >>> from electra_tf import get_preset, scaled_generator_config
    >>> small = get_preset("small", "discriminator")
    >>> round(step_matmul_flops(small, scaled_generator_config(small, 0.25), 16, 128, 19) / 1e9)
    144
    """
    tokens = batch_size * seq_length
    discriminator = tokens * (encoder_macs_per_token(discriminator_config, seq_length)
                              + discriminator_config.hidden_size ** 2
                              + discriminator_config.hidden_size)
    generator = (tokens * encoder_macs_per_token(generator_config, seq_length)
                 + batch_size * num_predictions * (
                     generator_config.hidden_size * generator_config.embedding_size
                     + generator_config.embedding_size * generator_config.vocab_size))
    return 3 * 2 * (discriminator + generator)


def small_step_matmul_flops(batch_size, seq_length):
    """`step_matmul_flops` of the step this script times: ELECTRA-Small, 1/4 generator, 15% masked.

    >>> round(small_step_matmul_flops(16, 128) / 1e9)
    144
    """
    from electra_tf import get_preset, scaled_generator_config

    small = get_preset("small", "discriminator")
    return step_matmul_flops(small, scaled_generator_config(small, 0.25), batch_size, seq_length,
                             int((0.15 + 0.005) * seq_length))  # 19 prediction slots at 128


def matmul_peak_gflops(framework, precision, size=2048, chain=10, repeats=5, parallel_chains=1):
    """GFLOP/s of chained size × size matmuls: the framework's practical matmul peak here.

    `parallel_chains` (TensorFlow): that many independent chains in one
    function, which its inter-op threads run at once: the peak of a process
    with one thread per op.
    """
    flops = parallel_chains * chain * 2 * size ** 3
    if framework == "tensorflow":
        import tensorflow as tf

        dtype = tf.bfloat16 if precision == "bfloat16" else tf.float32
        a = tf.cast(tf.random.normal((size, size)), dtype)
        b = tf.cast(tf.random.normal((size, size)) / size ** 0.5, dtype)  # keeps the chain finite

        @tf.function
        def run(a, b):
            ends = []
            for start in range(parallel_chains):
                c = a + tf.cast(start, dtype)  # chains of their own: no product shared
                for _ in range(chain):  # each product feeds the next: nothing to fold away
                    c = tf.matmul(c, b)
                ends.append(c[0, 0])
            return tf.stack(ends)

        seconds = time_steps(lambda: run(a, b).numpy(), repeats, warmup=1)
    else:
        import torch

        dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
        a = torch.randn(size, size, dtype=dtype)
        b = (torch.randn(size, size) / size ** 0.5).to(dtype)

        def run():
            c = a
            for _ in range(chain):
                c = c @ b
            return float(c[0, 0])

        torch.set_num_threads(os.cpu_count())
        seconds = time_steps(run, repeats, warmup=1)
    return flops / seconds / 1e9


class WarningCounter(logging.Handler):
    """Counts log records whose message contains `text` (attached to TensorFlow's logger)."""

    def __init__(self, text):
        super().__init__()
        self.text, self.count = text, 0

    def emit(self, record):
        self.count += self.text in record.getMessage()


def interleaved_seconds(steps, rounds, block):
    """Per-step seconds of each step function, run in turn: `rounds` × (`block` steps of each).

    Returns {name: [median seconds of that round's block, ...]}.
    """
    seconds = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            times = []
            for _ in range(block):
                start = time.perf_counter()
                step()
                times.append(time.perf_counter() - start)
            seconds[name].append(statistics.median(times))
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="ABAB rounds (the median is reported)")
    parser.add_argument("--block", type=int, default=3, help="steps per implementation per round")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-length", type=int, default=128)
    parser.add_argument("--precisions", default="float32,bfloat16",
                        help="comma-separated: float32 and/or bfloat16 (CPUs with bfloat16 units)")
    parser.add_argument("--jit-compile", action="store_true",
                        help="also time our step compiled by XLA (slower than the graph on the "
                             "CPUs measured so far, and a minute to compile)")
    parser.add_argument("--matmul-size", type=int, default=2048,
                        help="side of the square matmuls the peak is measured on (default: 2048)")
    parser.add_argument("--batch-parts", type=int, default=1,
                        help="our step's batch in this many parts (ElectraPretrainer(batch_parts=N)); "
                        "with --intra-op-threads 1 --inter-op-threads N")
    parser.add_argument("--intra-op-threads", type=int, default=0,
                        help="TensorFlow threads one op is split over (default: 0, all cores)")
    parser.add_argument("--inter-op-threads", type=int, default=0,
                        help="TensorFlow threads running independent ops at once (default: 0, "
                        "all cores)")
    parser.add_argument("--output-dir", default=os.path.join("benchmarks", "results",
                                                             "pretrain_throughput"),
                        help="results.json (figures and the machine) goes here")
    args = parser.parse_args(argv)
    precisions = parse_precisions(args.precisions)
    if args.rounds < 1 or args.block < 1:
        raise ValueError(f"--rounds and --block must be ≥ 1; received {args.rounds}, {args.block}.")
    if args.matmul_size < 1:
        raise ValueError(f"--matmul-size must be ≥ 1; received {args.matmul_size}.")
    if not 1 <= args.batch_parts <= args.batch_size:
        raise ValueError(f"--batch-parts must be in [1, --batch-size={args.batch_size}]; received "
                         f"{args.batch_parts}.")

    import electra_tf  # sets TF_USE_LEGACY_KERAS before TensorFlow is imported

    electra_tf.set_tensorflow_threads(args.intra_op_threads, args.inter_op_threads)  # before any op
    import tensorflow as tf
    import torch

    threads = {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
               "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}
    # One thread per op: a lone chain of matmuls would use one core of the machine.
    parallel_chains = max(1, threads["inter_op"]) if threads["intra_op"] == 1 else 1

    batch = make_batch(args.batch_size, args.seq_length)
    tokens = args.batch_size * args.seq_length
    flops = small_step_matmul_flops(args.batch_size, args.seq_length)

    print(f"TensorFlow threads: intra-op {threads['intra_op'] or 'all cores'}, inter-op "
          f"{threads['inter_op'] or 'all cores'}; our step in {args.batch_parts} batch part(s)")
    print(f"Matmul peak, chained {args.matmul_size}² products (GFLOP/s"
          + (f"; TensorFlow: {parallel_chains} chains at once" if parallel_chains > 1 else "") + "):")
    peaks = {}
    for precision in precisions:
        for framework in ("tensorflow", "torch"):
            peaks[f"{framework} {precision}"] = matmul_peak_gflops(
                framework, precision, size=args.matmul_size,
                parallel_chains=parallel_chains if framework == "tensorflow" else 1)
            print(f"  {framework:10s} {precision:8s} {peaks[f'{framework} {precision}']:7.0f}")

    counter = WarningCounter("Using a while_loop for converting")
    logging.getLogger("tensorflow").addHandler(counter)
    steps = {}
    for precision in precisions:
        policy = KERAS_POLICY[precision]
        autocast = torch.bfloat16 if precision == "bfloat16" else None
        steps[f"electra_tf {precision}"] = electra_tf_step_function(
            batch, False, policy=policy, batch_parts=args.batch_parts)
        if args.jit_compile:
            steps[f"electra_tf {precision} XLA"] = electra_tf_step_function(
                batch, True, policy=policy, batch_parts=args.batch_parts)
        steps[f"torch {precision}"] = torch_step_function(batch, True, autocast_dtype=autocast)
    for name, step in steps.items():  # tracing, oneDNN primitive caches, allocators
        for _ in range(args.warmup):
            step()
    logging.getLogger("tensorflow").removeHandler(counter)
    seconds = interleaved_seconds(steps, args.rounds, args.block)

    print(f"\nELECTRA-Small pretraining step, batch {args.batch_size} × seq {args.seq_length}, "
          f"{os.cpu_count()} CPU cores ({electra_tf.describe_cpu()}), "
          f"{args.rounds} rounds × {args.block} steps each, ABAB; matmul work "
          f"{flops / 1e9:.0f} GFLOP/step")
    print(f"{'implementation':28s} {'ms/step':>8s} {'tokens/s':>9s} {'GFLOP/s':>8s} "
          f"{'of its peak':>11s}")
    rows = {}
    for name, values in seconds.items():
        median = statistics.median(values)
        precision = "bfloat16" if "bfloat16" in name else "float32"
        framework = "torch" if name.startswith("torch") else "tensorflow"
        achieved = flops / median / 1e9
        share = achieved / peaks[f"{framework} {precision}"]
        rows[name] = {"ms_per_step": 1000 * median, "tokens_per_second": tokens / median,
                      "matmul_gflops": achieved, "share_of_matmul_peak": share,
                      "round_seconds": values}
        print(f"{name:28s} {1000 * median:8.0f} {tokens / median:9.0f} {achieved:8.0f} "
              f"{share:10.0%}")

    def ratio(slow, fast):  # median over rounds of the per-round ratio
        return statistics.median(s / f for s, f in zip(seconds[slow], seconds[fast]))

    ratios = {}
    for precision in precisions:
        ratios[f"electra_tf / torch, {precision}"] = ratio(f"torch {precision}",
                                                          f"electra_tf {precision}")
    if set(PRECISIONS) <= set(precisions):
        ratios["electra_tf bfloat16 / electra_tf float32"] = ratio("electra_tf float32",
                                                                   "electra_tf bfloat16")
        ratios["torch bfloat16 / torch float32"] = ratio("torch float32", "torch bfloat16")
    print("\nspeed ratios (median over rounds of the per-round ratio; targets in #19: "
          "fp32 vs torch ≥ 1.3, bf16 vs torch ≥ 1.3, our bf16 vs our fp32 ≥ 1.7, "
          "fp32 share of peak ≥ 75%):")
    for name, value in ratios.items():
        print(f"  {name:45s} {value:5.2f}×")
    print(f"'Using a while_loop' warnings while tracing our steps: {counter.count}")

    path = electra_tf.write_benchmark_results(args.output_dir, {
        "benchmark": "pretrain_throughput", "args": vars(args),
        "tensorflow_threads": threads, "matmul_peak_parallel_chains": parallel_chains,
        "matmul_peak_gflops": peaks, "step_matmul_gflop": flops / 1e9, "rows": rows,
        "ratios": ratios, "while_loop_warnings": counter.count,
        "versions": {"tensorflow": tf.__version__, "torch": torch.__version__}})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
