"""Fine-tuning throughput: the classifier's training step against a transformers/torch loop.

    python benchmarks/finetune_throughput.py [--rounds 5] [--batches 8] [--precisions float32]

Both sides train the same model on the same batches: a MiniLM-shaped encoder
(BERT architecture: 6 layers, hidden 384, 12 heads, FFN 1,536, vocabulary
30,522; random weights, since speed does not depend on them) with the
ELECTRA classification head (dropout + dense on [CLS]), sparse softmax
cross-entropy over 2 classes, AdamW with weight decay 0.01 and global-norm
clipping at 1.0, dropout 0.1 everywhere.

The batches are real movie reviews: the packaged sentiment training file
(electra_tf/data/assets/sentiment/movie_train.tsv), tokenized with the
packaged uncased vocabulary, `--batch-size` reviews each, and each batch
padded to its own longest review (dynamic padding), the best padding
transformers offers. Ours is the `train_function` that `model.fit` runs
(`ElectraClassifier` compiled with `create_finetuning_optimizer`), which by
default runs the encoder's dense layers on the real tokens only
(`remove_padding_in_training=True`: the same loss and gradients); the row
"electra_tf <precision> padded" is the same step with that turned off, so
every run also prints what removing the padding gains. torch's is
`transformers.BertModel` + dropout + `nn.Linear`, a plain loop.

Timing: every step function is warmed up (each batch shape once), then
`--rounds` rounds each run one pass over the `--batches` batches of every
implementation in turn (ABAB); the ratio reported is the median over rounds
of the per-round ratio.

Writes results.json (figures and the machine they ran on) to --output-dir.
"""

import argparse
import os
import statistics
import time

import numpy as np

from pretrain_throughput import parse_precisions  # benchmarks/, next to this file

MINILM = dict(vocab_size=30522, hidden_size=384, num_layers=6, num_heads=12,
              intermediate_size=1536, max_sequence_length=512)


def review_batches(batch_size, num_batches, max_seq_length=128, seed=0):
    """`num_batches` batches of packaged training reviews, each padded to its longest row.

    Returns a list of (inputs, labels): inputs a dict of int32 (batch, longest)
    arrays, labels int32 (batch,).
    """
    import electra_tf

    examples, _ = electra_tf.read_classification_file(electra_tf.packaged_sentiment("train"))
    order = np.random.default_rng(seed).permutation(len(examples["text"]))
    order = order[: batch_size * num_batches]
    if len(order) < batch_size * num_batches:
        raise ValueError(f"The packaged file has {len(examples['text'])} reviews; "
                         f"{batch_size} × {num_batches} were asked for.")
    tokenizer = electra_tf.ElectraTokenizer()
    texts = [examples["text"][i] for i in order]
    packed = {key: value.numpy() for key, value in
              tokenizer.pack([tokenizer.tokenize(texts)], max_seq_length).items()}
    labels = np.asarray([int(examples["label"][i]) for i in order], np.int32)
    batches = []
    for start in range(0, len(order), batch_size):
        rows = slice(start, start + batch_size)
        longest = int(packed["input_mask"][rows].sum(axis=1).max())
        batches.append(({key: value[rows, :longest] for key, value in packed.items()},
                        labels[rows]))
    return batches


def electra_tf_step_function(batches, precision="float32", remove_padding=True):
    """Our fine-tuning step over the batches in turn: a function of no arguments.

    `remove_padding`: the classifier's `remove_padding_in_training`.
    """
    import tensorflow as tf
    import tf_keras as keras

    import electra_tf

    previous = keras.mixed_precision.global_policy()
    if precision == "bfloat16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        encoder = electra_tf.ElectraEncoder(**MINILM)
        classifier = electra_tf.ElectraClassifier(encoder, num_classes=2,
                                                  remove_padding_in_training=remove_padding)
        classifier.compile(optimizer=electra_tf.create_finetuning_optimizer(
            2e-4, num_train_steps=10_000, num_layers=encoder.num_layers, layer_decay=0.9,
            weight_decay=0.01))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    dataset = None
    for inputs, labels in batches:
        one = tf.data.Dataset.from_tensors(({k: tf.constant(v) for k, v in inputs.items()},
                                            tf.constant(labels)))
        dataset = one if dataset is None else dataset.concatenate(one)  # (None, None) shapes
    iterator = iter(dataset.repeat())
    train_function = classifier.make_train_function()
    return lambda: float(train_function(iterator)["loss"])


