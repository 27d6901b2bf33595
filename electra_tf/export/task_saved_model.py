"""An end-to-end task SavedModel for TensorFlow Serving: raw strings in, predictions out.

Tokenization, packing, the model and the post-processing are one graph of
TensorFlow and tensorflow-text ops, with two signatures:

- `serving_default`: classification, inputs `text` (and `text_b` for
  sentence pairs), tf.string (batch,); outputs `probabilities` float32
  (batch, num_classes) (softmax; an independent sigmoid for "multi_label"),
  `label_id` int32 (batch,) (argmax; not for "multi_label") and `label`
  tf.string (batch,) (the label name, or str(label_id); not for
  "multi_label"); for "regression" only `predictions` float32 (batch, num_classes).
  Question answering: inputs `question` and `context`; outputs `answer`
  tf.string, `start_char` and `end_char` int32 (Unicode code points, end
  exclusive: `context[start_char:end_char] == answer` in Python) and `score`
  float32, each (batch,). One window per example: the context is truncated to
  fit `max_seq_length`; answers are whole words (see `answer_spans`), the
  best span even when the model would rather say "no answer" (SQuAD 2.0).
  Token classification (tagging): input `text`; outputs, padded to the
  batch's most words W and entities E: `words`, `tags` tf.string (batch, W)
  ("" padded; words as `split_words` splits them, a word's tag is the
  arg-max at its first word piece, "O" for words truncated away),
  `tag_probability` float32 (batch, W), `word_start_char`, `word_end_char`
  int32 (batch, W) (code points, end exclusive, -1 padded); entities grouped
  from the tags as `electra-tf predict tag` groups them (seqeval's conlleval
  chunking: BIO/IOB2, IOB1 and IOBES alike): `entity_text`, `entity_label`
  tf.string and `entity_start_char`, `entity_end_char` int32 (batch, E);
  `num_words` and `num_entities` int32 (batch,) count the real columns
  (see `electra_tf.export.word_tags`).
- `count_tokens`: the same inputs -> `num_tokens` int32 (batch,), the
  packed length with special tokens before truncation, so that a server can
  reject text that is too long when the export does not truncate.

With `truncate=False` a too-long input makes `serving_default` fail with
InvalidArgument (HTTP 400 in TensorFlow Serving) naming both lengths.

`assets.extra/electra_tf_export.json` (which TensorFlow Serving ignores)
describes the export: task, inputs, outputs, max_seq_length, truncate,
label_names, problem_type, batch_parts, width_parts, electra_tf_version, and for taggers padded_outputs
({count output: [the outputs it counts the real columns of]}).

TensorFlow Serving: besides TensorFlow's own ops the graph uses tensorflow-text
ops (RegexSplitWithOffsets, NormalizeUTF8, FastWordpieceTokenizeWithOffsets...).
The `tensorflow/serving` images link tensorflow-text's op library
(`@org_tensorflow_text//tensorflow_text:ops_lib` in model_servers/BUILD), so
they load it as is, provided the image is not older than the tensorflow-text
release that wrote it (an older one fails with "Op type not registered"); a
custom-built model server must link that library too. In Python,
`import tensorflow_text` before `tf.saved_model.load`.
"""

import json
import os

import tensorflow as tf

from electra_tf.export.answer_spans import extract_answers, tokenize_with_char_offsets
from electra_tf.preprocessing.electra_tokenizer import ElectraTokenizer
from electra_tf.tasks.electra_classifier import ElectraClassifier
from electra_tf.export.word_tags import tag_words, tokenize_words_for_tagging
from electra_tf.tasks.electra_question_answering import ElectraQuestionAnswering
from electra_tf.tasks.electra_token_classifier import ElectraTokenClassifier
from electra_tf.utils.atomic_directory import atomic_directory
from electra_tf.layers import transformer_layer
from electra_tf.layers.transformer_layer import check_width_parts
from electra_tf.utils.tensorflow_threads import check_batch_parts, in_batch_parts
from electra_tf.utils.checks import is_integer

METADATA_PATH = os.path.join("assets.extra", "electra_tf_export.json")


