"""The jobs behind `electra-tf compress prune|distill|quantize`: directories in, directories out.

    summary = run_prune("runs/sst2/classifier", "train.tsv", "runs/sst2_pruned",
                        target_sparsity=0.5, dev="dev.tsv")

Each job reads an `ElectraClassifier` written by `save_pretrained`, a
labelled text file (`read_classification_file` formats) and writes its output
directory atomically (nothing is left half-written; an existing one is kept
unless `overwrite`):

    prune:    classifier/ (sparse kernels), sparsity.json, sparsity.txt,
              logs/ (TensorBoard: loss, per-layer sparsity), summary.json
    distill:  classifier/ (the student), logs/ (TensorBoard), summary.json
    quantize: one .tflite file, through `electra_tf.export.tflite_export.export_tflite`.
"""

import json
import os
import time

import tf_keras as keras

from electra_tf.compression.compression_report import accuracy_from_logits
from electra_tf.compression.electra_distiller import ElectraDistiller, student_from_teacher
from electra_tf.compression.pruning import format_sparsity_table, prune_classifier, sparsity_report
from electra_tf.data.classification_dataset import (
    make_classification_dataset,
    read_classification_file,
)
from electra_tf.export.tflite_export import representative_dataset  # noqa: F401  (its old home)
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
from electra_tf.tasks.electra_classifier import ElectraClassifier
from electra_tf.tasks.task_model_io import read_task_info, save_task_model
from electra_tf.utils.atomic_directory import atomic_directory

QUANTIZE_MODES = ("dynamic", "float16", "int8")
DEFAULT_MAX_SEQ_LENGTH = 128  # for a classifier directory without task.json


def load_classifier_and_tokenizer(classifier_dir, vocab_path=None):
    """The `ElectraClassifier` saved in `classifier_dir` and a tokenizer whose vocabulary fits it.

    The tokenizer reads `vocab_path`, else `classifier_dir/vocab.txt` when
    present, else the packaged uncased BERT vocabulary; it is cased when the
    directory's task.json says so.
    """
    classifier = ElectraClassifier.from_pretrained(classifier_dir)
    task = read_task_info(classifier_dir) or {}
    if vocab_path is None and os.path.isfile(os.path.join(classifier_dir, "vocab.txt")):
        vocab_path = os.path.join(classifier_dir, "vocab.txt")
    tokenizer = ElectraTokenizer(vocab_path, lower_case=task.get("lower_case", True))
    if tokenizer.vocab_size != classifier.encoder.vocab_size:
        raise ValueError(
            f"The vocabulary has {tokenizer.vocab_size} tokens but the classifier's encoder "
            f"{classifier.encoder.vocab_size}; pass the model's vocab.txt as vocab_path (--vocab)."
        )
    return classifier, tokenizer


def classifier_task_info(classifier_dir, classifier):
    """What the classifier's directory records (task.json), with defaults for one that has none.

    The compression jobs read their defaults from it (max_seq_length, the text
    and label columns, label names) and write it, updated, next to their output
    model, so that `evaluate`, `predict`, `export` and `serve` read a pruned or
    distilled model as they read the fine-tuned one.
    """
    task = dict(read_task_info(classifier_dir) or {})
    if task.get("task", "classify") != "classify":
        raise ValueError(f"{classifier_dir!r} holds a {task['task']!r} model; the compression "
                         "jobs take classifiers (`electra-tf finetune classify`).")
    task.setdefault("max_seq_length", DEFAULT_MAX_SEQ_LENGTH)
    if task.get("label_names") is None and classifier.problem_type != "regression":
        task["label_names"] = [str(i) for i in range(classifier.num_classes)]
    return task


def _save_compressed(model, path, tokenizer, task, max_seq_length, compressed_from):
    """The output classifier as a task directory: config, weights, vocab.txt, task.json."""
    extra = {key: value for key, value in task.items()
             if key not in ("task", "model_class", "label_names", "max_seq_length", "lower_case",
                            "vocab")}
    extra["compressed_from"] = compressed_from
    save_task_model(model, path, "classify", tokenizer, max_seq_length, task.get("label_names"),
                    extra=extra)


