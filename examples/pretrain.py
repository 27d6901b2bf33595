"""Pretrain ELECTRA from Python, then load the discriminator it wrote.

    python examples/pretrain.py --preset tiny --steps 300             # the packaged Austen text
    python examples/pretrain.py --corpus 'corpus/*.txt.gz' --preset small --steps 100000

The same job as `electra-tf pretrain`; run it again with the same --output-dir to resume.
"""

import argparse

import electra_tf
from electra_tf import PretrainingConfig, format_pretraining_summary, packaged_corpus, pretrain


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=packaged_corpus("train"),
                        help="glob of text files (default: the packaged Northanger Abbey)")
    parser.add_argument("--preset", default="tiny", choices=sorted(electra_tf.PRESETS))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, default=64)
    # --output: its earlier name, still accepted.
    parser.add_argument("--output-dir", "--output", dest="output_dir", default="runs/example")
    parser.add_argument("--strategy", default="auto")
    args = parser.parse_args(argv)

    config = PretrainingConfig(
        corpus=args.corpus, preset=args.preset, steps=args.steps, batch_size=args.batch_size,
        max_seq_length=args.max_seq_length, output_dir=args.output_dir, strategy=args.strategy,
    )
    print(format_pretraining_summary(pretrain(config)))

    discriminator = electra_tf.ElectraDiscriminator.from_pretrained(
        f"{args.output_dir}/discriminator")
    print(f"loaded {type(discriminator).__name__} ({discriminator.count_params():,} parameters)")


if __name__ == "__main__":
    main()