def export_task_saved_model(
    model,
    path,
    tokenizer=None,
    max_seq_length=128,
    label_names=None,
    truncate=True,
    overwrite=False,
    text_pair=False,
    batch_parts=1,
    width_parts=1,
):
    """Exports `model` with its tokenizer as one SavedModel (see the module docstring).

    Args:
        model: an `ElectraClassifier`, `ElectraQuestionAnswering` or
            `ElectraTokenClassifier`.
        path: output directory, written atomically.
        tokenizer: the `ElectraTokenizer` the model was trained with; None
            means the packaged uncased BERT vocabulary.
        max_seq_length: tokens per packed input, special tokens included;
            at most the encoder's `max_sequence_length`.
        label_names: one name per class for the `label` output; None gives
            the class id as a string. Taggers need them: the tag names in
            id order ("O", "B-PER", ...).
        truncate: cut inputs longer than `max_seq_length` (longest first for
            pairs); False makes them an error.
        overwrite: replace an existing `path`.
        text_pair: classify sentence pairs: inputs `text` and `text_b`.
        batch_parts: classifiers and question answering: split a batch of
            at least this many examples into this many parts that run at the
            same time, each on one core (a smaller batch runs whole). For a
            server whose TensorFlow runs each op on one thread
            (`electra-tf serve --intra-op-threads 1 --inter-op-threads N`):
            on a small CPU machine that serves batches faster than one batch
            with every op split over the cores, whose threads wake and wait
            at each of the graph's some 500 ops (see README, "Serving
            threads"). Same outputs as 1, the default: one part.
        width_parts: run each transformer block in this many groups of
            heads and of feed-forward neurons at the same time
            (`electra_tf.width_parts`), for a server with one thread per op
            and this many inter-op threads that answers one text at a time.
            The groups' weights are stored as copies next to the variables:
            the export grows by the blocks' weights (ELECTRA-Small: ~38 MB).
            Same outputs up to float rounding; 1, the default: each block
            as one.

    Returns:
        The metadata written to `assets.extra/electra_tf_export.json`.

    >>> import tempfile, tensorflow_text, electra_tf
    >>> encoder = electra_tf.ElectraEncoder(vocab_size=30522, hidden_size=8, num_layers=1,
    ...                                     num_heads=2, intermediate_size=16, embedding_size=4)
    >>> classifier = electra_tf.ElectraClassifier(encoder, num_classes=2)
    >>> path = tempfile.mkdtemp() + "/sentiment"
    >>> _ = export_task_saved_model(classifier, path, max_seq_length=16,
    ...                             label_names=["negative", "positive"])
    >>> serve = tf.saved_model.load(path).signatures["serving_default"]
    >>> outputs = serve(text=tf.constant(["A fine film.", "Dull."]))
    >>> sorted(outputs), outputs["probabilities"].shape
    (['label', 'label_id', 'probabilities'], TensorShape([2, 2]))
    """
    tokenizer = ElectraTokenizer() if tokenizer is None else tokenizer
    _check_export_arguments(model, tokenizer, max_seq_length, truncate, text_pair)
    _check_batch_parts(model, batch_parts)
    check_width_parts(width_parts)
    if isinstance(model, ElectraClassifier):
        task, input_names = "classification", ["text", "text_b"] if text_pair else ["text"]
        head, outputs, label_names = _classification_head(model, label_names)

        def tokenize(strings):
            return [tokenizer.tokenize(text) for text in strings], None

        def predict(inputs, strings, offsets):
            del strings, offsets
            return head(trim_to_longest(inputs))
    elif isinstance(model, ElectraTokenClassifier):
        if text_pair:
            raise ValueError("`text_pair` is for classifiers; a tagger reads one text. "
                             "Received text_pair=True.")
        task, input_names = "token_classification", ["text"]
        label_names = _tag_names(model, label_names)
        outputs = ["words", "tags", "tag_probability", "word_start_char", "word_end_char",
                   "num_words", "entity_text", "entity_label", "entity_start_char",
                   "entity_end_char", "num_entities"]
        padded_outputs = {"num_words": outputs[:5], "num_entities": outputs[6:10]}

        def tokenize(strings):
            ids, words = tokenize_words_for_tagging(tokenizer, strings[0])
            return [ids], words

        def predict(inputs, strings, words):
            return tag_words(model, trim_to_longest(inputs), strings[0], words, label_names)
    else:
        if label_names is not None or text_pair:
            raise ValueError(
                "`label_names` and `text_pair` are for classifiers; a question answering "
                f"model takes neither. Received label_names={label_names!r}, "
                f"text_pair={text_pair!r}."
            )
        task, input_names = "question_answering", ["question", "context"]
        outputs = ["answer", "start_char", "end_char", "score"]

        def tokenize(strings):
            question, context = strings
            ids, starts, ends = tokenize_with_char_offsets(tokenizer, context)
            return [tokenizer.tokenize(question), ids], (starts, ends)

        def predict(inputs, strings, offsets):
            return extract_answers(model, trim_to_longest(inputs), strings[1], *offsets,
                                   sep_token_id=tokenizer.sep_token_id)

    def encode(strings, check_length):
        """Strings, one (batch,) tensor per input -> (packed inputs, num_tokens, offsets)."""
        segments, offsets = tokenize(strings)  # (batch, (pieces)) each
        checks = [
            tf.debugging.assert_equal(
                tf.shape(strings[0]), tf.shape(text),
                message=f"inputs {input_names} must hold the same number of texts",
            )
            for text in strings[1:]
        ]
        with tf.control_dependencies(checks):
            num_tokens = tf.add_n([segment.row_lengths() for segment in segments])
            num_tokens = tf.cast(num_tokens, tf.int32) + len(segments) + 1  # [CLS], [SEP]s
        if check_length and not truncate:
            # Not in count_tokens: a graph runs every assertion it holds, and that
            # signature must answer for too-long text.
            checks.append(tf.debugging.assert_less_equal(
                num_tokens, max_seq_length,
                message=f"text longer than max_seq_length={max_seq_length} tokens (this "
                "model was exported with truncate=False); num_tokens and the limit are",
            ))
        with tf.control_dependencies(checks):
            inputs = tokenizer.pack(segments, max_seq_length)
        return inputs, num_tokens, offsets

    def serve_whole(*strings):
        inputs, _, offsets = encode(strings, check_length=True)
        return predict(inputs, strings, offsets)

    def serve(*strings):
        if batch_parts == 1:
            return serve_whole(*strings)
        return tf.cond(tf.shape(strings[0])[0] >= batch_parts,
                       lambda: in_batch_parts(serve_whole, batch_parts)(*strings),
                       lambda: serve_whole(*strings))

    def count_tokens(*strings):
        _, num_tokens, _ = encode(strings, check_length=False)
        return {"num_tokens": num_tokens}

    specs = [tf.TensorSpec([None], tf.string, name=name) for name in input_names]
    module = tf.Module()
    # Variables only: tracking the Keras model would add Keras' own SavedModel
    # metadata and traces, which TensorFlow Serving does not need.
    module.model_variables = list(model.variables)
    # No autograph: no Python control flow on tensors, and converting every Keras
    # call made the export several times slower.
    module.serve = tf.function(serve, input_signature=specs, autograph=False)
    module.count_tokens = tf.function(count_tokens, input_signature=specs, autograph=False)
    metadata = {
        "task": task,
        "inputs": input_names,
        "outputs": outputs,
        "max_seq_length": max_seq_length,
        "truncate": truncate,
        "label_names": label_names,
        "problem_type": getattr(model, "problem_type", None),
        "batch_parts": batch_parts,
        "width_parts": width_parts,
        "electra_tf_version": _version(),
    }
    if task == "token_classification":
        metadata["padded_outputs"] = padded_outputs
    with atomic_directory(path, overwrite=overwrite) as tmp:
        with transformer_layer.width_parts(width_parts):  # the model's blocks traced in groups
            serving = module.serve.get_concrete_function()
        tf.saved_model.save(module, tmp, signatures={
            "serving_default": serving,
            "count_tokens": module.count_tokens.get_concrete_function(),
        })
        os.makedirs(os.path.join(tmp, "assets.extra"), exist_ok=True)
        with open(os.path.join(tmp, METADATA_PATH), "w") as f:
            json.dump(metadata, f, indent=2)
    return metadata


