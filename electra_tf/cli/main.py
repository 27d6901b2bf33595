"""`electra-tf` command line: argument parsing only; the work is done by library functions."""

import argparse
import json
import os
import sys


def _add_convert(subparsers):
    parser = subparsers.add_parser(
        "convert",
        help="convert checkpoints between Hugging Face, original Google TF1, keras-hub and "
        "electra_tf",
        description="Convert a checkpoint. Nothing is written to DST unless conversion succeeds. "
        "keras_hub is a keras-hub (Keras 3) ELECTRA preset directory: the backbone (encoder) "
        "and its tokenizer.",
    )
    parser.add_argument("--from", dest="source", required=True,
                        choices=["huggingface", "google", "electra_tf", "keras_hub"])
    parser.add_argument("--to", dest="target", required=True,
                        choices=["electra_tf", "huggingface", "keras_hub"])
    parser.add_argument("--model", dest="model_kind",
                        choices=["encoder", "discriminator", "generator"],
                        help="which part to convert (detected for Hugging Face sources)")
    parser.add_argument("--config", help="Google checkpoints: a preset name or a JSON config file")
    parser.add_argument("--vocab", dest="vocab_path",
                        help="--to keras_hub: the model's WordPiece vocabulary (default: SRC's "
                        "vocab.txt if any, else the packaged uncased BERT one)")
    parser.add_argument("--lower-case", action=argparse.BooleanOptionalAction, default=None,
                        help="--to keras_hub: whether the vocabulary is uncased (default: yes)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing DST")
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.set_defaults(run=_run_convert)


def _run_convert(args):
    from electra_tf.conversion.convert import convert

    config = args.config
    if config is not None and os.path.isfile(config):
        with open(config) as f:
            config = json.load(f)
    model = convert(args.source, args.target, args.src, args.dst,
                    model_kind=args.model_kind, config=config, overwrite=args.overwrite,
                    vocab_path=args.vocab_path, lower_case=args.lower_case)
    print(f"wrote {type(model).__name__} ({model.count_params():,} parameters) to {args.dst}")


def _add_presets(subparsers):
    parser = subparsers.add_parser("presets", help="list model presets and their sizes")
    parser.set_defaults(run=_run_presets)


def _run_presets(args):
    from electra_tf.models.presets import PRESETS, describe_presets

    del args
    print(describe_presets(PRESETS))


