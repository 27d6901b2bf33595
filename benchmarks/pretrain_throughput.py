"""ELECTRA-Small pretraining throughput: electra_tf against a transformers/torch loop, same run.

    python benchmarks/pretrain_throughput.py [--steps 10] [--batch-size 16] [--seq-length 128]

Both sides do the same work per step: batch 16 × seq 128, 15% masking
(19 prediction slots), a 1/4-width generator (hidden 64) sharing the
discriminator's embeddings, Gumbel sampling without gradient, RTD labels,
loss = MLM + 50·RTD, AdamW with global-norm clipping. The torch loop is
given the same lever as ours (generator vocabulary logits at the masked
positions only); the naive loop (logits for every token, as
`ElectraForMaskedLM.forward` computes them) is timed too.

Prints tokens/s for each and the ratio electra_tf / torch (target ≥ 1.5×), and
writes them with the machine they ran on to
benchmarks/results/pretrain_throughput/results.json (`--output-dir`).
"""

import argparse
import os
import statistics
import time

import numpy as np


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
                         strategy=None):
    """Median seconds of our joint train step.

    `policy`: a Keras mixed-precision policy ("mixed_float16", "mixed_bfloat16")
    set while the models are built, then put back. `strategy`: a tf.distribute
    strategy; `batch` is then the global batch, split over its replicas.
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
            pretrainer = ElectraPretrainer(generator, discriminator)
            pretrainer.compile(optimizer=create_optimizer(5e-4, 10_000, 1_000), jit_compile=jit_compile)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    batch = {k: tf.constant(v) for k, v in batch.items()}
    dataset = tf.data.Dataset.from_tensors(batch).unbatch().batch(len(batch["input_word_ids"])).repeat()
    iterator = iter(strategy.experimental_distribute_dataset(dataset))
    train_function = pretrainer.make_train_function()
    return time_steps(lambda: float(train_function(iterator)["loss"]), steps, warmup)


def torch_step_time(batch, steps, warmup, masked_positions_only, preset="small", device="cpu",
                    autocast_dtype=None):
    """Median seconds of the transformers/torch loop doing the same work.

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
    return time_steps(step, steps, warmup)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-length", type=int, default=128)
    parser.add_argument("--output-dir", default=os.path.join("benchmarks", "results",
                                                             "pretrain_throughput"),
                        help="results.json (figures and the machine) goes here")
    args = parser.parse_args(argv)
    batch = make_batch(args.batch_size, args.seq_length)
    tokens = args.batch_size * args.seq_length

    rows = {}
    rows["electra_tf (tf.function)"] = electra_tf_step_time(batch, args.steps, args.warmup, False)
    rows["electra_tf (jit_compile=True)"] = electra_tf_step_time(batch, args.steps, args.warmup, True)
    rows["torch loop (MLM head at masked positions)"] = torch_step_time(batch, args.steps, args.warmup, True)
    rows["torch loop (naive: logits for every token)"] = torch_step_time(batch, args.steps, args.warmup, False)

    print(f"\nELECTRA-Small pretraining step, batch {args.batch_size} × seq {args.seq_length}, "
          f"{os.cpu_count()} CPU cores, median of {args.steps} steps")
    print(f"{'implementation':45s} {'ms/step':>9s} {'tokens/s':>9s}")
    for name, seconds in rows.items():
        print(f"{name:45s} {seconds * 1000:9.0f} {tokens / seconds:9.0f}")
    best_tf = min(rows["electra_tf (tf.function)"], rows["electra_tf (jit_compile=True)"])
    torch_fair = rows["torch loop (MLM head at masked positions)"]
    torch_naive = rows["torch loop (naive: logits for every token)"]
    print(f"\nratio electra_tf (best) / torch loop (masked positions): {torch_fair / best_tf:.2f}×")
    print(f"ratio electra_tf (best) / torch loop (naive):            {torch_naive / best_tf:.2f}×")
    print("target: ≥ 1.5×")
    import electra_tf

    path = electra_tf.write_benchmark_results(args.output_dir, {
        "benchmark": "pretrain_throughput", "args": vars(args),
        "rows": {name: {"ms_per_step": seconds * 1000, "tokens_per_second": tokens / seconds}
                 for name, seconds in rows.items()},
        "ratio_vs_torch_masked_positions": torch_fair / best_tf,
        "ratio_vs_torch_naive": torch_naive / best_tf})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
