"""ServingConfig: the options of `electra-tf serve`, in one place."""

import dataclasses
import re

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

    def __post_init__(self):
        if not isinstance(self.name, str) or not MODEL_NAME.match(self.name):
            raise ValueError(
                f"`name` must be letters, digits, '_', '.' or '-' (it is part of the URL); "
                f"received name={self.name!r}."
            )
        for field in ("port", "max_batch_size", "workers", "max_body_bytes", "max_instances",
                      "max_text_length", "max_queue"):
            value = getattr(self, field)
            minimum = 0 if field == "port" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(
                    f"`{field}` must be an integer >= {minimum}; received {field}={value!r}.")
        for field in ("batch_timeout_ms", "graceful_shutdown_s"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"`{field}` must be a number >= 0; received {field}={value!r}.")
