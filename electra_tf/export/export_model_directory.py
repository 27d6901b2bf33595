"""What `electra-tf export` does: an electra_tf model directory in, a deployable artifact out.

Formats:
    - "hub": OUT/preprocessor and OUT/encoder, TF-Hub style (`export_hub_saved_models`);
      any model with an ElectraEncoder.
    - "saved_model": the end-to-end task SavedModel for TensorFlow Serving
      (`export_task_saved_model`); task models only.
    - "tflite": a TFLite flatbuffer (`electra_tf.export.tflite_export.export_tflite`),
      optionally quantized.
"""

import os

from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
from electra_tf.tasks.task_model_io import read_task_info, resolve_model_dir
from electra_tf.utils.renamed_arguments import renamed_arguments

FORMATS = ("hub", "saved_model", "tflite")
QUANTIZE_MODES = ("dynamic", "float16", "int8")
VOCAB_NAME = "vocab.txt"  # a model directory may carry its vocabulary (run_finetuning's rule)


@renamed_arguments(seq_length="max_seq_length")
def export_model_directory(
    model_dir,
    output_path,
    format,
    quantize=None,
    max_seq_length=None,
    tokenizer=None,
    label_names=None,
    text_pair=None,
    calibration_data=None,
    overwrite=False,
    vocab_path=None,
    lower_case=None,
    num_calibration_examples=100,
    float_dense_layers=None,
    batch_parts=1,
    width_parts=1,
):
    """Loads the model in `model_dir` (written by `save_pretrained`) and exports it.

    Args:
        model_dir: an electra_tf model directory (config.json + model.weights.h5), or the run
            directory a fine-tuning or compression job wrote it into (its model/)
            of an encoder, discriminator, classifier, tagger or QA model; one
            written by `electra-tf finetune` (`save_task_model`) also has a
            task.json, whose label names, max_seq_length and lower_case are
            the defaults.
        output_path: the directory (file for "tflite") to write, atomically.
        format: "hub", "saved_model" or "tflite" (see the module docstring).
        quantize: "tflite" only: None, "dynamic", "float16" or "int8".
        max_seq_length: tokens per packed input; None: task.json's max_seq_length,
            else 128.
        tokenizer: an `ElectraTokenizer`; None builds one from `vocab_path`
            and `lower_case`.
        label_names: "saved_model" classifiers and taggers: one name per
            class or tag; None: task.json's.
        text_pair: "saved_model" classifiers: inputs `text` and `text_b`;
            None: as the model was fine-tuned (task.json has a text_b_column).
        vocab_path: the WordPiece vocabulary when `tokenizer` is None; None:
            `model_dir/vocab.txt` when there is one, else the packaged one.
        lower_case: when `tokenizer` is None; None: task.json's, else True.
        calibration_data: "tflite" with quantize="int8": a file whose first
            `num_calibration_examples` texts calibrate the activation ranges
            (`read_calibration_texts`: CSV/TSV with a header, JSON lines, or
            one text per line; task.json's text column when there is one);
            for a tagger also a CoNLL file with its tags, such as its
            training file (`conll_calibration_texts`).
        num_calibration_examples: how many texts calibrate int8.
        float_dense_layers: int8 only: dense layers with the widest outputs
            kept in float32; None: `tflite_export.FLOAT_DENSE_LAYERS`.
        overwrite: replace an existing `output_path`.
        batch_parts: "saved_model" classifiers and QA models: a batch of at
            least this many examples runs as this many parts at the same
            time (see `export_task_saved_model`).
        width_parts: "saved_model" task models: each transformer block runs
            as this many groups of heads and neurons at the same time (see
            `export_task_saved_model`).

    Returns:
        The loaded model.

    >>> export_model_directory("classifier", "classifier.onnx", "onnx")
    Traceback (most recent call last):
    ...
    ValueError: `format` must be one of ['hub', 'saved_model', 'tflite']; received format='onnx'.
    """
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {list(FORMATS)}; received format={format!r}.")
    if quantize is not None and (format != "tflite" or quantize not in QUANTIZE_MODES):
        raise ValueError(
            f"`quantize` must be None or one of {list(QUANTIZE_MODES)}, with format='tflite'; "
            f"received quantize={quantize!r} with format={format!r}."
        )
    if batch_parts != 1 and format != "saved_model":
        raise ValueError(
            "`batch_parts` splits the batches of an end-to-end SavedModel (format="
            f"'saved_model'); received batch_parts={batch_parts!r} with format={format!r}."
        )
    if width_parts != 1 and format != "saved_model":
        raise ValueError(
            "`width_parts` splits the transformer blocks of an end-to-end SavedModel (format="
            f"'saved_model'); received width_parts={width_parts!r} with format={format!r}."
        )
    if quantize == "int8" and not calibration_data:
        raise ValueError(
            "Full int8 quantization needs calibration texts: pass calibration_data "
            "(--calibration-data): a CSV/TSV file with a header, JSON lines, or one text per "
            "line, e.g. the training file."
        )
    model_dir = resolve_model_dir(model_dir)  # a job's run directory: its model/
    if not os.path.isdir(model_dir):
        raise ValueError(
            f"Model directory not found: received {model_dir!r}. Expected a directory "
            "written by save_pretrained (config.json + model.weights.h5)."
        )
    if os.path.exists(output_path) and not overwrite and not (
        os.path.isdir(output_path) and not os.listdir(output_path)
    ):
        raise ValueError(
            f"Output {output_path!r} already exists; choose another path or pass "
            "overwrite=True (--overwrite)."
        )
    from electra_tf.models.model_io import load_pretrained

    model = load_pretrained(model_dir)
    task = read_task_info(model_dir) or {}  # a malformed task.json is a clear ValueError
    if max_seq_length is None:
        max_seq_length = task.get("max_seq_length", 128)
    if label_names is None and format == "saved_model" and task.get("task") in ("classify", "tag"):
        label_names = task.get("label_names")
    if text_pair is None:
        text_pair = bool(task.get("text_b_column"))
    if tokenizer is None:
        if vocab_path is None and os.path.isfile(os.path.join(model_dir, VOCAB_NAME)):
            vocab_path = os.path.join(model_dir, VOCAB_NAME)
        if lower_case is None:
            lower_case = task.get("lower_case", True)
        tokenizer = ElectraTokenizer(vocab_path, lower_case=lower_case)
    if format == "hub":
        from electra_tf.export.hub_saved_models import export_hub_saved_models

        export_hub_saved_models(model, output_path, tokenizer=tokenizer,
                                max_seq_length=max_seq_length,
                                overwrite=overwrite)
    elif format == "saved_model":
        from electra_tf.export.task_saved_model import export_task_saved_model

        export_task_saved_model(model, output_path, tokenizer=tokenizer,
                                max_seq_length=max_seq_length, label_names=label_names,
                                overwrite=overwrite, text_pair=text_pair,
                                batch_parts=batch_parts, width_parts=width_parts)
    else:
        from electra_tf.export import tflite_export  # the TFLite converter

        representative = None
        if calibration_data:
            texts = None
            if task.get("task") == "tag":  # a tagger's training file is CoNLL
                texts = conll_calibration_texts(calibration_data, num_calibration_examples,
                                                task)
            if texts is None:
                texts = tflite_export.read_calibration_texts(
                    calibration_data, num_calibration_examples,
                    text_column=task.get("text_column") or "text")
            representative = tflite_export.representative_dataset(texts, tokenizer, max_seq_length,
                                                                  num_calibration_examples)
        tflite_export.export_tflite(
            model, output_path, quantize=quantize, max_seq_length=max_seq_length,
            representative_dataset=representative, overwrite=overwrite,
            float_dense_layers=tflite_export.FLOAT_DENSE_LAYERS if float_dense_layers is None
            else float_dense_layers)
    return model