def _dataset(path, classifier, tokenizer, max_seq_length, batch_size, shuffle=False, seed=0,
             task=None):
    task = task or {}
    examples, _ = read_classification_file(
        path, num_classes=classifier.num_classes,
        text_column=task.get("text_column") or "text",
        text_b_column=task.get("text_b_column"),
        label_column=task.get("label_column") or "label",
        label_names=task.get("label_names") if classifier.problem_type != "regression" else None)
    data = make_classification_dataset(examples, tokenizer, max_seq_length, batch_size,
                                       shuffle=shuffle, seed=seed)
    return data, examples["label"]


def dev_accuracy(classifier, data, labels):
    """Accuracy of `classifier` on a batched `(features, labels)` dataset."""
    logits = classifier.predict(data.map(lambda features, _: features), verbose=0)
    return accuracy_from_logits(labels, logits)


def _steps(data, epochs, max_steps):
    """(epochs, steps_per_epoch, data): `max_steps` means one epoch of exactly that many batches."""
    if max_steps is None:
        return epochs, int(data.cardinality()), data
    if not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"`max_steps` must be a positive integer; received {max_steps!r}.")
    return 1, max_steps, data.repeat()


def _training_data(path, teacher, tokenizer, max_seq_length, batch_size, epochs, max_steps,
                   augment_copies, task=None):
    """(epochs, steps_per_epoch, data) for training a student of `teacher` on `path`.

    With `augment_copies`, an epoch is the texts plus that many augmented
    copies of each (`augmented_distillation_dataset`).
    """
    if not augment_copies:
        train_data, _ = _dataset(path, teacher, tokenizer, max_seq_length, batch_size,
                                 shuffle=True, task=task)
        return _steps(train_data, epochs, max_steps)
    from electra_tf.compression.augmentation import augmented_distillation_dataset

    task = task or {}
    examples, _ = read_classification_file(
        path, num_classes=teacher.num_classes, text_column=task.get("text_column") or "text",
        label_column=task.get("label_column") or "label",
        label_names=task.get("label_names") if teacher.problem_type != "regression" else None)
    train_data = augmented_distillation_dataset(
        examples, tokenizer, teacher, copies=augment_copies, max_seq_length=max_seq_length,
        batch_size=batch_size)  # endless
    if max_steps is not None:
        return _steps(train_data, epochs, max_steps)
    epoch = -(-len(examples["text"]) * (augment_copies + 1) // batch_size)
    return epochs, epoch, train_data


def run_prune(
    classifier_dir,
    train,
    output_dir,
    target_sparsity=0.5,
    epochs=1,
    max_steps=None,
    batch_size=32,
    max_seq_length=None,
    learning_rate=2e-5,
    dev=None,
    vocab_path=None,
    overwrite=False,
    verbose=1,
    distill_alpha=None,
    augment_copies=0,
):
    """Prunes a saved classifier while fine-tuning on `train`; see the module docstring.

    `distill_alpha`: when given, the unpruned classifier is the teacher and
    the pruned one learns from its soft predictions with that weight (and from
    the labels with 1 - distill_alpha); see `prune_classifier`.
    `augment_copies`: also train on that many augmented copies of each text,
    which only the teacher labels (`augmented_distillation_dataset`); needs
    `distill_alpha`.

    `max_steps` replaces `epochs`: one pass of exactly that many batches.
    `max_seq_length` None: the classifier directory's task.json's (else 128).
    The pruned model is written as OUTPUT/classifier with the input's
    vocab.txt and task.json (label names, columns, max_seq_length), so the
    other commands read it as they read the fine-tuned model.

    Returns the summary written to summary.json, with the per-kernel sparsity
    report and, when `dev` is given, dev accuracy before and after.

    Pruning trains, which takes a while; the example shows the check made
    before anything is read:

    >>> run_prune("runs/sst2/classifier", "train.tsv", "runs/sst2_pruned", augment_copies=2)
    Traceback (most recent call last):
    ...
    ValueError: Augmented texts have no labels, so augment_copies=2 needs the unpruned model
    as teacher: pass distill_alpha (--distill-alpha), e.g. 1.0.
    """
    if augment_copies and distill_alpha is None:
        raise ValueError(
            f"Augmented texts have no labels, so augment_copies={augment_copies} needs the "
            "unpruned model as teacher: pass distill_alpha (--distill-alpha), e.g. 1.0."
        )
    classifier, tokenizer = load_classifier_and_tokenizer(classifier_dir, vocab_path)
    task = classifier_task_info(classifier_dir, classifier)
    max_seq_length = max_seq_length or task["max_seq_length"]
    epochs, steps_per_epoch, train_data = _training_data(
        train, classifier, tokenizer, max_seq_length, batch_size, epochs, max_steps,
        augment_copies, task)
    summary = {"classifier": classifier_dir, "train": train, "target_sparsity": target_sparsity,
               "steps": epochs * steps_per_epoch, "augment_copies": augment_copies}
    if dev:
        dev_data, dev_labels = _dataset(dev, classifier, tokenizer, max_seq_length, batch_size,
                                        task=task)
        summary["dev_accuracy_before"] = dev_accuracy(classifier, dev_data, dev_labels)
    with atomic_directory(output_dir, overwrite=overwrite) as tmp:
        start = time.perf_counter()
        pruned, history = prune_classifier(
            classifier, train_data, target_sparsity=target_sparsity, epochs=epochs,
            steps_per_epoch=steps_per_epoch, learning_rate=learning_rate,
            log_dir=os.path.join(tmp, "logs"), verbose=verbose,
            **({} if distill_alpha is None else {"teacher": classifier, "alpha": distill_alpha}),
        )
        summary["train_seconds"] = round(time.perf_counter() - start, 1)
        summary["history"] = {k: [float(v) for v in vs] for k, vs in history.history.items()}
        report = sparsity_report(pruned)
        summary["sparsity"] = report
        if dev:
            summary["dev_accuracy_after"] = dev_accuracy(pruned, dev_data, dev_labels)
        _save_compressed(pruned, os.path.join(tmp, "classifier"), tokenizer, task,
                         max_seq_length, compressed_from=f"prune {os.path.abspath(classifier_dir)}")
        with open(os.path.join(tmp, "sparsity.json"), "w") as f:
            json.dump(report, f, indent=2)
        with open(os.path.join(tmp, "sparsity.txt"), "w") as f:
            f.write(format_sparsity_table(report) + "\n")
        with open(os.path.join(tmp, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
    return summary


def run_distill(
    teacher_dir,
    train,
    output_dir,
    num_layers=2,
    temperature=2.0,
    alpha=0.5,
    epochs=1,
    max_steps=None,
    batch_size=32,
    max_seq_length=None,
    learning_rate=1e-4,
    dev=None,
    vocab_path=None,
    overwrite=False,
    verbose=1,
    augment_copies=0,
):
    """Distils a saved classifier into a `num_layers` student started from the teacher's layers.

    `augment_copies`: also train on that many augmented copies of each text,
    which only the teacher labels (`augmented_distillation_dataset`).

    `max_seq_length` None: the teacher directory's task.json's (else 128).
    The student is written as OUTPUT/classifier with the teacher's vocab.txt
    and task.json, so the other commands read it as they read the teacher.

    Returns the summary written to summary.json (history, and with `dev` the
    teacher's and the student's dev accuracy).
    """
    from electra_tf.optimization.layerwise_decay_adamw import create_finetuning_optimizer

    teacher, tokenizer = load_classifier_and_tokenizer(teacher_dir, vocab_path)
    task = classifier_task_info(teacher_dir, teacher)
    max_seq_length = max_seq_length or task["max_seq_length"]
    student = student_from_teacher(teacher, num_layers)
    epochs, steps_per_epoch, train_data = _training_data(
        train, teacher, tokenizer, max_seq_length, batch_size, epochs, max_steps, augment_copies,
        task)
    total_steps = epochs * steps_per_epoch
    summary = {"teacher": teacher_dir, "train": train, "num_layers": num_layers,
               "temperature": temperature, "alpha": alpha, "steps": total_steps,
               "augment_copies": augment_copies}
    distiller = ElectraDistiller(teacher, student, temperature=temperature, alpha=alpha)
    distiller.compile(optimizer=create_finetuning_optimizer(
        learning_rate, total_steps, num_layers=num_layers))
    with atomic_directory(output_dir, overwrite=overwrite) as tmp:
        start = time.perf_counter()
        history = distiller.fit(
            train_data, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=verbose,
            callbacks=[keras.callbacks.TensorBoard(
                os.path.join(tmp, "logs"), update_freq=max(1, total_steps // 50))],
        )
        summary["train_seconds"] = round(time.perf_counter() - start, 1)
        summary["history"] = {k: [float(v) for v in vs] for k, vs in history.history.items()}
        if dev:
            dev_data, dev_labels = _dataset(dev, teacher, tokenizer, max_seq_length, batch_size,
                                            task=task)
            summary["dev_accuracy_teacher"] = dev_accuracy(teacher, dev_data, dev_labels)
            summary["dev_accuracy_student"] = dev_accuracy(student, dev_data, dev_labels)
        _save_compressed(student, os.path.join(tmp, "classifier"), tokenizer, task,
                         max_seq_length, compressed_from=f"distill {os.path.abspath(teacher_dir)}")
        with open(os.path.join(tmp, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
    return summary


def run_quantize(
    classifier_dir,
    output_path,
    quantize="int8",
    calibration_data=None,
    seq_length=None,
    num_calibration_examples=100,
    vocab_path=None,
    overwrite=False,
    float_dense_layers=None,
):
    """Converts a saved model directory to a quantized TFLite file.

    The same route as `electra-tf export --format tflite --quantize`
    (`export_model_directory`): one set of options, one calibration format.
    `quantize` is "dynamic" (int8 weights), "float16" or "int8" (weights and
    activations; needs `calibration_data`: a CSV/TSV file with a header, JSON
    lines or one text per line, whose first `num_calibration_examples` texts
    calibrate the activation ranges). `float_dense_layers` (int8 only): dense
    layers with the widest outputs kept in float32; None: `FLOAT_DENSE_LAYERS`.
    `seq_length` None: the directory's task.json's max_seq_length (else 128).
    Returns `{"path", "bytes", "quantize"}`.

    Converting takes tens of seconds, so the examples show the checks made
    before anything is read or written:

    >>> run_quantize("runs/sst2/classifier", "model.tflite", quantize="int4")
    Traceback (most recent call last):
    ...
    ValueError: `quantize` must be one of ['dynamic', 'float16', 'int8']; received 'int4'.
    >>> run_quantize("runs/sst2/classifier", "model.tflite", quantize="int8")
    Traceback (most recent call last):
    ...
    ValueError: Full int8 quantization needs calibration texts: pass calibration_data
    (--calibration-data): a CSV/TSV file with a header, JSON lines, or one text per line,
    e.g. the training file.
    """
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"`quantize` must be one of {list(QUANTIZE_MODES)}; received {quantize!r}.")
    from electra_tf.export.export_model_directory import export_model_directory

    export_model_directory(
        classifier_dir, output_path, "tflite", quantize=quantize, seq_length=seq_length,
        vocab_path=vocab_path, calibration_data=calibration_data,
        num_calibration_examples=num_calibration_examples,
        float_dense_layers=float_dense_layers, overwrite=overwrite)
    return {"path": output_path, "bytes": os.path.getsize(output_path), "quantize": quantize}
