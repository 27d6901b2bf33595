"""`electra-tf export`: argument parsing only; the work is `export_model_directory`."""

from electra_tf.cli.config_arguments import add_deprecated_alias
from electra_tf.export.export_model_directory import FORMATS, QUANTIZE_MODES


def add_quantization_arguments(parser, default=None):
    """The one set of quantization flags, shared by `export` and `compress quantize`."""
    parser.add_argument("--quantize", choices=QUANTIZE_MODES, default=default,
                        help="TFLite quantization: dynamic-range int8 weights, float16 weights, "
                        "or full int8 (weights and activations, calibrated on "
                        "--calibration-data)" + (f" (default: {default})" if default else ""))
    parser.add_argument("--calibration-data",
                        help="--quantize int8: a CSV/TSV file with a header (its text column), "
                        "JSON lines with \"text\", or one text per line, e.g. the training file")
    parser.add_argument("--num-calibration-examples", type=int, default=100,
                        help="texts of --calibration-data that calibrate int8 (default: "
                        "%(default)s)")
    parser.add_argument("--float-dense-layers", type=int, default=None,
                        help="--quantize int8: dense layers with the widest outputs (activation "
                        "outliers) kept in float32 (default 2; 0 quantizes all)")


def add_subcommands(subparsers):
    """Adds `export` to the top-level subparsers."""
    parser = subparsers.add_parser(
        "export",
        help="export a model as TF-Hub SavedModels, a TensorFlow Serving SavedModel or TFLite",
        description="Export an electra_tf model directory (save_pretrained). --format hub writes "
        "OUT/preprocessor and OUT/encoder (TF-Hub style); saved_model writes the end-to-end "
        "task model (raw strings in) for TensorFlow Serving; tflite writes a TFLite file. "
        "Everything is written to a temporary path first: a failed export leaves nothing.",
    )
    parser.add_argument("model_dir", metavar="MODEL_DIR",
                        help="encoder, discriminator, classifier, tagger or QA model directory")
    parser.add_argument("output_path", metavar="OUT", help="output directory (a file for tflite)")
    parser.add_argument("--format", required=True, choices=FORMATS)
    length = dict(dest="max_seq_length", type=int,
                  help="tokens per packed input (default: MODEL_DIR/task.json's "
                  "max_seq_length if present, else 128)")
    parser.add_argument("--max-seq-length", default=None, **length)
    add_deprecated_alias(parser, "--seq-length", "--max-seq-length", length)  # its old name
    parser.add_argument("--vocab", dest="vocab_path",
                        help="WordPiece vocabulary (default: MODEL_DIR/vocab.txt if present, "
                        "else the packaged uncased BERT one)")
    parser.add_argument("--no-lower-case", dest="lower_case", action="store_false", default=None,
                        help="the vocabulary is cased: keep case and accents (default: as "
                        "MODEL_DIR/task.json says, else lower-case)")
    parser.add_argument("--label-names",
                        help="saved_model classifiers and taggers: comma-separated class or tag "
                        "names, in id order (default: MODEL_DIR/task.json's)")
    parser.add_argument("--text-pair", action="store_true", default=None,
                        help="saved_model classifiers: inputs text and text_b (sentence pairs; "
                        "default: as the model was fine-tuned, from MODEL_DIR/task.json)")
    parser.add_argument("--batch-parts", type=int, default=1,
                        help="saved_model classifiers and QA models: run a batch of at least N "
                        "examples as N parts at the same time, one per core; for `serve "
                        "--intra-op-threads 1 --inter-op-threads N` (default: %(default)s, whole)")
    parser.add_argument("--width-parts", type=int, default=1,
                        help="saved_model task models: run each transformer block as N groups of "
                        "heads and neurons at the same time, one per core, for texts one at a "
                        "time; for `serve --intra-op-threads 1 --inter-op-threads N` (default: "
                        "%(default)s)")
    add_quantization_arguments(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    parser.set_defaults(run=_run_export)


def _run_export(args):
    from electra_tf.export.export_model_directory import export_model_directory

    label_names = args.label_names.split(",") if args.label_names else None
    model = export_model_directory(
        args.model_dir, args.output_path, args.format, quantize=args.quantize,
        max_seq_length=args.max_seq_length, vocab_path=args.vocab_path, lower_case=args.lower_case,
        label_names=label_names, text_pair=args.text_pair,
        calibration_data=args.calibration_data, overwrite=args.overwrite,
        num_calibration_examples=args.num_calibration_examples,
        float_dense_layers=args.float_dense_layers, batch_parts=args.batch_parts,
        width_parts=args.width_parts,
    )
    print(f"exported {type(model).__name__} as {args.format} to {args.output_path}")