def trim_to_longest(inputs):
    """Cuts packed inputs (batch, max_seq_length) to the batch's longest text.

    Padding changes no output (the attention mask zeroes it out exactly) but
    costs as much compute as text: a served review of 26 word pieces padded
    to 128 would run a 5x larger model. The [CLS] classifier only reads
    position 0, and a QA model's answers lie within the text, so trimming is
    exact.

    >>> inputs = {"input_word_ids": tf.constant([[101, 7, 102, 0, 0], [101, 102, 0, 0, 0]]),
    ...           "input_mask": tf.constant([[1, 1, 1, 0, 0], [1, 1, 0, 0, 0]]),
    ...           "input_type_ids": tf.zeros((2, 5), tf.int32)}
    >>> trim_to_longest(inputs)["input_word_ids"].numpy().tolist()
    [[101, 7, 102], [101, 102, 0]]
    """
    length = tf.reduce_max(tf.reduce_sum(inputs["input_mask"], axis=1))  # longest real length
    return {key: value[:, :length] for key, value in inputs.items()}  # each (batch, length)


def _check_batch_parts(model, batch_parts):
    check_batch_parts(batch_parts)
    if batch_parts > 1 and isinstance(model, ElectraTokenClassifier):
        raise ValueError(
            "`batch_parts` > 1 is for classifiers and question answering models: a tagger's "
            "outputs are padded to each batch's most words, which parts would not share. "
            f"Received batch_parts={batch_parts} for an ElectraTokenClassifier; pass 1."
        )


