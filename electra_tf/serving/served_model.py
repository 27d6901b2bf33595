"""ServedModel: one loaded end-to-end SavedModel version, as the REST service sees it."""

import json
import os
import re

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  registers the tokenizer ops that text exports use
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2

EXPORT_INFO_PATH = os.path.join("assets.extra", "electra_tf_export.json")
# TF Serving names the versions of a model by their numeric subdirectories.
VERSION_DIR = re.compile(r"^\d+$")


def find_model_versions(model_dir):
    """The versions under a model directory: {version string: SavedModel path}.

    `model_dir` is either a SavedModel (served as version "1") or a TF Serving
    base directory whose numeric subdirectories are SavedModels.

    >>> import tempfile
    >>> base = tempfile.mkdtemp()
    >>> for version in ("1", "12", "notes"):
    ...     os.makedirs(os.path.join(base, version))
    ...     open(os.path.join(base, version, "saved_model.pb"), "wb").close()
    >>> sorted(find_model_versions(base))
    ['1', '12']
    """
    if not os.path.isdir(model_dir):
        raise ValueError(
            f"Model directory {model_dir!r} does not exist; expected a SavedModel directory or "
            "a TF Serving base directory with numeric version subdirectories."
        )
    if os.path.isfile(os.path.join(model_dir, "saved_model.pb")):
        return {"1": model_dir}
    versions = {
        name: os.path.join(model_dir, name) for name in os.listdir(model_dir)
        if VERSION_DIR.match(name)
        and os.path.isfile(os.path.join(model_dir, name, "saved_model.pb"))
    }
    if not versions:
        raise ValueError(
            f"{model_dir!r} holds no saved_model.pb and no numeric version subdirectory with one "
            f"(found {sorted(os.listdir(model_dir))[:10]}); pass the directory an `electra-tf "
            "export` wrote, or its parent laid out as MODEL_DIR/1/saved_model.pb."
        )
    return {str(int(name)): path for name, path in versions.items()}


def read_signature_defs(saved_model_dir):
    """The SavedModel's SignatureDef protos, {name: SignatureDef}, from `saved_model.pb`.

    TF-internal entries such as `__saved_model_init_op` are left out, as TF
    Serving's metadata API leaves them out.
    """
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    meta_graph = proto.meta_graphs[0]
    return {name: signature for name, signature in sorted(meta_graph.signature_def.items())
            if not name.startswith("__")}


def signature_def_json(saved_model_dir):
    """The SavedModel's signature defs as TF Serving's metadata API prints them.

    Returns `{signature name: {"inputs", "outputs", "method_name"}}` from
    `saved_model.pb`, in protobuf's JSON mapping with default fields printed
    (so `"unknown_rank": false`, `"size": "-1"`), as `GET .../metadata` shows.
    """
    return {
        name: json_format.MessageToDict(
            signature, preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
        )
        for name, signature in read_signature_defs(saved_model_dir).items()
    }


