"""`electra-tf score`: argument parsing only; the work is `electra_tf.pretraining.electric_scoring`."""

import argparse
import sys


def add_subcommands(subparsers):
    parser = subparsers.add_parser(
        "score",
        help="re-rank candidate sentences by an Electric model's pseudo-log-likelihood",
        description="Score each candidate with an Electric energy model (one forward pass per "
        "batch: PLL(x) ~ sum over word pieces of -E(x)_t) and print each id's candidates best "
        "first, as id<TAB>rank<TAB>score<TAB>text lines.",
    )
    parser.add_argument("--model", required=True,
                        help="an `electra-tf pretrain --objective electric` output directory, or "
                        "its discriminator/ directory")
    parser.add_argument("--input", required=True,
                        help="candidates, one 'id<TAB>text' per line; lines sharing an id are "
                        "ranked together")
    parser.add_argument("--output", help="file to write (default: standard output)")
    parser.add_argument("--vocab", dest="vocab_path",
                        help="WordPiece vocabulary file (default: the packaged uncased BERT one)")
    parser.add_argument("--lower-case", action=argparse.BooleanOptionalAction, default=True,
                        help="lower-case and strip accents (default; off for a cased vocabulary)")
    parser.add_argument("--max-seq-length", type=int, default=128,
                        help="tokens per candidate, [CLS] and [SEP] included (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=32, help="default: %(default)s")
    parser.set_defaults(run=run_score)


def run_score(args):
    from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
    from electra_tf.pretraining.electric_scoring import load_energy_model, read_candidates, rerank
    from electra_tf.utils.json_files import atomic_text_file

    candidates = read_candidates(args.input)
    ranked = rerank(load_energy_model(args.model), candidates,
                    ElectraTokenizer(vocab_path=args.vocab_path, lower_case=args.lower_case),
                    max_seq_length=args.max_seq_length, batch_size=args.batch_size)
    lines = [f"{group}\t{rank}\t{score:.4f}\t{text}\n" for group, items in ranked.items()
             for rank, (text, score) in enumerate(items, 1)]
    if args.output:  # written whole or not at all: an earlier ranking is never left half-overwritten
        with atomic_text_file(args.output) as f:
            f.writelines(lines)
    else:
        sys.stdout.writelines(lines)
