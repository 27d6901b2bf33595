"""The jobs behind `electra-tf compress prune|distill|shrink|qat|quantize`: directories in and out.

    summary = run_prune("runs/sst2/model", "train.tsv", "runs/sst2_pruned",
                        target_sparsity=0.5, dev="dev.tsv")

Each job reads an `ElectraClassifier` written by `save_pretrained`, a
labelled text file (`read_classification_file` formats) and writes its output
directory atomically (nothing is left half-written; an existing one is kept
unless `overwrite`):

    prune:    model/ (sparse kernels; a classifier, tagger or QA task directory),
              sparsity.json, sparsity.txt, logs/ (TensorBoard: loss, per-layer
              sparsity), summary.json
    distill:  model/ (the shallower student; a classifier, tagger or QA task directory),
              logs/ (TensorBoard), summary.json
    shrink:   model/ (fewer heads and feed-forward neurons per layer, distilled back),
              logs/ (TensorBoard), summary.json
    quantize: one .tflite file, through `electra_tf.export.tflite_export.export_tflite`.
    qat:      model.tflite (int8: every dense layer, embedding table and attention matmul),
              model/ (the float weights after quantization-aware training), logs/,
              summary.json
"""

import os
import time

import tf_keras as keras

from electra_tf.compression.compression_report import accuracy_from_logits
from electra_tf.compression.electra_distiller import ElectraDistiller, student_from_teacher
from electra_tf.compression.pruning import (
    check_target_sparsity,
    format_sparsity_table,
    prune_task_model,
    sparsity_report,
)
from electra_tf.compression.task_data import (  # noqa: F401  (their old home)
    DEFAULT_MAX_SEQ_LENGTH,
    classifier_task_info,
    load_classifier_and_tokenizer,
    load_task_model_and_tokenizer,
    save_compressed_model,
    task_dataset,
    task_info_at_length,
    task_metrics,
)
from electra_tf.data.classification_dataset import (
    make_classification_dataset,
    read_classification_file,
)
from electra_tf.export.tflite_export import representative_dataset  # noqa: F401  (its old home)
from electra_tf.tasks.task_model_io import MODEL_DIRNAME
from electra_tf.utils.atomic_directory import atomic_directory
from electra_tf.utils.checks import is_integer
from electra_tf.utils.json_files import write_json
from electra_tf.utils.renamed_arguments import renamed_arguments

QUANTIZE_MODES = ("dynamic", "float16", "int8")