class ServedModel:
    """One version of an end-to-end text SavedModel, ready to predict from Python lists.

    Loads the SavedModel, reads its signatures (every input must be a string
    vector `(None,)`, as `export_task_saved_model` writes them) and the export's
    `assets.extra/electra_tf_export.json` when present (task, label names,
    `max_seq_length`, `truncate`). `predict` is thread-safe and is what the REST
    service runs on its worker threads.

    Args:
        path: a SavedModel directory.
        version: the version string the service reports, e.g. "1".

    Example:
    >>> import tempfile
    >>> class Lengths(tf.Module):
    ...     @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    ...     def serve(self, text):
    ...         return {"length": tf.strings.length(text)}
    >>> path = tempfile.mkdtemp()
    >>> module = Lengths()
    >>> tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    >>> model = ServedModel(path, version="1")
    >>> model.input_names("serving_default"), model.output_names("serving_default")
    (['text'], ['length'])
    >>> model.predict("serving_default", {"text": ["hello", "hi"]})["length"]
    array([5, 2], dtype=int32)
    """

    def __init__(self, path, version="1"):
        if not os.path.isfile(os.path.join(str(path), "saved_model.pb")):
            raise ValueError(f"{path!r} is not a SavedModel directory (no saved_model.pb).")
        if not VERSION_DIR.match(str(version)):
            raise ValueError(f"`version` must be a string of digits; received {version!r}.")
        self.path = str(path)
        self.version = str(version)
        self.signature_def_protos = read_signature_defs(self.path)
        self.signature_defs = signature_def_json(self.path)
        self.export_info = {}
        info_path = os.path.join(self.path, EXPORT_INFO_PATH)
        if os.path.isfile(info_path):
            with open(info_path) as f:
                self.export_info = json.load(f)
        self._loaded = tf.saved_model.load(self.path)
        self._functions = dict(self._loaded.signatures)
        if "serving_default" not in self._functions:
            raise ValueError(
                f"{self.path!r} has no `serving_default` signature (it has "
                f"{sorted(self._functions)}); export it with "
                "`electra_tf.export.task_saved_model.export_task_saved_model`."
            )
        for name, function in self._functions.items():
            _, specs = function.structured_input_signature
            for key, spec in specs.items():
                if spec.dtype != tf.string or spec.shape.rank != 1:
                    raise ValueError(
                        f"Signature {name!r} input {key!r} is {spec.dtype.name} {spec.shape}; "
                        "electra-tf serve serves text models whose inputs are string "
                        "vectors (None,), as `export_task_saved_model` writes them."
                    )

    @property
    def signature_names(self):
        return sorted(self._functions)

    def input_names(self, signature_name):
        """Sorted input names of a signature."""
        _, specs = self._function(signature_name).structured_input_signature
        return sorted(specs)

    def output_names(self, signature_name):
        """Sorted output names of a signature."""
        return sorted(self._function(signature_name).structured_outputs)

    @property
    def max_seq_length(self):
        return self.export_info.get("max_seq_length")

    @property
    def truncate(self):
        """Whether the model truncates long texts itself (the export's `truncate`)."""
        return bool(self.export_info.get("truncate", True))

    def unpad(self, outputs):
        """Cuts padded outputs of one request to its own longest row.

        A tagger's export pads `words`, `tags`, ... to the batch's most words
        (its metadata's `padded_outputs` names the count output of each); when
        requests share a batch, each gets the columns its own rows need, which
        is what the SavedModel returns for that request alone.

        >>> model = ServedModel.__new__(ServedModel)
        >>> model.export_info = {"padded_outputs": {"num_words": ["tags"]}}
        >>> model.unpad({"tags": np.array([[b"O", b""], [b"O", b""]]),
        ...              "num_words": np.array([1, 1])})["tags"].tolist()
        [[b'O'], [b'O']]
        """
        padded = self.export_info.get("padded_outputs") or {}
        outputs = dict(outputs)
        for count_name, names in padded.items():
            if count_name not in outputs:
                continue
            counts = outputs[count_name]
            width = int(counts.max()) if counts.size else 0
            for name in names:
                if name in outputs and outputs[name].ndim >= 2:
                    outputs[name] = outputs[name][:, :width]
        return outputs

    def _function(self, signature_name):
        if signature_name not in self._functions:
            raise ValueError(
                f"Serving signature name: {signature_name!r} not found in signature def; "
                f"this model has {self.signature_names}."
            )
        return self._functions[signature_name]

    def to_tensors(self, signature_name, columns):
        """{input: list of bytes} -> {input: tf.string tensor}, checking the input names.

        The service converts each request on its own, before it joins a batch,
        so that a text that cannot become a tensor fails its own request only.
        """
        expected = self.input_names(signature_name)
        if sorted(columns) != expected:
            raise ValueError(
                f"Signature {signature_name!r} takes inputs {expected}; received "
                f"{sorted(columns)}."
            )
        return {name: values if isinstance(values, tf.Tensor)
                else tf.constant(values, dtype=tf.string) for name, values in columns.items()}

    def predict(self, signature_name, columns):
        """Runs a signature on a batch: {input: list of str/bytes or tf.string tensor}
        -> {output: np.ndarray}.

        Every input has the batch's length; outputs have it as first dimension.
        """
        function = self._function(signature_name)
        tensors = self.to_tensors(signature_name, columns)
        return {name: np.asarray(value) for name, value in function(**tensors).items()}