def torch_step_function(batches, precision="float32"):
    """The transformers/torch loop over the same batches: a function of no arguments."""
    import torch
    import transformers

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count())
    config = transformers.BertConfig(
        vocab_size=MINILM["vocab_size"], hidden_size=MINILM["hidden_size"],
        num_hidden_layers=MINILM["num_layers"], num_attention_heads=MINILM["num_heads"],
        intermediate_size=MINILM["intermediate_size"], hidden_act="gelu",
        max_position_embeddings=MINILM["max_sequence_length"], hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1)
    encoder = transformers.BertModel(config, add_pooling_layer=False)
    head = torch.nn.Sequential(torch.nn.Dropout(0.1), torch.nn.Linear(config.hidden_size, 2))
    parameters = [*encoder.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in parameters if p.ndim > 1], "weight_decay": 0.01},
         {"params": [p for p in parameters if p.ndim == 1], "weight_decay": 0.0}],
        lr=2e-4, betas=(0.9, 0.999), eps=1e-6)
    tensors = [({"input_ids": torch.from_numpy(inputs["input_word_ids"]).long(),
                 "attention_mask": torch.from_numpy(inputs["input_mask"]).long(),
                 "token_type_ids": torch.from_numpy(inputs["input_type_ids"]).long()},
                torch.from_numpy(labels).long()) for inputs, labels in batches]
    encoder.train(), head.train()
    position = [0]

    def step():
        inputs, labels = tensors[position[0] % len(tensors)]
        position[0] += 1
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            hidden = encoder(**inputs).last_hidden_state[:, 0]  # [CLS]
            loss = torch.nn.functional.cross_entropy(head(hidden).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        return loss.item()

    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=8, help="distinct batches, run in turn")
    parser.add_argument("--rounds", type=int, default=5, help="ABAB rounds (median reported)")
    parser.add_argument("--precisions", default="float32",
                        help="float32 and/or bfloat16 (CPUs with bfloat16 units: see README)")
    parser.add_argument("--output-dir", default=os.path.join("benchmarks", "results",
                                                             "finetune_throughput"))
    args = parser.parse_args(argv)
    precisions = parse_precisions(args.precisions)
    if min(args.batch_size, args.batches, args.rounds) < 1:
        raise ValueError(f"--batch-size, --batches and --rounds must be ≥ 1; received "
                         f"{args.batch_size}, {args.batches}, {args.rounds}.")

    import electra_tf

    batches = review_batches(args.batch_size, args.batches)
    real_tokens = sum(int(inputs["input_mask"].sum()) for inputs, _ in batches)
    padded_tokens = sum(inputs["input_mask"].size for inputs, _ in batches)
    lengths = [inputs["input_mask"].shape[1] for inputs, _ in batches]
    print(f"{len(batches)} batches of {args.batch_size} reviews, padded to {lengths} "
          f"({real_tokens} real tokens, {padded_tokens} with padding)")

    steps = {}
    for precision in precisions:
        steps[f"electra_tf {precision}"] = electra_tf_step_function(batches, precision)
        steps[f"electra_tf {precision} padded"] = electra_tf_step_function(
            batches, precision, remove_padding=False)
        steps[f"torch {precision}"] = torch_step_function(batches, precision)
    for step in steps.values():  # every batch shape once: tracing, oneDNN primitives
        for _ in range(len(batches)):
            step()
    seconds = {name: [] for name in steps}  # per round: one pass over the batches
    for _ in range(args.rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(len(batches)):
                step()
            seconds[name].append(time.perf_counter() - start)

    print(f"\nClassifier training step, MiniLM shape, batch {args.batch_size}, real review "
          f"lengths, {os.cpu_count()} cores ({electra_tf.describe_cpu()}), "
          f"median of {args.rounds} rounds")
    print(f"{'implementation':29s} {'ms/step':>8s} {'examples/s':>11s} {'real tokens/s':>14s}")
    rows = {}
    for name, values in seconds.items():
        per_pass = statistics.median(values)
        rows[name] = {"ms_per_step": 1000 * per_pass / len(batches),
                      "examples_per_second": args.batch_size * len(batches) / per_pass,
                      "real_tokens_per_second": real_tokens / per_pass, "round_seconds": values}
        print(f"{name:29s} {rows[name]['ms_per_step']:8.0f} "
              f"{rows[name]['examples_per_second']:11.1f} {rows[name]['real_tokens_per_second']:14.0f}")
    def ratio(slower, faster):  # median over rounds of the per-round ratio
        return statistics.median(s / f for s, f in zip(seconds[slower], seconds[faster]))

    ratios = {}
    for precision in precisions:
        ours = f"electra_tf {precision}"
        ratios[f"electra_tf / torch, {precision}"] = ratio(f"torch {precision}", ours)
        ratios[f"electra_tf padded / torch, {precision}"] = ratio(f"torch {precision}",
                                                                  f"{ours} padded")
        ratios[f"removing padding, {precision}"] = ratio(f"{ours} padded", ours)
    print("\nspeed ratios (median over rounds of the per-round ratio; target in #19: ≥ 1.3 "
          "against torch):")
    for name, value in ratios.items():
        print(f"  {name:39s} {value:5.2f}×")
    path = electra_tf.write_benchmark_results(args.output_dir, {
        "benchmark": "finetune_throughput", "args": vars(args), "batch_lengths": lengths,
        "real_tokens": real_tokens, "padded_tokens": padded_tokens, "rows": rows,
        "ratios": ratios})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
