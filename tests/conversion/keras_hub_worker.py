"""The Keras 3 side of tests/conversion/test_keras_hub.py, run in its own process.

keras-hub needs Keras 3; the test process runs tf-keras (TF_USE_LEGACY_KERAS=1),
so the test starts this script with a clean environment:

    KERAS_BACKEND=tensorflow python keras_hub_worker.py JOB.json

JOB.json: {"texts": [...], "tokenizer_texts": [...], "vocab": path, "sequence_length": int,
           "make": [{"dir": ..., "sizes": {...}, "seed": int}, ...],   presets keras-hub builds
           "load": [dir, ...],                                         presets electra_tf wrote
           "output": dir}
For every preset it writes OUTPUT/<basename>.npz: the packed inputs of `texts`
(pairs of consecutive texts), the backbone's sequence_output as keras-hub
computes it (tanh GELU) and with exact GELU swapped in, and the token ids of
each of `tokenizer_texts`; for "make" also every weight by its Keras path. For "load" presets it also
fine-tunes `TextClassifier.from_preset(dir, num_classes=2)` one step. A summary
goes to OUTPUT/summary.json.
"""

import json
import os
import sys
import time

import keras
import keras_hub
import numpy as np
import tensorflow as tf


def randomize(backbone, seed):
    """Non-trivial values everywhere (keras-hub starts LayerNorm at 1/0 and biases at 0)."""
    rng = np.random.default_rng(seed)
    backbone.set_weights([
        (rng.normal(size=w.shape) * 0.2 + (1.0 if "gamma" in w.path else 0.0)).astype("float32")
        for w in backbone.weights
    ])


def pack(tokenizer, texts, sequence_length):
    packer = keras_hub.layers.MultiSegmentPacker(
        sequence_length=sequence_length, start_value=tokenizer.cls_token_id,
        end_value=tokenizer.sep_token_id, pad_value=tokenizer.pad_token_id)
    # keras-hub's tokenizer returns python lists for a python list, which the packer misreads.
    first, second = tokenizer(tf.constant(texts[0::2])), tokenizer(tf.constant(texts[1::2]))
    token_ids, segment_ids = packer((first, second))
    token_ids = np.asarray(token_ids, "int32")
    return {"token_ids": token_ids, "segment_ids": np.asarray(segment_ids, "int32"),
            "padding_mask": (token_ids != tokenizer.pad_token_id).astype("int32")}


def exact_gelu(x):
    return keras.activations.gelu(x, approximate=False)


def measure(preset, texts, tokenizer_texts, sequence_length):
    """Packed inputs, outputs with keras-hub's GELU and with the exact one, token ids."""
    backbone = keras_hub.models.ElectraBackbone.from_preset(preset)
    tokenizer = keras_hub.models.ElectraTokenizer.from_preset(preset)
    inputs = pack(tokenizer, texts, sequence_length)
    result = dict(inputs)
    result["sequence_output"] = np.asarray(backbone(inputs)["sequence_output"])
    for layer in backbone.transformer_layers:
        layer._feedforward_intermediate_dense.activation = exact_gelu
    result["sequence_output_exact_gelu"] = np.asarray(backbone(inputs)["sequence_output"])
    ids = [list(np.asarray(row)) for row in tokenizer(tf.constant(tokenizer_texts))]
    result["text_ids"] = np.asarray([i for row in ids for i in row], "int32")
    result["text_lengths"] = np.asarray([len(row) for row in ids], "int32")
    return backbone, result


def text_classifier(preset, texts, fine_tune):
    """TextClassifier.from_preset with the preset's electra_text_classifier.py; one step if asked.

    (A step traces the training function: ~15 s on 2 busy CPU cores, so one preset gets it.)
    """
    sys.path.insert(0, preset)
    import electra_text_classifier  # noqa: F401  (registers ElectraTextClassifier)

    sys.path.remove(preset)
    classifier = keras_hub.models.TextClassifier.from_preset(preset, num_classes=2)
    result = {
        "class": type(classifier).__name__,
        "preprocessor": type(classifier.preprocessor).__name__,
        "sequence_length": classifier.preprocessor.sequence_length,
    }
    if fine_tune:
        before = classifier.get_layer("logits").get_weights()[0].copy()
        history = classifier.fit(x=texts[:4], y=np.array([0, 1, 0, 1]), batch_size=4, epochs=1,
                                 verbose=0)
        after = classifier.get_layer("logits").get_weights()[0]
        result.update(loss=float(history.history["loss"][0]),
                      logits_changed=float(np.max(np.abs(after - before))))
    return result


def main(job_path):
    with open(job_path) as f:
        job = json.load(f)
    texts, length, output = job["texts"], job["sequence_length"], job["output"]
    summary = {"keras": keras.version(), "keras_hub": keras_hub.__version__, "presets": {},
               "seconds": {}}
    start = time.time()
    for spec in job["make"]:
        backbone = keras_hub.models.ElectraBackbone(**spec["sizes"])
        randomize(backbone, spec["seed"])
        backbone.save_to_preset(spec["dir"])
        tokenizer = keras_hub.models.ElectraTokenizer(vocabulary=job["vocab"], lowercase=True)
        tokenizer.save_to_preset(spec["dir"])
        _, result = measure(spec["dir"], texts, job["tokenizer_texts"], length)
        result.update({f"weight:{w.path}": np.asarray(w) for w in backbone.weights})
        np.savez(os.path.join(output, os.path.basename(spec["dir"]) + ".npz"), **result)
        summary["seconds"]["make " + spec["dir"]] = time.time() - start
    for number, preset in enumerate(job["load"]):
        _, result = measure(preset, texts, job["tokenizer_texts"], length)
        np.savez(os.path.join(output, os.path.basename(preset) + ".npz"), **result)
        summary["seconds"]["measure " + preset] = time.time() - start
        summary["presets"][os.path.basename(preset)] = text_classifier(preset, texts,
                                                                       fine_tune=number == 0)
        summary["seconds"]["fine-tune " + preset] = time.time() - start
    with open(os.path.join(output, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main(sys.argv[1])
