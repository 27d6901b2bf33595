"""ServingConfig: the options of `electra-tf serve`, in one place."""

import dataclasses
import re
import typing

from electra_tf.utils.checks import is_integer, is_number

# Model names appear in URLs such as /v1/models/NAME:predict.
MODEL_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclasses.dataclass
class ServingConfig:
    """How the REST service runs and what it accepts.

    Defaults suit one CPU machine: batches of up to 32 instances collected for
    at most 5 ms (a few ms of added latency buys several times the throughput
    under load), one model thread (TensorFlow already uses every core for one
    batch), and limits that keep one request from starving the others.

    Args:
        name: the model name in URLs (`/v1/models/NAME:predict`).
        host: address to bind; 127.0.0.1 keeps the service off the network.
        port: TCP port (TF Serving's REST port is 8501).
        max_batch_size: most instances the model runs at once.
        batch_timeout_ms: how long a batch waits for more requests.
        workers: model threads, i.e. batches that may run at the same time.
        max_body_bytes: largest request body; larger ones get HTTP 413.
        max_instances: most instances in one request.
        max_text_length: most characters in one text.
        max_queue: most requests waiting for a batch; more get HTTP 503.
        graceful_shutdown_s: how long SIGTERM waits for in-flight requests.
        grpc_port: TCP port of TF Serving's gRPC API (its default is 8500); None: off.
        version_policy: "latest" (TF Serving's default: the highest version) or "all".
        version_labels: {label: version} for `/labels/LABEL` URLs, e.g. {"stable": "1"};
            labelled versions are served too.
        file_system_poll_wait_seconds: how often the base path is checked for new
            versions (TF Serving's flag, same default); 0: never.
        intra_op_threads: threads that one op is split over (TF Serving's
            --tensorflow_intra_op_parallelism); 0: TensorFlow's default, all cores.
        inter_op_threads: threads that run independent ops at the same time
            (--tensorflow_inter_op_parallelism); 0: TensorFlow's default, all cores.
            On a small CPU machine `intra_op_threads=1` answers one text at a
            time sooner (threads are not woken and waited for at every op), and
            with `inter_op_threads=N` a model exported with `batch_parts=N`
            runs each batch as N parts at once, and one exported with
            `width_parts=N` each text's blocks as N groups at once (see
            README, "Serving threads").

    Example:
    >>> ServingConfig(name="sentiment", port=8600).port
    8600
    """

    name: str = "model"
    host: str = "127.0.0.1"
    port: int = 8501
    max_batch_size: int = 32
    batch_timeout_ms: float = 5.0
    workers: int = 1
    max_body_bytes: int = 1 << 20  # 1 MiB: thousands of sentences
    max_instances: int = 256
    max_text_length: int = 10_000  # characters; a long news article
    max_queue: int = 1024
    graceful_shutdown_s: float = 30.0
    grpc_port: typing.Optional[int] = None
    version_policy: str = "latest"
    version_labels: dict = dataclasses.field(default_factory=dict)
    file_system_poll_wait_seconds: float = 1.0
    intra_op_threads: int = 0
    inter_op_threads: int = 0

    def __post_init__(self):
        if not isinstance(self.name, str) or not MODEL_NAME.match(self.name):
            raise ValueError(
                f"`name` must be letters, digits, '_', '.' or '-' (it is part of the URL); "
                f"received name={self.name!r}."
            )
        for field in ("port", "max_batch_size", "workers", "max_body_bytes", "max_instances",
                      "max_text_length", "max_queue", "intra_op_threads", "inter_op_threads"):
            value = getattr(self, field)
            minimum = 0 if field in ("port", "intra_op_threads", "inter_op_threads") else 1
            if not is_integer(value) or value < minimum:
                raise ValueError(
                    f"`{field}` must be an integer >= {minimum}; received {field}={value!r}.")
        if self.grpc_port is not None and (not is_integer(self.grpc_port) or self.grpc_port < 0):
            raise ValueError(f"`grpc_port` must be an integer >= 0 or None; received "
                             f"grpc_port={self.grpc_port!r}.")
        if self.version_policy not in ("latest", "all"):
            raise ValueError(f"`version_policy` must be 'latest' or 'all'; received "
                             f"version_policy={self.version_policy!r}.")
        if not isinstance(self.version_labels, dict) or not all(
                isinstance(label, str) and MODEL_NAME.match(label) and str(version).isdigit()
                for label, version in self.version_labels.items()):
            raise ValueError(f"`version_labels` must map label names (letters, digits, '_', "
                             f"'.', '-') to version numbers, e.g. {{'stable': '1'}}; received "
                             f"version_labels={self.version_labels!r}.")
        for field in ("batch_timeout_ms", "graceful_shutdown_s", "file_system_poll_wait_seconds"):
            value = getattr(self, field)
            if not is_number(value) or value < 0:
                raise ValueError(f"`{field}` must be a number >= 0; received {field}={value!r}.")
