"""Reloads the exported SavedModels in a fresh process WITHOUT electra_tf, as a user would.

Usage: python _reload_exports.py REQUEST.json RESULT.json. The request names the
exports and the texts; the result holds their outputs, a hub.KerasLayer
fine-tuning step, and whether electra_tf got imported.
"""

import json
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # hub.KerasLayer needs tf-keras

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_hub as hub  # noqa: E402
import tensorflow_text  # noqa: E402,F401  (registers the tokenizer ops)
import tf_keras as keras  # noqa: E402


def to_list(value):
    """A tensor as JSON-ready lists; strings decoded."""
    value = value.numpy().tolist()
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [item.decode("utf-8") for item in value]
    return value


def main(request_path, result_path):
    with open(request_path) as f:
        request = json.load(f)
    texts, texts_b = tf.constant(request["texts"]), tf.constant(request["texts_b"])
    result = {}

    preprocessor = tf.saved_model.load(request["preprocessor"])
    encoder = tf.saved_model.load(request["encoder"])
    single = preprocessor(texts)
    pieces = [preprocessor.tokenize(texts), preprocessor.tokenize(texts_b)]
    result["tokenize_rank"] = pieces[0].shape.rank
    result["single"] = {key: to_list(value) for key, value in single.items()}
    result["pairs"] = {key: to_list(value) for key, value in
                       preprocessor.bert_pack_inputs(pieces, seq_length=16).items()}
    result["signature_single"] = {
        key: to_list(value)
        for key, value in preprocessor.signatures["serving_default"](strings=texts).items()}
    outputs = encoder(single, training=False)
    result["pooled_output"] = to_list(outputs["pooled_output"])
    result["sequence_output"] = to_list(outputs["sequence_output"])
    result["num_encoder_outputs"] = len(outputs["encoder_outputs"])
    result["encoder_signature_outputs"] = sorted(encoder.signatures["serving_default"](
        **single).keys())

    # Fine-tune one step through hub.KerasLayer, TF-Hub's way.
    layer = hub.KerasLayer(request["encoder"], trainable=True)
    inputs = {key: keras.Input((None,), dtype=tf.int32, name=key) for key in single}
    logits = keras.layers.Dense(2)(layer(inputs)["pooled_output"])
    model = keras.Model(inputs, logits)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [variable.numpy().copy() for variable in layer.trainable_variables]
    loss = model.train_on_batch(single, np.array(request["labels"]))
    result["finetune"] = {
        "loss": float(loss),
        "num_trainable": len(layer.trainable_variables),
        "num_changed": sum(not np.array_equal(old, variable.numpy())
                           for old, variable in zip(before, layer.trainable_variables)),
    }

    task = tf.saved_model.load(request["task"])
    serve = task.signatures["serving_default"]
    result["task"] = {key: to_list(value) for key, value in serve(text=texts).items()}
    result["task_inputs"] = sorted(serve.structured_input_signature[1])
    result["task_count"] = to_list(task.signatures["count_tokens"](text=texts)["num_tokens"])

    # As TensorFlow Serving runs it: a TF1 session over the SignatureDef's tensor names.
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], request["task"])
        signature = meta_graph.signature_def["serving_default"]
        fetches = {key: info.name for key, info in signature.outputs.items()}
        outputs = session.run(fetches, {signature.inputs["text"].name: request["texts"]})
        result["session_probabilities"] = outputs["probabilities"].tolist()
        result["session_method"] = signature.method_name

    pair = tf.saved_model.load(request["pair_task"]).signatures
    result["pair_task"] = {key: to_list(value)
                           for key, value in pair["serving_default"](text=texts,
                                                                     text_b=texts_b).items()}
    result["pair_count"] = to_list(pair["count_tokens"](text=texts, text_b=texts_b)["num_tokens"])
    result["long_count"] = to_list(pair["count_tokens"](text=tf.constant([request["long_text"]]),
                                                        text_b=texts_b[:1])["num_tokens"])
    try:
        pair["serving_default"](text=tf.constant([request["long_text"]]), text_b=texts_b[:1])
        result["too_long_error"] = None
    except tf.errors.InvalidArgumentError as error:
        result["too_long_error"] = error.message

    qa = tf.saved_model.load(request["qa_task"]).signatures["serving_default"]
    answers = qa(question=tf.constant(request["questions"]), context=texts)
    result["qa"] = {key: to_list(value) for key, value in answers.items()}

    result["electra_tf_imported"] = any(name.split(".")[0] == "electra_tf" for name in sys.modules)
    with open(result_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