def _add_pretrain(subparsers):
    from electra_tf.models.presets import PRESETS
    from electra_tf.pretraining.run_pretraining import OBJECTIVES
    from electra_tf.cli.config_arguments import add_output_dir_argument
    from electra_tf.cli.training_arguments import add_mixed_precision_argument
    from electra_tf.utils.strategies import STRATEGIES

    parser = subparsers.add_parser(
        "pretrain",
        help="pretrain ELECTRA (or a masked LM) on a text corpus or `prepare` shards",
        description="Pretrain a generator and discriminator by replaced token detection. "
        "Writes models (electra_tf and Hugging Face formats), TensorBoard logs, history and "
        "learning curves under --output-dir. Checkpoints are written every --checkpoint-every "
        "steps; running the same command again resumes from the latest one. Options left "
        "out keep the defaults of electra_tf.pretraining.run_pretraining.PretrainingConfig.",
    )
    parser.add_argument("--corpus", required=True,
                        help="glob of plain or gzipped text files, or of *.tfrecord shards "
                        "written by `electra-tf prepare` (quote it)")
    add_output_dir_argument(parser, help="output directory")
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="model sizes (`electra-tf presets`)")
    parser.add_argument("--steps", type=int, help="total training steps")
    parser.add_argument("--batch-size", type=int, help="global batch size, over all replicas")
    parser.add_argument("--max-seq-length", type=int, help="tokens per example")
    parser.add_argument("--objective", choices=list(OBJECTIVES),
                        help="; ".join(f"{name}: {what}" for name, what in OBJECTIVES.items())
                        .replace("%", "%%") + " (default: electra)")  # argparse formats help with %
    parser.add_argument("--generator-width", type=_generator_width,
                        help="generator width as a fraction of the discriminator's "
                        "(0.25 as in the paper), or 'preset' for the preset's generator")
    parser.add_argument("--untied-embeddings", action="store_true", default=None,
                        help="give the generator its own token embeddings instead of the "
                        "discriminator's (the paper ties them)")
    parser.add_argument("--learning-rate", type=float, help="peak learning rate")
    parser.add_argument("--warmup-steps", type=int, help="linear warmup steps")
    parser.add_argument("--mask-rate", type=float, help="fraction of tokens masked")
    parser.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    parser.add_argument("--log-every", type=int, help="steps between logged metrics")
    parser.add_argument("--vocab", dest="vocab_path",
                        help="WordPiece vocabulary file (default: the packaged uncased BERT one)")
    parser.add_argument("--lower-case", action=argparse.BooleanOptionalAction, default=None,
                        help="lower-case and strip accents (default; off for a cased vocabulary)")
    parser.add_argument("--seed", type=int,
                        help="seed for the initial weights, dropout, data order, masking and "
                        "sampling: the same command gives bit-identical checkpoints on CPU")
    parser.add_argument("--strategy", choices=STRATEGIES,
                        help="auto: a configured TPU, TF_CONFIG workers, all GPUs, or one device")
    add_mixed_precision_argument(parser)  # --mixed-precision [float16|bfloat16]
    parser.add_argument("--jit-compile", action="store_true", default=None,
                        help="compile the training step with XLA (faster on GPU/TPU); draws "
                        "other random numbers than without it from the same --seed")
    parser.add_argument("--deterministic", action="store_true", default=None,
                        help="deterministic TensorFlow kernels, for repeatable runs on GPUs "
                        "(may be slower; CPU runs repeat without it)")
    parser.add_argument("--batch-parts", type=int,
                        help="run each step's batch as N parts (the whole batch's loss and "
                        "gradients): with --intra-op-threads 1 --inter-op-threads N, one core a "
                        "part, faster on a small CPU machine (default: 1)")
    parser.add_argument("--intra-op-threads", type=int,
                        help="threads one TensorFlow op is split over (default: 0, all cores)")
    parser.add_argument("--inter-op-threads", type=int,
                        help="threads running independent ops at once (default: 0, all cores)")
    parser.add_argument("--init-from", metavar="DIR",
                        help="continue pretraining from a checkpoint, not random weights: an "
                        "electra-tf pretrain output (discriminator/, generator/), a Hugging Face "
                        "ElectraForPreTraining or BERT directory (fresh generator of "
                        "--generator-width), or a google-research/electra TF1 checkpoint; its "
                        "sizes replace --preset's, steps and the schedule start at 0, and "
                        "checkpoints in --output-dir resume instead")
    parser.add_argument("--init-generator-from", metavar="DIR",
                        help="with --init-from: the generator's checkpoint (a Hugging Face "
                        "ElectraForMaskedLM, electra_tf generator or run directory, or TF1 "
                        "checkpoint); default: --init-from's generator, if it has one")
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                        help="continue from checkpoints in --output-dir (default); with "
                        "--no-resume an --output-dir holding checkpoints is refused")
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                        help="no progress bar")
    parser.set_defaults(run=_run_pretrain)


def _generator_width(value):
    if value == "preset":
        return "preset"
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a fraction such as 0.25 or 'preset'; received {value!r}") from None


def _run_pretrain(args):
    from electra_tf.pretraining.pretrain import format_summary, pretrain
    from electra_tf.pretraining.run_pretraining import PretrainingConfig

    options = {key: value for key, value in vars(args).items()
               if value is not None and key not in ("command", "run", "resume")}
    if options.get("generator_width") == "preset":
        options["generator_width"] = None  # PretrainingConfig: None means the preset's generator
    summary = pretrain(PretrainingConfig(**options), resume=args.resume)
    print(format_summary(summary))


def _add_quickstart(subparsers):
    from electra_tf.cli.config_arguments import add_output_dir_argument

    parser = subparsers.add_parser(
        "quickstart",
        help="pretrain a tiny ELECTRA on packaged text for a few minutes and evaluate it",
        description="Pretrain the 'tiny' preset on Northanger Abbey (shipped with the package) "
        "and report replaced-token-detection accuracy, precision, recall and AUC on held-out "
        "batches of Persuasion. Running it again in the same --output-dir resumes.",
    )
    add_output_dir_argument(parser, default="electra_quickstart",
                            help="output directory (default: %(default)s)")
    parser.add_argument("--minutes", type=float, default=3.0,
                        help="about how long to train on 2 CPU cores (default: %(default)s)")
    parser.add_argument("--steps", type=int, help="training steps (overrides --minutes)")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bar")
    parser.set_defaults(run=_run_quickstart)


