"""ELECTRA-Small encoder inference speed on CPU: electra_tf vs Hugging Face torch.

Measures tokens/s (batch · seq / median seconds per forward pass, inference
mode, no dropout) of the same model, in float32 and in bfloat16:

    electra_tf, tf.function            TF graph with its default oneDNN rewrites
    electra_tf, tf.function(jit=True)  the same graph compiled by XLA
    transformers ElectraModel, torch   the Hugging Face reference
    electra_tf bfloat16                Keras' mixed_bfloat16 policy, same weights
    torch bfloat16 (autocast)          torch.autocast("cpu", torch.bfloat16)

The torch model gets the electra_tf weights copied in, so all compute the
same function; the script prints each one's largest output difference from
torch float32 as a check. Weights are random (presets hold sizes only;
nothing is downloaded). bfloat16 pays only on CPUs with bfloat16 units
(AVX512_BF16 or AMX-BF16: see the README); elsewhere it is emulated, slowly.

The variants are warmed up, then run in turn for `--rounds` rounds of
`--iterations` forwards each (ABAB), so the machine's drift over the run
lands on every variant alike. Run it on an otherwise idle machine: another
process on a 2-core box slows torch's OpenMP kernels several-fold and TF's
by tens of percent.

    python benchmarks/encoder_inference.py --batch-size 32 --seq-length 128

With `--reviews N` the inputs are real: N batches of `--batch-size` packaged
movie reviews (electra_tf/data/assets/sentiment/movie_train.tsv, the
packaged uncased vocabulary, at most `--seq-length` word pieces), each batch
padded to its own longest review. That dynamic padding is torch's best; ours
adds the `remove_padding=True` variant (the dense layers run on real tokens
only, what exported task models run) and, at batch 1 in float32,
`electra_tf.xla_forward` (each review padded up to a multiple of 8 tokens
and run by XLA, one program per shape: the small-batch path; at batch 32
and in bfloat16 it lost to the graph in the sitting at 3b4ad03,
`*_amd6_run1..3`). A forward is then one pass over the N batches, tokens/s
counts real tokens, and "vs torch" compares each side's best variant.

Every run also times, per precision, the encoder's dense-layer matmuls
alone in TF and in torch (`dense_matmul_passes`, rows "dense matmuls
alone, ..."): torch's whole forward over our matmuls alone is the most
"vs torch" within reach were everything else free, printed and recorded
as `dense_matmul_ceiling_vs_torch`. One more
variant, "float transposes", is the same float32 forward traced inside
`electra_tf.plain_transposes()`: the attention's transposes as oneDNN's
float kernel, as before commit 872cd90, and q, k, v split from the columns
before their transposes, as before 3282cd4 (`split_heads`): an A/B of both
changes in every run (printed as "integer transposes vs float transposes").
The "Keras LayerNorms" variants (float32 and bfloat16) run each precision's
best forward traced inside `electra_tf.plain_layer_norms()`: Keras' own
LayerNorm ops instead of the one oneDNN kernel of
`electra_tf/layers/layer_norm.py` (printed as "one-kernel LayerNorms vs
Keras' LayerNorms"):

    python benchmarks/encoder_inference.py --reviews 8 --batch-size 32
    python benchmarks/encoder_inference.py --reviews 64 --batch-size 1

With `--frozen-weights` the run sets TF_ONEDNN_ASSUME_FROZEN_WEIGHTS=1 before
TensorFlow runs its first matmul: oneDNN then reorders each fused dense
layer's weights once into its own blocked layout and keeps them (the
`brgemm` inner product, AMX in bfloat16), instead of reading the plain
weights on every call (`gemm:jit`, no AMX). Only for processes whose weights
never change after their first use, such as a server: a graph whose
variables are re-assigned, or that takes weights as arguments, then
computes with the first weights it saw. A bfloat16 model traced with the
variable on also sends every dense layer, not only the intermediate one,
through that fused kernel (`TransformerLayer._dense`). The "dense matmuls
alone" rows are plain MatMuls, which the variable does not touch.

`--intra-op-threads` and `--inter-op-threads` size TensorFlow's two thread
pools before its first op (0: its default, all cores); torch keeps
`--threads`. On a small machine TensorFlow's default splits every op over
all cores, and each op then wakes the other threads and waits for them:
one thread (`--intra-op-threads 1 --inter-op-threads 1`) is its fastest at
batch 1. `--batch-parts N` adds the "N parts" variants: our best forward
with each batch run as N contiguous slices at once (`electra_tf.in_batch_parts`), for
`--intra-op-threads 1 --inter-op-threads N`, so that each core runs whole
ops of its own part (what `export_task_saved_model(..., batch_parts=N)`
serves):

    python benchmarks/encoder_inference.py --batch-size 32 --intra-op-threads 1 \
        --inter-op-threads 2 --batch-parts 2 --frozen-weights

    python benchmarks/encoder_inference.py --reviews 32 --batch-size 1 \
        --intra-op-threads 1 --inter-op-threads 1 --frozen-weights

`--width-parts N` adds the "N width parts" variants: our forward traced
inside `electra_tf.width_parts(N)`, each transformer block's heads and
feed-forward neurons in N groups that share no op until their sum, for a
batch too small to split by rows (one review at a time):

    python benchmarks/encoder_inference.py --reviews 32 --batch-size 1 \
        --intra-op-threads 1 --inter-op-threads 2 --width-parts 2 --frozen-weights

At batch 1 in float32 the run also times "TFLite XNNPACK": the same encoder
through `electra_tf.tflite_forward` (each review padded up to a multiple of
`--tflite-length-multiple` tokens, 8 by default, converted once per shape
to a float32 TFLite model, the converter of `export_tflite`, and run by
TFLite's XNNPACK CPU delegate with `--threads` threads, as many as torch's):
the small-batch path of a model shipped as a .tflite file.

Writes the table, with the machine it ran on, to
benchmarks/results/encoder_inference/results.json (`--output-dir`).
"""

