"""`electra-tf` command line: argument parsing only; the work is done by library functions."""

import argparse
import json
import os
import sys


def _add_convert(subparsers):
    parser = subparsers.add_parser(
        "convert",
        help="convert checkpoints between Hugging Face, original Google TF1 and electra_tf",
        description="Convert a checkpoint. Nothing is written to DST unless conversion succeeds.",
    )
    parser.add_argument("--from", dest="source", required=True,
                        choices=["huggingface", "google", "electra_tf"])
    parser.add_argument("--to", dest="target", required=True, choices=["electra_tf", "huggingface"])
    parser.add_argument("--model", dest="model_kind",
                        choices=["encoder", "discriminator", "generator"],
                        help="which part to convert (detected for Hugging Face sources)")
    parser.add_argument("--config", help="Google checkpoints: a preset name or a JSON config file")
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
                    model_kind=args.model_kind, config=config, overwrite=args.overwrite)
    print(f"wrote {type(model).__name__} ({model.count_params():,} parameters) to {args.dst}")


def _add_presets(subparsers):
    parser = subparsers.add_parser("presets", help="list model presets and their sizes")
    parser.set_defaults(run=_run_presets)


def _run_presets(args):
    from electra_tf.models.presets import PRESETS, describe_presets

    del args
    print(describe_presets(PRESETS))


def build_parser():
    parser = argparse.ArgumentParser(
        prog="electra-tf",
        description="ELECTRA pretraining, fine-tuning, compression and export (tf-keras).",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add in (_add_convert, _add_presets):
        add(subparsers)
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