def _run_quickstart(args):
    from electra_tf.pretraining.quickstart import format_quickstart_report, run_quickstart

    report = run_quickstart(args.output_dir, minutes=args.minutes, steps=args.steps,
                            progress=args.progress)
    print(format_quickstart_report(report))


def _add_vocab(subparsers):
    parser = subparsers.add_parser(
        "vocab",
        help="learn a WordPiece vocabulary from a text corpus",
        description="Learn a WordPiece vocabulary (tensorflow-text's BERT vocabulary learner). "
        "[PAD] [UNK] [CLS] [SEP] [MASK] get ids 0-4. OUT is written only when complete.",
    )
    parser.add_argument("--corpus", required=True, help="glob of plain or gzipped text files")
    parser.add_argument("--size", type=int, required=True,
                        help="target number of tokens (a small corpus may yield fewer)")
    parser.add_argument("--lower-case", action=argparse.BooleanOptionalAction, default=True,
                        help="lower-case and strip accents: an uncased vocabulary (default)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    parser.add_argument("out", help="vocabulary file to write, one token per line")
    parser.set_defaults(run=_run_vocab)


def _run_vocab(args):
    from electra_tf.data.wordpiece_vocabulary import train_wordpiece_vocabulary

    tokens = train_wordpiece_vocabulary(args.corpus, args.size, args.out,
                                        lower_case=args.lower_case, overwrite=args.overwrite)
    case = "" if args.lower_case else " --no-lower-case"
    print(f"wrote {len(tokens):,} tokens (asked for {args.size:,}) to {args.out}; "
          f"use it with --vocab {args.out}{case}")


def _add_prepare(subparsers):
    parser = subparsers.add_parser(
        "prepare",
        help="tokenize and pack a text corpus into TFRecord shards for `pretrain`",
        description="Tokenize and pack a text corpus once into PREFIX-0000i-of-0000K.tfrecord "
        "shards; then `electra-tf pretrain --corpus 'PREFIX-*.tfrecord'` with the same "
        "--max-seq-length and --vocab.",
    )
    parser.add_argument("--corpus", required=True, help="glob of plain or gzipped text files")
    parser.add_argument("--output", dest="output_prefix", required=True,
                        help="shard path prefix, e.g. shards/train")
    parser.add_argument("--max-seq-length", type=int, default=128,
                        help="tokens per example (default: %(default)s)")
    parser.add_argument("--shards", dest="num_shards", type=int, default=1,
                        help="number of shard files (default: %(default)s)")
    parser.add_argument("--vocab", dest="vocab_path",
                        help="WordPiece vocabulary file (default: the packaged uncased BERT one)")
    parser.add_argument("--lower-case", action=argparse.BooleanOptionalAction, default=True,
                        help="lower-case and strip accents (default)")
    parser.add_argument("--seed", type=int, default=0, help="packing seed (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing shards with this prefix")
    parser.set_defaults(run=_run_prepare)


def _run_prepare(args):
    from electra_tf.data.tfrecord_shards import prepare_tfrecord_shards

    paths, count = prepare_tfrecord_shards(
        args.corpus, args.output_prefix, max_seq_length=args.max_seq_length,
        num_shards=args.num_shards, vocab_path=args.vocab_path, lower_case=args.lower_case,
        seed=args.seed, overwrite=args.overwrite,
    )
    print(f"wrote {count:,} examples of {args.max_seq_length} tokens to {len(paths)} shard(s): "
          f"{paths[0]}{' ...' if len(paths) > 1 else ''}")
    print(f"train with: electra-tf pretrain --corpus '{args.output_prefix}-*.tfrecord' "
          f"--max-seq-length {args.max_seq_length}"
          + (f" --vocab {args.vocab_path}" if args.vocab_path else "")
          + ("" if args.lower_case else " --no-lower-case"))


def build_parser():
    parser = argparse.ArgumentParser(
        prog="electra-tf",
        description="ELECTRA pretraining, fine-tuning, compression and export (tf-keras).",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add in (_add_convert, _add_presets, _add_pretrain, _add_quickstart, _add_vocab,
                _add_prepare):
        add(subparsers)
    from electra_tf.cli import (compress_commands, export_commands, finetune_commands, score_commands,
                                serve_commands)

    for module in (finetune_commands, export_commands, compress_commands, serve_commands, score_commands):
        module.add_subcommands(subparsers)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except ValueError as error:  # bad input: say what was wrong, no traceback
        print(f"electra-tf {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