import argparse
import os
import statistics
import time

import numpy as np

import electra_tf  # sets TF_USE_LEGACY_KERAS before TensorFlow is imported
import tensorflow as tf
from pretrain_throughput import parse_precisions  # benchmarks/, next to this file


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-length", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=5,
                        help="timed forwards per variant per round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds; each runs every variant in turn (ABAB)")
    parser.add_argument("--precisions", default="float32,bfloat16",
                        help="float32 and/or bfloat16 (CPUs with bfloat16 units: see README)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed forwards per variant")
    parser.add_argument("--reviews", type=int, default=None,
                        help="real lengths: this many batches of packaged reviews, each padded "
                             "to its longest (see above)")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--output-dir", default=os.path.join("benchmarks", "results",
                                                             "encoder_inference"),
                        help="results.json (figures and the machine) goes here")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)"
    )
    parser.add_argument("--frozen-weights", action="store_true",
                        help="set TF_ONEDNN_ASSUME_FROZEN_WEIGHTS=1 (see the module docstring)")
    parser.add_argument("--intra-op-threads", type=int, default=0,
                        help="TensorFlow threads one op is split over (default: 0, TF's own: "
                        "all cores)")
    parser.add_argument("--inter-op-threads", type=int, default=0,
                        help="TensorFlow threads running independent ops at once (default: 0, "
                        "TF's own: all cores)")
    parser.add_argument("--width-parts", type=int, default=1,
                        help="also time our forward traced inside electra_tf.width_parts(N): each "
                        "block's heads and neurons in N groups at once (with "
                        "--intra-op-threads 1 --inter-op-threads N)")
    parser.add_argument("--batch-parts", type=int, default=1,
                        help="also time our best forward with each batch run as this many parts "
                        "at once (with --intra-op-threads 1 --inter-op-threads N)")
    parser.add_argument("--tflite-length-multiple", type=int, default=8,
                        help="at batch 1: the TFLite row pads each review up to a multiple of "
                        "this many tokens (one converted model per length)")
    args = parser.parse_args()
    if args.tflite_length_multiple < 1:
        parser.error(f"--tflite-length-multiple must be >= 1; received "
                     f"{args.tflite_length_multiple}")
    for name in ("intra_op_threads", "inter_op_threads"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0 (0: TensorFlow's default); "
                         f"received {getattr(args, name)}")
    if args.width_parts < 1:
        parser.error(f"--width-parts must be >= 1; received {args.width_parts}")
    if not 1 <= args.batch_parts <= args.batch_size:
        parser.error(f"--batch-parts must be in [1, --batch-size={args.batch_size}]; received "
                     f"{args.batch_parts}")
    return args


def make_inputs(batch_size, seq_length, vocab_size, seed=0):
    """Random ids with a [CLS]-like first token and some padded rows, as int32 numpy."""
    rng = np.random.default_rng(seed)
    word_ids = rng.integers(1000, vocab_size, (batch_size, seq_length), dtype=np.int32)
    mask = np.ones_like(word_ids)
    mask[::4, seq_length * 3 // 4 :] = 0  # every 4th row is a quarter padding
    type_ids = np.zeros_like(word_ids)
    type_ids[:, seq_length // 2 :] = 1  # sentence B
    return {"input_word_ids": word_ids, "input_mask": mask, "input_type_ids": type_ids}


def build_torch_model(encoder):
    """A `transformers.ElectraModel` with the encoder's sizes and weights."""
    import torch
    import transformers

    config = transformers.ElectraConfig(
        vocab_size=encoder.vocab_size,
        embedding_size=encoder.embedding_size,
        hidden_size=encoder.hidden_size,
        num_hidden_layers=encoder.num_layers,
        num_attention_heads=encoder.num_heads,
        intermediate_size=encoder.intermediate_size,
        hidden_act="gelu",  # exact erf GELU, like electra_tf
        max_position_embeddings=encoder.max_sequence_length,
        type_vocab_size=encoder.type_vocab_size,
        layer_norm_eps=encoder.layer_norm_epsilon,
    )
    model = transformers.ElectraModel(config).eval()

    # torch Linear stores (out, in); Keras Dense kernels are (in, out).
    state = {}

    def dense(prefix, layer):
        state[f"{prefix}.weight"] = layer.kernel.numpy().T
        state[f"{prefix}.bias"] = layer.bias.numpy()

    def layer_norm(prefix, layer):
        state[f"{prefix}.weight"] = layer.gamma.numpy()
        state[f"{prefix}.bias"] = layer.beta.numpy()

    embeddings = encoder.embedding_layer
    state["embeddings.word_embeddings.weight"] = embeddings.word_embeddings.numpy()
    state["embeddings.position_embeddings.weight"] = embeddings.position_embeddings.numpy()
    state["embeddings.token_type_embeddings.weight"] = embeddings.token_type_embeddings.numpy()
    layer_norm("embeddings.LayerNorm", embeddings.layer_norm)
    if encoder.embedding_projection is not None:
        dense("embeddings_project", encoder.embedding_projection)
    for i, layer in enumerate(encoder.transformer_layers):
        prefix = f"encoder.layer.{i}"
        # The fused (H, 3H) kernel is [query | key | value] along its last axis.
        kernels = np.split(layer.qkv_dense.kernel.numpy(), 3, axis=-1)
        biases = np.split(layer.qkv_dense.bias.numpy(), 3)
        for part, kernel, bias in zip(("query", "key", "value"), kernels, biases):
            state[f"{prefix}.attention.self.{part}.weight"] = kernel.T
            state[f"{prefix}.attention.self.{part}.bias"] = bias
        dense(f"{prefix}.attention.output.dense", layer.attention_output_dense)
        layer_norm(f"{prefix}.attention.output.LayerNorm", layer.attention_layer_norm)
        dense(f"{prefix}.intermediate.dense", layer.intermediate_dense)
        dense(f"{prefix}.output.dense", layer.output_dense)
        layer_norm(f"{prefix}.output.LayerNorm", layer.output_layer_norm)
    state = {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in state.items()}
    # Every torch parameter must be filled; position_ids is a buffer, not a weight.
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [name for name in missing if not name.endswith("position_ids")]
    if missing or unexpected:
        raise ValueError(f"Weight copy mismatch: missing {missing}, unexpected {unexpected}.")
    return model


def dense_matmul_passes(encoder, tf_rows, torch_rows, precision):
    """(TF pass, torch pass): the encoder's dense-layer matmuls alone, nothing else.

    One pass runs, for each of `tf_rows` (`torch_rows`), every layer's four
    dense matmuls in order on a (rows, hidden) input: [q|k|v], attention
    output, intermediate, output, with the encoder's kernels in `precision`.
    Timed like the model variants, TF's pass is a floor under any forward of
    ours, so torch's whole forward over it is the most "vs torch" we could
    reach were everything but the dense layers free (the attention's own
    matmuls, softmax, LayerNorm, GELU and the embeddings left out).
    """
    import torch

    kernels = [[layer.qkv_dense.kernel, layer.attention_output_dense.kernel,
                layer.intermediate_dense.kernel, layer.output_dense.kernel]
               for layer in encoder.transformer_layers]
    tf_dtype, torch_dtype = ((tf.bfloat16, torch.bfloat16) if precision == "bfloat16"
                             else (tf.float32, torch.float32))
    # Variables, as in the model (oneDNN treats constant weights differently).
    tf_kernels = [[tf.Variable(tf.cast(kernel, tf_dtype), trainable=False) for kernel in layer]
                  for layer in kernels]
    torch_kernels = [[torch.from_numpy(kernel.numpy()).to(torch_dtype) for kernel in layer]
                     for layer in kernels]
    attention_size = tf_kernels[0][0].shape[1] // 3

    @tf.function
    def tf_matmuls(x):  # (rows, hidden) -> (rows, hidden), each layer's dense matmuls
        for qkv, attention_output, intermediate, output in tf_kernels:
            context = tf.matmul(x, qkv)[:, :attention_size]  # (rows, A), a stand-in
            x = tf.matmul(tf.matmul(tf.matmul(context, attention_output), intermediate), output)
        return x

    def torch_matmuls(x):
        with torch.inference_mode():
            for qkv, attention_output, intermediate, output in torch_kernels:
                context = (x @ qkv)[:, :attention_size]
                x = context @ attention_output @ intermediate @ output
            return x

    rng = np.random.default_rng(0)
    tf_inputs = [tf.constant(rng.standard_normal((rows, encoder.hidden_size)), tf_dtype)
                 for rows in tf_rows]
    torch_inputs = [torch.from_numpy(rng.standard_normal((rows, encoder.hidden_size))).to(
        torch_dtype) for rows in torch_rows]
    return (lambda: [tf_matmuls(x).numpy() for x in tf_inputs],
            lambda: [torch_matmuls(x).float().numpy() for x in torch_inputs])


# Variants that time what the encoder ran before a change, as an A/B in every run.
A_B_VARIANTS = ("float transposes", "Keras LayerNorms")
# Rows that time the dense matmuls alone (`dense_matmul_passes`), not a forward.
FLOOR_PREFIX = "dense matmuls alone, "


def best_vs_torch(rows):
    """{precision: (our fastest variant, its ratio to torch)} from the result rows.

    The "float transposes" and "Keras LayerNorms" A/B variants are what we ran
    before, not variants of ours now:

    >>> best_vs_torch({"electra_tf a": {"vs_torch_same_precision": 1.1},
    ...                "electra_tf b": {"vs_torch_same_precision": 1.4},
    ...                "electra_tf float transposes": {"vs_torch_same_precision": 1.5},
    ...                "electra_tf Keras LayerNorms": {"vs_torch_same_precision": 1.6},
    ...                "electra_tf bfloat16": {"vs_torch_same_precision": 0.5},
    ...                "torch ElectraModel": {"vs_torch_same_precision": 1.0}})
    {'float32': ('electra_tf b', 1.4), 'bfloat16': ('electra_tf bfloat16', 0.5)}
    """
    best = {}
    for name, row in rows.items():
        if not name.startswith("electra_tf") or name.endswith(A_B_VARIANTS):  # not ours now
            continue
        precision = "bfloat16" if "bfloat16" in name else "float32"
        ratio = row["vs_torch_same_precision"]
        if precision not in best or ratio > best[precision][1]:
            best[precision] = (name, ratio)
    return best


def main():
    args = parse_args()
    electra_tf.set_tensorflow_threads(args.intra_op_threads, args.inter_op_threads)
    if args.frozen_weights:  # TensorFlow's own variable, read once at its first oneDNN matmul
        os.environ["TF_ONEDNN_ASSUME_FROZEN_WEIGHTS"] = "1"
    import torch

    precisions = parse_precisions(args.precisions)
    torch.set_num_threads(args.threads)
    encoder = electra_tf.ElectraEncoder.from_preset(args.preset)
    torch_model = build_torch_model(encoder)
    if args.reviews:
        from finetune_throughput import review_batches  # benchmarks/, next to this file

        batches = [inputs for inputs, _ in review_batches(args.batch_size, args.reviews,
                                                          args.seq_length)]
    else:
        batches = [make_inputs(args.batch_size, args.seq_length, encoder.vocab_size)]
    tf_batches = [{key: tf.constant(value) for key, value in inputs.items()} for inputs in batches]
    torch_batches = [{
        "input_ids": torch.from_numpy(inputs["input_word_ids"]).long(),
        "attention_mask": torch.from_numpy(inputs["input_mask"]).long(),
        "token_type_ids": torch.from_numpy(inputs["input_type_ids"]).long(),
    } for inputs in batches]
    # Real rows only: remove_padding leaves padded positions 0, torch does not.
    masks = [inputs["input_mask"][..., None] for inputs in batches]

    def tf_forward(model, jit_compile, remove_padding=False, plain_transposes=False,
                   keras_layer_norms=False, parts=1, width_parts=1):
        # One trace for every batch shape: (batch, any length).
        signature = [{key: tf.TensorSpec([None, None], tf.int32) for key in tf_batches[0]}]
        encode = electra_tf.in_batch_parts(
            lambda x: model(x, training=False, remove_padding=remove_padding), parts)
        run = tf.function(
            lambda x: tf.cast(encode(x)["sequence_output"], tf.float32),
            jit_compile=jit_compile, input_signature=None if jit_compile else signature,
        )
        if plain_transposes:  # traced now, with the float transposes of before 872cd90
            with electra_tf.plain_transposes():
                run.get_concrete_function()
        if keras_layer_norms:  # traced now, with Keras' LayerNorm ops (before layer_norm.py)
            with electra_tf.plain_layer_norms():
                run.get_concrete_function()
        if width_parts > 1:  # traced now, each block in groups of heads and neurons
            with electra_tf.width_parts(width_parts):
                run.get_concrete_function()
        # .numpy() waits for the result.
        return lambda: [run(x).numpy() * m for x, m in zip(tf_batches, masks)]

    def xla_forward(model):
        # Each batch padded up to a multiple of 8 tokens, one XLA program per shape.
        forward = electra_tf.xla_forward(model, length_multiple=8)
        return lambda: [tf.cast(forward(x)["sequence_output"], tf.float32).numpy() * m
                        for x, m in zip(tf_batches, masks)]

    def tflite_forward(model):
        # Each batch padded up to a multiple of the length multiple, one TFLite model per
        # shape, run by XNNPACK with torch's thread count.
        forward = electra_tf.tflite_forward(model, length_multiple=args.tflite_length_multiple,
                                            num_threads=args.threads)
        return lambda: [forward(inputs)["sequence_output"] * m
                        for inputs, m in zip(batches, masks)]

    def torch_forward(autocast_dtype=None):
        def forward():
            with torch.inference_mode(), torch.autocast(
                    "cpu", dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
                return [torch_model(**x).last_hidden_state.float().numpy() * m
                        for x, m in zip(torch_batches, masks)]
        return forward

    variants = {}
    if "float32" in precisions:
        variants["electra_tf tf.function"] = tf_forward(encoder, jit_compile=False)
        if args.reviews:
            variants["electra_tf remove_padding"] = tf_forward(encoder, False, remove_padding=True)
            # The attention's transposes as oneDNN float transposes (A/B of the integer ones).
            variants["electra_tf float transposes"] = tf_forward(
                encoder, False, remove_padding=args.batch_size > 1, plain_transposes=True)
            if args.batch_size == 1:  # the small-batch path (at 32, remove_padding wins)
                variants["electra_tf xla_forward"] = xla_forward(encoder)
        else:
            variants["electra_tf tf.function(jit_compile=True)"] = tf_forward(encoder, True)
        if args.batch_size == 1:  # the small-batch path of a .tflite file (at 32 the graph wins)
            variants["electra_tf TFLite XNNPACK"] = tflite_forward(encoder)
        if args.batch_parts > 1:
            variants[f"electra_tf {args.batch_parts} parts"] = tf_forward(
                encoder, False, remove_padding=bool(args.reviews), parts=args.batch_parts)
        if args.width_parts > 1:
            variants[f"electra_tf {args.width_parts} width parts"] = tf_forward(
                encoder, False, remove_padding=bool(args.reviews) and args.batch_size > 1,
                width_parts=args.width_parts)
        # The best variant again with Keras' LayerNorm ops (A/B of layer_norm.py's kernel).
        variants["electra_tf Keras LayerNorms"] = tf_forward(
            encoder, False, remove_padding=bool(args.reviews) and args.batch_size > 1,
            keras_layer_norms=True)
        variants["torch ElectraModel"] = torch_forward()
    if "bfloat16" in precisions:
        # The same weights under Keras' mixed_bfloat16 policy (float32 variables,
        # bfloat16 compute), against torch's CPU autocast to bfloat16.
        encoder_bf16 = electra_tf.ElectraEncoder.from_config(
            {**encoder.get_config(), "dtype": "mixed_bfloat16"})
        encoder_bf16(tf_batches[0], training=False)
        encoder_bf16.set_weights(encoder.get_weights())
        variants["electra_tf bfloat16"] = tf_forward(encoder_bf16, jit_compile=False)
        if args.reviews:
            variants["electra_tf bfloat16 remove_padding"] = tf_forward(
                encoder_bf16, False, remove_padding=True)
        if args.batch_parts > 1:
            variants[f"electra_tf bfloat16 {args.batch_parts} parts"] = tf_forward(
                encoder_bf16, False, remove_padding=bool(args.reviews), parts=args.batch_parts)
        if args.width_parts > 1:
            variants[f"electra_tf bfloat16 {args.width_parts} width parts"] = tf_forward(
                encoder_bf16, False, remove_padding=bool(args.reviews) and args.batch_size > 1,
                width_parts=args.width_parts)
        variants["electra_tf bfloat16 Keras LayerNorms"] = tf_forward(
            encoder_bf16, False, remove_padding=bool(args.reviews) and args.batch_size > 1,
            keras_layer_norms=True)
        variants["torch bfloat16 (autocast)"] = torch_forward(torch.bfloat16)

    # Floors: the dense matmuls alone, on the rows each side's best variant runs
    # (ours: real tokens only where remove_padding runs; torch: the padded grid).
    tf_rows = [int(inputs["input_mask"].sum()) if args.reviews and args.batch_size > 1
               else inputs["input_mask"].size for inputs in batches]
    torch_rows = [inputs["input_mask"].size for inputs in batches]
    floor_names = {precision: tuple(f"{FLOOR_PREFIX}{side}{suffix}" for side in ("TF", "torch"))
                   for precision, suffix in (("float32", ""), ("bfloat16", " bfloat16"))
                   if precision in precisions}
    for precision, names in floor_names.items():
        passes = dense_matmul_passes(encoder, tf_rows, torch_rows, precision)
        variants.update(zip(names, passes))

    outputs = {}
    for name, forward in variants.items():
        # Warm-up: tracing, XLA compilation, oneDNN primitive caches, allocators.
        for _ in range(args.warmup):
            outputs[name] = forward()
    # ABAB: `--rounds` rounds of `--iterations` forwards of each variant in turn, so
    # that the machine's drift over the run lands on every variant alike.
    seconds = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, forward in variants.items():
            for _ in range(args.iterations):
                start = time.perf_counter()
                forward()
                seconds[name].append(time.perf_counter() - start)

    reference_name = "torch ElectraModel"
    reference = outputs.get(reference_name)
    if reference is None:  # bfloat16 only: compare against our own float32 forward
        reference_name = "electra_tf float32"
        reference = tf_forward(encoder, jit_compile=False)()
    differences = {name: max(float(np.abs(ours - theirs).max())
                                 for ours, theirs in zip(outputs[name], reference))
                   for name in variants
                   if name != reference_name and not name.startswith(FLOOR_PREFIX)}
    for name, difference in differences.items():
        print(f"max |{name} - {reference_name}| = {difference:.1e} (same weights)")

    if args.reviews:  # real tokens
        tokens = int(sum(inputs["input_mask"].sum() for inputs in batches))
        padded = sum(inputs["input_mask"].size for inputs in batches)
        shape = (f"{args.reviews} batches of {args.batch_size} real reviews, {tokens} real tokens "
                 f"({tokens / padded:.0%} of the dynamically padded grid)")
    else:
        tokens = args.batch_size * args.seq_length
        shape = f"batch {args.batch_size} x seq {args.seq_length}"
    print(
        f"\nELECTRA-{args.preset} encoder, {shape}, "
        f"{os.cpu_count()} cores ({electra_tf.describe_cpu()}), median of "
        f"{args.rounds} rounds x {args.iterations} (TF {tf.__version__}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads; TF threads intra-op "
        f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default'}, inter-op "
        f"{tf.config.threading.get_inter_op_parallelism_threads() or 'default'})"
    )
    print(f"{'variant':<42} {'ms/pass':>9} {'tokens/s':>9} {'best tok/s':>10} {'vs torch':>9}")
    rows = {}
    for name, times in seconds.items():
        median = statistics.median(times)
        rate = tokens / median
        peer = "torch bfloat16 (autocast)" if "bfloat16" in name else "torch ElectraModel"
        vs_torch = statistics.median(seconds[peer]) / median if peer in seconds else float("nan")
        print(f"{name:<42} {1000 * median:>9.1f} {rate:>9.0f} {tokens / min(times):>10.0f} "
              f"{vs_torch:>8.2f}x")
        rows[name] = {"ms_per_batch": 1000 * median, "tokens_per_second": rate,
                      "best_tokens_per_second": tokens / min(times),
                      "vs_torch_same_precision": vs_torch, "seconds": times}
    print("(vs torch: against torch in the same precision; target in #19: >= 1.3x)")
    best = best_vs_torch(rows)
    for precision, (name, ratio) in best.items():
        print(f"best electra_tf {precision}: {name}, {ratio:.2f}x torch")
    ceilings = {}
    for precision, (ours, theirs) in floor_names.items():
        ceilings[precision] = rows[ours]["vs_torch_same_precision"]
        matmuls = statistics.median(seconds[theirs]) / statistics.median(seconds[ours])
        print(f"{precision}: dense matmuls alone, TF {matmuls:.2f}x as fast as torch's; torch's "
              f"whole forward / our dense matmuls alone = {ceilings[precision]:.2f}x (the most "
              f"'vs torch' within reach if all else were free)")
    transposes = None
    if "electra_tf float transposes" in seconds:  # the same forward, float32, A/B
        same = "electra_tf remove_padding" if args.batch_size > 1 else "electra_tf tf.function"
        transposes = (statistics.median(seconds["electra_tf float transposes"])
                      / statistics.median(seconds[same]))
        print(f"integer transposes vs float transposes ({same}): {transposes:.2f}x as fast")
    layer_norms = {}
    for precision, prefix in (("float32", "electra_tf"), ("bfloat16", "electra_tf bfloat16")):
        keras_name = f"{prefix} Keras LayerNorms"
        if keras_name in seconds:  # the same forward, A/B of the LayerNorms alone
            same = (f"{prefix} remove_padding" if args.reviews and args.batch_size > 1
                    else "electra_tf tf.function" if precision == "float32" else prefix)
            layer_norms[precision] = (statistics.median(seconds[keras_name])
                                      / statistics.median(seconds[same]))
            print(f"one-kernel LayerNorms vs Keras' LayerNorms ({same}): "
                  f"{layer_norms[precision]:.2f}x as fast")
    path = electra_tf.write_benchmark_results(args.output_dir, {
        "benchmark": "encoder_inference", "args": vars(args), "rows": rows,
        "real_tokens_per_pass": tokens, "best_vs_torch": best,
        "integer_vs_float_transposes": transposes,
        "one_kernel_vs_keras_layer_norms": layer_norms,
        "dense_matmul_ceiling_vs_torch": ceilings,
        "max_abs_difference_vs": {"reference": reference_name, **differences}})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