def _classification_head(model, label_names):
    """(predict(inputs) -> output dict, output names, label names) for an ElectraClassifier."""
    if model.problem_type == "regression":
        if label_names is not None:
            raise ValueError(
                "`label_names` name classes; a regression model has none. Received "
                f"label_names={label_names!r} for problem_type='regression'; pass None."
            )

        def predict_regression(inputs):
            return {"predictions": model(inputs, training=False, remove_padding=True)}  # (B, C)

        return predict_regression, ["predictions"], None

    if label_names is not None:
        label_names = list(label_names)
        if len(label_names) != model.num_classes or not all(
            isinstance(name, str) and name for name in label_names
        ):
            raise ValueError(
                f"`label_names` must be {model.num_classes} non-empty strings, one per "
                f"class; received {label_names!r}."
            )

    def predict(inputs):
        # Dense layers on real tokens only: a served batch of reviews of uneven
        # lengths costs its real tokens, not batch × longest (same logits).
        logits = model(inputs, training=False, remove_padding=True)  # (batch, num_classes)
        if model.problem_type == "multi_label":
            return {"probabilities": tf.sigmoid(logits)}
        label_id = tf.argmax(logits, axis=-1, output_type=tf.int32)  # (batch,)
        if label_names is None:
            label = tf.strings.as_string(label_id)
        else:
            label = tf.gather(tf.constant(label_names), label_id)
        return {"probabilities": tf.nn.softmax(logits), "label_id": label_id, "label": label}

    if model.problem_type == "multi_label":
        return predict, ["probabilities"], label_names
    return predict, ["probabilities", "label_id", "label"], label_names


def _tag_names(model, label_names):
    """The tagger's tag names, checked: one non-empty string per label."""
    names = None if label_names is None else list(label_names)
    if names is None or len(names) != model.num_classes or not all(
            isinstance(name, str) and name for name in names):
        raise ValueError(
            f"A tagger needs `label_names`, {model.num_classes} non-empty strings in id order "
            "(e.g. 'O', 'B-PER', 'I-PER'; a tagger directory's task.json lists them), to name "
            f"tags and group entities; received label_names={label_names!r}."
        )
    return names


def _check_export_arguments(model, tokenizer, max_seq_length, truncate, text_pair):
    if not isinstance(model, (ElectraClassifier, ElectraQuestionAnswering,
                              ElectraTokenClassifier)):
        raise ValueError(
            "export_task_saved_model exports an ElectraClassifier, an ElectraQuestionAnswering "
            f"or an ElectraTokenClassifier; received {type(model).__name__}. For an encoder "
            "use export_encoder_saved_model or export_hub_saved_models."
        )
    if not model.built:
        raise ValueError(f"{type(model).__name__} was never built; it has no weights to export.")
    if not isinstance(tokenizer, ElectraTokenizer):
        raise ValueError(
            f"`tokenizer` must be an ElectraTokenizer or None; received {type(tokenizer).__name__}."
        )
    encoder = model.encoder
    if tokenizer.vocab_size != encoder.vocab_size:
        raise ValueError(
            f"The tokenizer has {tokenizer.vocab_size} tokens but the model's encoder "
            f"{encoder.vocab_size}: pass the ElectraTokenizer of the vocabulary the model "
            "was trained with."
        )
    minimum = 3 if text_pair or isinstance(model, ElectraQuestionAnswering) else 2
    if (not is_integer(max_seq_length)
            or not minimum <= max_seq_length <= encoder.max_sequence_length):
        raise ValueError(
            f"`max_seq_length` must be an integer in [{minimum}, "
            f"{encoder.max_sequence_length}] (the encoder's max_sequence_length); received "
            f"max_seq_length={max_seq_length!r}."
        )
    for name, value in (("truncate", truncate), ("text_pair", text_pair)):
        if not isinstance(value, bool):
            raise ValueError(f"`{name}` must be True or False; received {name}={value!r}.")


def _version():
    from electra_tf import __version__

    return __version__
