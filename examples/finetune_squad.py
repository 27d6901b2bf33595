"""Fine-tune ELECTRA for extractive question answering (SQuAD 1.1/2.0), evaluate it, ask it something.

    # a converted ELECTRA-Small discriminator on the official files (the paper's recipe)
    python examples/finetune_squad.py --encoder electra-small-discriminator \
        --train train-v1.1.json --dev dev-v1.1.json --learning-rate 3e-4 --output-dir runs/squad
    # SQuAD through tensorflow-datasets, the paper's head
    python examples/finetune_squad.py --encoder electra-small-discriminator \
        --train tfds:squad/v2.0 --dev tfds:squad/v2.0 --head electra
    # a smoke run: a random tiny encoder memorizes a few questions
    python examples/finetune_squad.py --tiny-encoder --train squad_v1_sample.json \
        --dev squad_v1_sample.json --max-seq-length 128 --doc-stride 64 --epochs 40 \
        --learning-rate 3e-3

The same job as `electra-tf finetune qa`, then `evaluate_qa` and `predict_qa`.
"""

import argparse
import os

import electra_tf
from electra_tf import QAConfig, evaluate_qa, format_qa_summary, predict_qa, run_qa

# The QA recipe (google-research/electra's SQuAD settings): `QAConfig`'s defaults, which
# `electra-tf finetune qa` uses too (tests/test_recipes.py checks they agree).
RECIPE = QAConfig(encoder="-", train="-")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    encoder = parser.add_mutually_exclusive_group(required=True)
    encoder.add_argument("--encoder", help="Hugging Face or electra_tf encoder directory")
    encoder.add_argument("--tiny-encoder", action="store_true",
                         help="a random 2 x 32 encoder with the uncased vocabulary (smoke test)")
    parser.add_argument("--train", required=True, help="SQuAD JSON file or tfds:squad/v1.1")
    parser.add_argument("--dev", help="SQuAD JSON file or tfds:squad/v1.1")
    parser.add_argument("--head", default=RECIPE.head, choices=["huggingface", "electra"])
    parser.add_argument("--max-seq-length", type=int, default=RECIPE.max_seq_length)
    parser.add_argument("--doc-stride", type=int, default=RECIPE.doc_stride)
    parser.add_argument("--epochs", type=int, default=RECIPE.epochs)
    parser.add_argument("--batch-size", type=int, default=RECIPE.batch_size)
    parser.add_argument("--learning-rate", type=float, default=RECIPE.learning_rate)
    # --output: its earlier name, still accepted.
    parser.add_argument("--output-dir", "--output", dest="output_dir", default="runs/squad")
    args = parser.parse_args(argv)

    encoder_dir = args.encoder
    if args.tiny_encoder:
        encoder_dir = os.path.join(args.output_dir, "tiny_encoder")
        electra_tf.ElectraEncoder(
            vocab_size=30522, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
            max_sequence_length=max(128, args.max_seq_length), dropout_rate=0.0,
        ).save_pretrained(encoder_dir, overwrite=True)

    config = QAConfig(encoder=encoder_dir, train=args.train, dev=args.dev, head=args.head,
                      max_seq_length=args.max_seq_length, doc_stride=args.doc_stride,
                      max_query_length=min(RECIPE.max_query_length, args.max_seq_length // 4),
                      epochs=args.epochs, batch_size=args.batch_size,
                      learning_rate=args.learning_rate, output_dir=args.output_dir)
    print(format_qa_summary(run_qa(config)))

    model_dir = os.path.join(args.output_dir, "model")
    if args.dev:
        metrics = evaluate_qa(model_dir, args.dev)["metrics"]
        print(f"dev exact match {metrics['exact_match']:.2f}, F1 {metrics['f1']:.2f}")
    context = ("ELECTRA was introduced by Kevin Clark, Minh-Thang Luong, Quoc V. Le and "
               "Christopher D. Manning in 2020. It pretrains a discriminator to detect tokens "
               "replaced by a small generator.")
    question = "Who introduced ELECTRA?"
    (answer,) = predict_qa(model_dir, [{"question": question, "context": context}])
    print(f"{question} -> {answer['answer']!r} (score {answer['score']:.2f})")


if __name__ == "__main__":
    main()