def _save_compressed(model, path, tokenizer, task, max_seq_length, compressed_from):
    """The output model as a task directory: config, weights, vocab.txt, task.json."""
    save_compressed_model(model, path, tokenizer, {"task": "classify", **task}, compressed_from,
                          max_seq_length)


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
    if not is_integer(max_steps) or max_steps < 1:
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
    model_dir,
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
    """Prunes a saved task model (classifier, tagger or QA) while fine-tuning on `train`.

    `model_dir` is a task directory (`electra-tf finetune classify|tag|qa`'s
    OUTPUT/model, or that OUTPUT directory); `train` and `dev` are files of its
    task (CSV/TSV/JSONL, CoNLL, SQuAD JSON), read with the columns, label
    names, casing and max_seq_length of its task.json (`task_data`).
    `distill_alpha`: when given, the unpruned model is the teacher and the
    pruned one learns from its soft predictions with that weight (and from
    the labels with 1 - distill_alpha); see `prune_task_model`.
    `augment_copies` (classifiers): also train on that many augmented copies
    of each text, which only the teacher labels
    (`augmented_distillation_dataset`); needs `distill_alpha`.

    `max_steps` replaces `epochs`: one pass of exactly that many batches.
    `max_seq_length` None: the model directory's task.json's (else 128).
    The pruned model is written as OUTPUT/model, a full task directory with
    the input's vocab.txt and task.json (label names, columns, settings, and
    "compressed_from"), so the other commands read it as they read the
    fine-tuned model; next to it sparsity.json, sparsity.txt, logs/
    (TensorBoard) and summary.json.

    Returns the summary written to summary.json, with the per-kernel sparsity
    report and, when `dev` is given, the task's dev score before and after
    ("dev_score_name", "dev_score_before", "dev_score_after"; classifiers
    also "dev_accuracy_before" and "dev_accuracy_after").

    Pruning trains, which takes a while; the examples show the checks made
    before anything is read:

    >>> run_prune("runs/sst2/model", "train.tsv", "runs/sst2_pruned", augment_copies=2)
    Traceback (most recent call last):
    ...
    ValueError: Augmented texts have no labels, so augment_copies=2 needs the unpruned model
    as teacher: pass distill_alpha (--distill-alpha), e.g. 1.0.
    >>> run_prune("runs/sst2/model", "train.tsv", "runs/sst2_pruned", target_sparsity=1.0)
    Traceback (most recent call last):
    ...
    ValueError: `target_sparsity` (--sparsity) must be a number in [0, 1), the fraction of zeros
    each pruned kernel ends with; received 1.0.
    """
    check_target_sparsity(target_sparsity)
    if augment_copies and distill_alpha is None:
        raise ValueError(
            f"Augmented texts have no labels, so augment_copies={augment_copies} needs the "
            "unpruned model as teacher: pass distill_alpha (--distill-alpha), e.g. 1.0."
        )
    model, tokenizer, task = load_task_model_and_tokenizer(model_dir, vocab_path)
    if augment_copies and task["task"] != "classify":
        raise ValueError(
            f"augment_copies={augment_copies} (--augment-copies) augments classification texts; "
            f"{model_dir!r} holds a {task['task']!r} model. Leave it at 0."
        )
    task = task_info_at_length(task, model, max_seq_length)
    max_seq_length = task["max_seq_length"]
    # Everything from here on fails before the output appears (an existing one first).
    with atomic_directory(output_dir, overwrite=overwrite) as tmp:
        if augment_copies:
            epochs, steps_per_epoch, train_data = _training_data(
                train, model, tokenizer, max_seq_length, batch_size, epochs, max_steps,
                augment_copies, task)
        else:
            train_data = task_dataset(task, model, tokenizer, train, max_seq_length, batch_size,
                                      shuffle=True)
            epochs, steps_per_epoch, train_data = _steps(train_data, epochs, max_steps)
        summary = {"model": model_dir, "task": task["task"], "train": train,
                   "target_sparsity": target_sparsity, "steps": epochs * steps_per_epoch,
                   "augment_copies": augment_copies}
        if task["task"] == "classify":
            summary["classifier"] = model_dir  # the key earlier versions wrote
        if dev:
            before = task_metrics(model, tokenizer, task, dev, max_seq_length, batch_size)
            summary["dev_score_name"] = before["score_name"]
            summary["dev_score_before"] = before["score"]
        start = time.perf_counter()
        pruned, history = prune_task_model(
            model, train_data, target_sparsity=target_sparsity, epochs=epochs,
            steps_per_epoch=steps_per_epoch, learning_rate=learning_rate,
            log_dir=os.path.join(tmp, "logs"), verbose=verbose,
            **({} if distill_alpha is None else {"teacher": model, "alpha": distill_alpha}),
        )
        summary["train_seconds"] = round(time.perf_counter() - start, 1)
        summary["history"] = {k: [float(v) for v in vs] for k, vs in history.history.items()}
        report = sparsity_report(pruned)
        summary["sparsity"] = report
        if dev:
            summary["dev_score_after"] = task_metrics(
                pruned, tokenizer, task, dev, max_seq_length, batch_size)["score"]
            if task["task"] == "classify" and summary["dev_score_name"] == "accuracy":
                summary["dev_accuracy_before"] = summary["dev_score_before"]
                summary["dev_accuracy_after"] = summary["dev_score_after"]
        save_compressed_model(pruned, os.path.join(tmp, MODEL_DIRNAME), tokenizer, task,
                              compressed_from=f"prune {os.path.abspath(model_dir)}")
        write_json(os.path.join(tmp, "sparsity.json"), report)
        with open(os.path.join(tmp, "sparsity.txt"), "w") as f:
            f.write(format_sparsity_table(report) + "\n")
        write_json(os.path.join(tmp, "summary.json"), summary)
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
    """Distils a saved task model into a `num_layers` student started from the teacher's layers.

    The teacher directory is any task directory (`electra-tf finetune
    classify|tag|qa` writes one to OUTPUT/model): a classifier with a
    CSV/TSV/JSONL `train` file, a tagger with a CoNLL file, a QA model with a
    SQuAD JSON file. Its task.json gives the defaults (max_seq_length, label
    names, casing, columns, QA windows); the student is the same kind of
    model with the same head (`student_from_teacher`), trained by
    `ElectraDistiller` on the teacher's soft targets and the labels.

    `augment_copies` (classifiers only): also train on that many augmented
    copies of each text, which only the teacher labels
    (`augmented_distillation_dataset`).

    `max_seq_length` None: the teacher directory's task.json's (else 128).
    The student is written as OUTPUT/model (`MODEL_DIRNAME`) with the
    teacher's vocab.txt and task.json (plus `compressed_from` and the
    student's `num_layers`), so every other command reads it as it reads the
    teacher; next to it logs/ (TensorBoard) and summary.json.

    Returns the summary written to summary.json: the history, and with `dev`
    the teacher's and the student's dev score (`dev_score_teacher`,
    `dev_score_student`, named by `dev_score_name`: accuracy for classifiers,
    which also keep `dev_accuracy_teacher`/`_student`; entity F1 for taggers;
    SQuAD F1 for QA).

    Distilling trains, which takes a while; the example shows a check made
    before anything is trained or written:

    >>> import tempfile
    >>> from electra_tf import ElectraEncoder, ElectraTokenClassifier
    >>> from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
    >>> from electra_tf.tasks.task_model_io import save_task_model
    >>> tagger = ElectraTokenClassifier(ElectraEncoder(vocab_size=30522, hidden_size=8,
    ...     num_layers=2, num_heads=2, intermediate_size=16), num_classes=3)
    >>> tagger_dir = tempfile.mkdtemp() + "/model"
    >>> save_task_model(tagger, tagger_dir, "tag", ElectraTokenizer(), 32, ["O", "B-PER", "I-PER"])
    >>> run_distill(tagger_dir, "train.conll", tagger_dir + "_distilled", augment_copies=2)
    Traceback (most recent call last):
    ...
    ValueError: Text augmentation makes unlabelled copies of classification texts; '...' holds
    a 'tag' model, which it cannot augment: received augment_copies=2. Drop augment_copies
    (--augment-copies).
    """
    teacher, tokenizer, task = _load_teacher(teacher_dir, vocab_path, augment_copies)
    kind = task["task"]
    student = student_from_teacher(teacher, num_layers)  # checks num_layers before any reading
    summary = {"teacher": teacher_dir, "task": kind, "train": train, "num_layers": num_layers}
    return _distill_job(teacher, lambda data, summary: student, tokenizer, task, train,
                        output_dir, summary,
                        f"distill {os.path.abspath(teacher_dir)}", {"num_layers": num_layers},
                        temperature=temperature, alpha=alpha, epochs=epochs, max_steps=max_steps,
                        batch_size=batch_size, max_seq_length=max_seq_length,
                        learning_rate=learning_rate, dev=dev, overwrite=overwrite,
                        verbose=verbose, augment_copies=augment_copies)


