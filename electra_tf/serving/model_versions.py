"""ModelVersions: the versions of one model a server serves, laid out as TF Serving lays them."""

import os
import sys
import threading
import traceback

from electra_tf.serving.request_error import RequestError
from electra_tf.serving.served_model import ServedModel, find_model_versions

VERSION_POLICIES = ("latest", "all")


class ModelVersions:
    """The loaded versions of a model, which version a request means, and reloading.

    `model_dir` is a SavedModel (served as version 1) or a TF Serving base path
    whose numbered subdirectories are versions. As TF Serving's default policy,
    the highest version is served ("latest"); "all" serves every version.
    Versions named in `version_labels` are served too, so that `labels/LABEL`
    reaches them. `poll()` rescans the base path, as TF Serving's file-system
    polling does: a new version is loaded and warmed up before it replaces the
    old one, so no request sees a half-loaded model; requests already given the
    old one finish on it.

    Args:
        model_dir: a SavedModel or a TF Serving base path.
        policy: "latest" or "all".
        version_labels: {label: version}, e.g. {"stable": "1", "canary": "2"}.
        models: already loaded {version: ServedModel} to serve instead of a
            `model_dir`; nothing is polled (see `from_models`).

    Example:
    >>> import tempfile, tensorflow as tf
    >>> class Lengths(tf.Module):
    ...     @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    ...     def serve(self, text):
    ...         return {"length": tf.strings.length(text)}
    >>> base = tempfile.mkdtemp()
    >>> for version in ("1", "2"):
    ...     module = Lengths()
    ...     tf.saved_model.save(module, os.path.join(base, version),
    ...                         signatures={"serving_default": module.serve})
    >>> versions = ModelVersions(base, version_labels={"stable": "1"})
    >>> versions.version_list(), versions.resolve().version
    (['1', '2'], '2')
    >>> versions.resolve(label="stable").version
    '1'
    """

    def __init__(self, model_dir=None, policy="latest", version_labels=None, models=None):
        if policy not in VERSION_POLICIES:
            raise ValueError(f"`policy` must be one of {VERSION_POLICIES}; received {policy!r}.")
        self.base_path = model_dir
        self.policy = policy
        self.version_labels = {str(label): str(int(version))
                               for label, version in (version_labels or {}).items()}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poller = None
        self.models = {}  # replaced, never changed in place: readers need no lock
        if models is not None:
            self.models = {str(int(version)): model for version, model in models.items()}
        else:
            self.poll(initial=True)
        missing = sorted(set(self.version_labels.values()) - set(self.models))
        if missing:
            raise ValueError(
                f"--version-labels {self.version_labels} name versions {missing} that "
                f"{model_dir!r} does not hold (it has {self.version_list()}); label versions "
                "that exist.")

    @classmethod
    def from_models(cls, models, version_labels=None):
        """Wraps loaded {version: ServedModel}; nothing is polled."""
        return cls(policy="all", version_labels=version_labels, models=models)

    @property
    def latest(self):
        return max(self.models, key=int)

    def version_list(self):
        return sorted(self.models, key=int)

    def resolve(self, version=None, label=None, name="model"):
        """The `ServedModel` a request means: the latest, a version, or a label's version.

        Raises:
            RequestError: 404 for a version not served, 400 for an unknown label
                (TF Serving's codes).
        """
        models = self.models
        if version is not None and label is not None:
            raise RequestError(400, f"Both model version ({version}) and model version label "
                               f"({label}) cannot be supplied.")
        if label is not None:
            if label not in self.version_labels:
                raise RequestError(400, f"Unrecognized servable version label: {label}; "
                                   f"this server has labels {sorted(self.version_labels)} "
                                   "(--version-labels).")
            version = self.version_labels[label]
        if version is None:
            return models[max(models, key=int)]
        if not str(version).isdigit():
            raise RequestError(400, f"Failed to convert version: {version} to numeric.")
        model = models.get(str(int(version)))
        if model is None:
            raise RequestError(404, f"Servable not found for request: Specific({name}, {version}); "
                               f"available versions: {sorted(models, key=int)}.")
        return model

    def poll(self, initial=False):
        """Rescans the base path: loads wanted new versions, drops unwanted ones.

        Returns the versions loaded. A version that fails to load (still being
        copied, say) is retried at the next poll; the served ones stay.
        """
        if self.base_path is None:
            return []
        with self._lock:
            available = find_model_versions(self.base_path) if initial else (
                self._available())
            if not available:
                return []
            if self.policy == "all":
                wanted = set(available)
            else:
                wanted = {max(available, key=int)}
            wanted |= set(self.version_labels.values()) & set(available)
            loaded = {}
            for version in sorted(wanted - set(self.models), key=int):
                try:
                    loaded[version] = warmed_up(ServedModel(available[version], version=version))
                except Exception:  # noqa: BLE001  a partial copy: try again next time
                    if initial:
                        raise
                    print(f"electra-tf serve: version {version} did not load; retrying at the "
                          "next poll:", file=sys.stderr)
                    traceback.print_exc()
            models = {version: model for version, model in self.models.items()
                      if version in wanted}
            models.update(loaded)
            if models:
                self.models = models  # one assignment: requests see the old or the new set
            return sorted(loaded, key=int)

    def _available(self):
        try:
            return find_model_versions(self.base_path)
        except ValueError:  # emptied or moved for a moment: keep serving what is loaded
            return {}

    def start_polling(self, interval_s):
        """Polls every `interval_s` seconds on a daemon thread until `stop_polling()`."""
        if self._poller is not None or self.base_path is None:
            return

        def loop():
            while not self._stop.wait(interval_s):
                for version in self.poll():
                    print(f"electra-tf serve: loaded version {version}; serving "
                          f"{self.version_list()}", flush=True)

        self._poller = threading.Thread(target=loop, name="electra-tf-poll", daemon=True)
        self._poller.start()

    def stop_polling(self):
        self._stop.set()
        if self._poller is not None:
            self._poller.join()
            self._poller = None


def warmed_up(model):
    """Runs a model once (tracing, thread pools) before it serves a request."""
    names = model.input_names("serving_default")
    model.predict("serving_default", {name: [b"warm up"] for name in names})
    return model