def conll_calibration_texts(path, count, task):
    """A tagger's CoNLL file as calibration texts, or None when it does not read as one.

    The first `count` sentences, their words joined by spaces. The file must
    read as CoNLL with the tagger's own tags (task.json's label names and
    label column), so plain text, one text per line, is never mistaken for
    it ("Anna visited Paris" would be the word "Anna" tagged "Paris").

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "train.conll")
    >>> _ = open(path, "w").write("Anna B-PER\\nvisited O\\n\\nParis B-LOC\\n")
    >>> task = {"task": "tag", "label_names": ["O", "B-PER", "B-LOC"]}
    >>> conll_calibration_texts(path, 10, task)
    ['Anna visited', 'Paris']
    >>> _ = open(path, "w").write("Anna visited Paris\\n")
    >>> conll_calibration_texts(path, 10, task) is None
    True
    """
    if not task.get("label_names") or not os.path.isfile(path) or path.lower().endswith(
            (".csv", ".tsv", ".json", ".jsonl")):
        return None
    from electra_tf.data.conll_dataset import read_conll_file

    try:
        examples, _ = read_conll_file(path, label_column=task.get("label_column", -1),
                                      label_names=task["label_names"])
    except ValueError:  # not CoNLL with these tags: texts, one a line
        return None
    return [" ".join(words) for words in examples["words"] if words][:count] or None