def run_shrink(
    teacher_dir,
    train,
    output_dir,
    num_heads=None,
    intermediate_size=None,
    importance="taylor",
    importance_batches=32,
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
    """Removes whole heads and feed-forward neurons from a saved task model, then distils it back.

    Structured pruning (`electra_tf.compression.structured_pruning`): every
    layer keeps its `num_heads` most important heads and `intermediate_size`
    most important neurons ("taylor": gradient scores on
    `importance_batches` training batches; "magnitude": weight norms), so
    every matmul gets smaller and the model runs faster, unlike magnitude
    pruning's zeros. The smaller model then learns from the unpruned one's
    soft targets and the labels (`ElectraDistiller`), as `run_distill`
    trains its student. None keeps a dimension as it is.

    Writes OUTPUT/model (a full task directory), logs/ (TensorBoard) and
    summary.json, and returns the summary: the kept heads and neurons of
    each layer, the parameter counts before and after, the history, and with
    `dev` the teacher's and the student's dev score (and, for the student
    straight after pruning, "dev_score_pruned").

    >>> run_shrink("runs/sst2/model", "train.tsv", "runs/sst2_shrunk", importance="random")
    Traceback (most recent call last):
    ...
    ValueError: `importance` (--importance) must be one of ('taylor', 'magnitude'); received
    'random'.
    """
    from electra_tf.compression.structured_pruning import (
        IMPORTANCE_METHODS,
        head_and_neuron_importance,
        kept_indices,
        prune_heads_and_neurons,
    )

    if importance not in IMPORTANCE_METHODS:
        raise ValueError(f"`importance` (--importance) must be one of {IMPORTANCE_METHODS}; "
                         f"received {importance!r}.")
    teacher, tokenizer, task = _load_teacher(teacher_dir, vocab_path, augment_copies)
    encoder = teacher.encoder
    num_heads = encoder.num_heads if num_heads is None else num_heads
    intermediate_size = encoder.intermediate_size if intermediate_size is None \
        else intermediate_size
    # The sizes are checked before any data is read (the weights are the magnitude scores').
    prune_heads_and_neurons(teacher, num_heads, intermediate_size)

    def make_student(train_data, summary):
        scores = head_and_neuron_importance(teacher, train_data, batches=importance_batches,
                                            method=importance)
        student = prune_heads_and_neurons(teacher, num_heads, intermediate_size, scores)
        summary["kept_heads"] = [kept_indices(row, num_heads) for row in scores["heads"]]
        summary["head_importance"] = scores["heads"].tolist()
        summary["parameters_before"] = int(teacher.count_params())
        summary["parameters_after"] = int(student.count_params())
        if dev:
            summary["dev_score_pruned"] = float(task_metrics(
                student, tokenizer, task_at_length, dev, task_at_length["max_seq_length"],
                batch_size)["score"])
        return student

    task_at_length = task_info_at_length(task, teacher, max_seq_length)
    summary = {"teacher": teacher_dir, "task": task["task"], "train": train,
               "num_heads": num_heads, "intermediate_size": intermediate_size,
               "importance": importance, "importance_batches": importance_batches}
    return _distill_job(teacher, make_student, tokenizer, task, train, output_dir, summary,
                        f"shrink {os.path.abspath(teacher_dir)}",
                        {"num_heads": num_heads, "intermediate_size": intermediate_size},
                        temperature=temperature, alpha=alpha, epochs=epochs, max_steps=max_steps,
                        batch_size=batch_size, max_seq_length=max_seq_length,
                        learning_rate=learning_rate, dev=dev, overwrite=overwrite,
                        verbose=verbose, augment_copies=augment_copies)


def _load_teacher(teacher_dir, vocab_path, augment_copies):
    """(teacher, tokenizer, task) of a task directory; augmentation only for classifiers."""
    teacher, tokenizer, task = load_task_model_and_tokenizer(teacher_dir, vocab_path)
    if augment_copies and task["task"] != "classify":
        raise ValueError(
            f"Text augmentation makes unlabelled copies of classification texts; "
            f"{teacher_dir!r} holds a {task['task']!r} model, which it cannot augment: received "
            f"augment_copies={augment_copies}. Drop augment_copies (--augment-copies).")
    return teacher, tokenizer, task


def _distill_job(teacher, make_student, tokenizer, task, train, output_dir, summary,
                 compressed_from, task_update, temperature, alpha, epochs, max_steps, batch_size,
                 max_seq_length, learning_rate, dev, overwrite, verbose, augment_copies):
    """Trains a student on `teacher`'s soft targets; writes OUTPUT/model, logs/, summary.json.

    The part `run_distill` and `run_shrink` share. `make_student(train_data,
    summary)` returns the student (it may read training batches and add to
    the summary); `summary` starts with each job's own keys; `task_update`
    goes into the student's task.json.
    """
    from electra_tf.optimization.layerwise_decay_adamw import create_finetuning_optimizer

    kind = task["task"]
    # The length the student trains and is saved at (QA: with windows that fit it).
    task = task_info_at_length(task, teacher, max_seq_length)
    max_seq_length = task["max_seq_length"]
    # Everything from here on fails before the output appears (an existing one first).
    with atomic_directory(output_dir, overwrite=overwrite) as tmp:
        if kind == "classify":  # as before: task.json's columns and label names, augmentation
            epochs, steps_per_epoch, train_data = _training_data(
                train, teacher, tokenizer, max_seq_length, batch_size, epochs, max_steps,
                augment_copies, task)
        else:
            epochs, steps_per_epoch, train_data = _steps(
                task_dataset(task, teacher, tokenizer, train, max_seq_length, batch_size,
                             shuffle=True), epochs, max_steps)
        total_steps = epochs * steps_per_epoch
        summary.update({"temperature": temperature, "alpha": alpha, "steps": total_steps,
                        "augment_copies": augment_copies})
        if dev:  # the teacher's score first: a bad dev file fails before training
            metrics = task_metrics(teacher, tokenizer, task, dev, max_seq_length, batch_size)
            summary["dev_score_name"] = metrics["score_name"]
            summary["dev_score_teacher"] = float(metrics["score"])
        student = make_student(train_data, summary)
        distiller = ElectraDistiller(teacher, student, temperature=temperature, alpha=alpha)
        distiller.compile(optimizer=create_finetuning_optimizer(
            learning_rate, total_steps, num_layers=student.encoder.num_layers))
        start = time.perf_counter()
        history = distiller.fit(
            train_data, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=verbose,
            callbacks=[keras.callbacks.TensorBoard(
                os.path.join(tmp, "logs"), update_freq=max(1, total_steps // 50))],
        )
        summary["train_seconds"] = round(time.perf_counter() - start, 1)
        summary["history"] = {k: [float(v) for v in vs] for k, vs in history.history.items()}
        if dev:
            metrics = task_metrics(student, tokenizer, task, dev, max_seq_length, batch_size)
            summary["dev_score_student"] = float(metrics["score"])
            if kind == "classify":  # the keys earlier versions wrote
                summary["dev_accuracy_teacher"] = summary["dev_score_teacher"]
                summary["dev_accuracy_student"] = summary["dev_score_student"]
        save_compressed_model(student, os.path.join(tmp, MODEL_DIRNAME), tokenizer,
                              {**task, **task_update}, compressed_from=compressed_from)
        write_json(os.path.join(tmp, "summary.json"), summary)
    return summary


@renamed_arguments(seq_length="max_seq_length")
def run_quantize(
    classifier_dir,
    output_path,
    quantize="int8",
    calibration_data=None,
    max_seq_length=None,
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
    `max_seq_length` None: the directory's task.json's max_seq_length (else 128).
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
        classifier_dir, output_path, "tflite", quantize=quantize, max_seq_length=max_seq_length,
        vocab_path=vocab_path, calibration_data=calibration_data,
        num_calibration_examples=num_calibration_examples,
        float_dense_layers=float_dense_layers, overwrite=overwrite)
    return {"path": output_path, "bytes": os.path.getsize(output_path), "quantize": quantize}


def run_qat(
    model_dir,
    train,
    output_dir,
    epochs=1,
    max_steps=None,
    batch_size=32,
    max_seq_length=None,
    learning_rate=2e-5,
    dev=None,
    teacher_dir=None,
    distill_alpha=None,
    temperature=2.0,
    calibration_batches=8,
    preserve_sparsity=None,
    vocab_path=None,
    overwrite=False,
    verbose=1,
):
    """Quantization-aware training of a saved task model, then its full-int8 TFLite file.

    `model_dir` is any task directory (classifier, tagger or QA; pruned and
    distilled ones too), `train` and `dev` files of its task, read as
    `run_prune` reads them. The copy fine-tunes with int8 fake quantization
    on every dense layer, embedding table and attention matmul (`electra_tf.compression.quantization`); the int8 file
    is converted from it with the trained ranges, so it computes what the
    QAT model computed, with no dense layer left in float.

    `distill_alpha`: learn from a teacher's soft predictions too, with this
    weight; the teacher is `teacher_dir`, or the input model in float.
    `preserve_sparsity` None: keep the kernels' zeros when the input is
    pruned (`PRUNED_SPARSITY`). `max_steps` replaces `epochs`.

    Writes OUTPUT/model.tflite (fixed batch 1, the task directory's
    max_seq_length), OUTPUT/model (the trained float weights as a task
    directory), logs/ (TensorBoard) and summary.json, and returns the summary:
    the file's size and its ratio to the fp32 file's, the largest output
    difference between the QAT model and the file on a few examples
    ("tflite_max_difference"), and with `dev` the task's dev score before
    ("dev_score_before", float) and after ("dev_score_int8", the QAT model,
    which is the int8 file's computation).

    >>> run_qat("runs/sst2/model", "train.tsv", "runs/sst2_qat", teacher_dir="runs/big/model")
    Traceback (most recent call last):
    ...
    ValueError: teacher_dir='runs/big/model' (--teacher) is only used with distill_alpha
    (--distill-alpha), the weight of its soft predictions; pass both, or neither.
    """
    from electra_tf.compression.quantization import (
        kernel_sparsity,
        quantization_aware_training,
        quantized_tflite_flatbuffer,
        tflite_agreement,
    )
    from electra_tf.export.tflite_export import tflite_flatbuffer

    if teacher_dir is not None and distill_alpha is None:
        raise ValueError(
            f"teacher_dir={teacher_dir!r} (--teacher) is only used with distill_alpha "
            "(--distill-alpha), the weight of its soft predictions; pass both, or neither.")
    model, tokenizer, task = load_task_model_and_tokenizer(model_dir, vocab_path)
    teacher = None
    if distill_alpha is not None:
        teacher = model
        if teacher_dir is not None:
            teacher, _, teacher_task = load_task_model_and_tokenizer(teacher_dir, vocab_path)
            if teacher_task["task"] != task["task"]:
                raise ValueError(
                    f"The teacher {teacher_dir!r} is a {teacher_task['task']!r} model and "
                    f"{model_dir!r} a {task['task']!r} one; distillation needs the same task.")
    task = task_info_at_length(task, model, max_seq_length)
    max_seq_length = task["max_seq_length"]
    # Everything from here on fails before the output appears (an existing one first).
    with atomic_directory(output_dir, overwrite=overwrite) as tmp:
        train_data = task_dataset(task, model, tokenizer, train, max_seq_length, batch_size,
                                  shuffle=True)
        epochs, steps_per_epoch, train_data = _steps(train_data, epochs, max_steps)
        summary = {"model": model_dir, "task": task["task"], "train": train,
                   "steps": epochs * steps_per_epoch, "learning_rate": learning_rate,
                   "distill_alpha": distill_alpha,
                   "teacher": teacher_dir or (model_dir if teacher is not None else None),
                   "kernel_sparsity_before": kernel_sparsity(model)}
        check_data = task_dataset(task, model, tokenizer, dev or train, max_seq_length, 16)
        check_features = next(iter(check_data))[0]
        if dev:
            before = task_metrics(model, tokenizer, task, dev, max_seq_length, batch_size)
            summary["dev_score_name"] = before["score_name"]
            summary["dev_score_before"] = float(before["score"])
        fp32_bytes = len(tflite_flatbuffer(model, max_seq_length=max_seq_length))
        start = time.perf_counter()
        with quantization_aware_training(
                model, train_data, epochs=epochs, steps_per_epoch=steps_per_epoch,
                learning_rate=learning_rate, calibration_batches=calibration_batches,
                preserve_sparsity=preserve_sparsity,
                teacher=teacher, temperature=temperature, alpha=distill_alpha or 0.0,
                log_dir=os.path.join(tmp, "logs"), verbose=verbose) as (quantized, history):
            summary["train_seconds"] = round(time.perf_counter() - start, 1)
            summary["history"] = {k: [float(v) for v in vs] for k, vs in history.history.items()}
            if dev:
                summary["dev_score_int8"] = float(task_metrics(
                    quantized, tokenizer, task, dev, max_seq_length, batch_size)["score"])
            flatbuffer = quantized_tflite_flatbuffer(quantized, max_seq_length)
            summary["tflite_max_difference"] = tflite_agreement(
                quantized, flatbuffer, check_features, max_seq_length)
        summary["kernel_sparsity_after"] = kernel_sparsity(quantized)
        with open(os.path.join(tmp, "model.tflite"), "wb") as f:
            f.write(flatbuffer)
        summary["tflite_bytes"] = len(flatbuffer)
        summary["fp32_tflite_bytes"] = fp32_bytes
        summary["size_ratio"] = fp32_bytes / len(flatbuffer)
        save_compressed_model(quantized, os.path.join(tmp, MODEL_DIRNAME), tokenizer, task,
                              compressed_from=f"qat {os.path.abspath(model_dir)}")
        write_json(os.path.join(tmp, "summary.json"), summary)
    return summary
