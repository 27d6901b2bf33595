"""ServingMetrics: the service's Prometheus metrics, in a registry of their own."""

try:
    import prometheus_client
except ImportError as error:  # an optional dependency: the `serve` extra
    raise ImportError(
        "electra_tf.serving needs prometheus-client; install it with "
        "`pip install \"electra-tf[serve]\"`."
    ) from error

# Request latencies on one CPU machine run from a millisecond (a cached error)
# to seconds (a full batch of long texts under load).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServingMetrics:
    """Counters and histograms of the REST service, exposed at `/metrics`.

    A registry per instance (not prometheus-client's global one), so several
    servers or tests in one process do not share counts.

    - `electra_tf_requests_total{endpoint, code}`: answered requests.
    - `electra_tf_request_errors_total{endpoint, code}`: answers with code >= 400.
    - `electra_tf_request_latency_seconds{endpoint}`: histogram.
    - `electra_tf_batch_size`: histogram of instances per model batch.
    - `electra_tf_queued_requests`: requests waiting for a batch.

    Args:
        namespace: metric name prefix.

    Example:
    >>> metrics = ServingMetrics()
    >>> metrics.observe_request("predict", 200, 0.01)
    >>> metrics.observe_batch(4)
    >>> b'electra_tf_requests_total{code="200",endpoint="predict"} 1.0' in metrics.render()
    True
    """

    def __init__(self, namespace="electra_tf"):
        self.namespace = namespace
        self.registry = prometheus_client.CollectorRegistry()
        self.requests = prometheus_client.Counter(
            "requests", "Requests answered, by endpoint and HTTP status code.",
            ["endpoint", "code"], namespace=namespace, registry=self.registry)
        self.errors = prometheus_client.Counter(
            "request_errors", "Requests answered with an HTTP status code >= 400.",
            ["endpoint", "code"], namespace=namespace, registry=self.registry)
        self.latency = prometheus_client.Histogram(
            "request_latency_seconds", "Time from request to answer, by endpoint.",
            ["endpoint"], buckets=LATENCY_BUCKETS, namespace=namespace, registry=self.registry)
        self.batch_size = prometheus_client.Histogram(
            "batch_size", "Instances per batch run by the model.",
            buckets=BATCH_SIZE_BUCKETS, namespace=namespace, registry=self.registry)
        self.queued = prometheus_client.Gauge(
            "queued_requests", "Requests waiting for a batch.",
            namespace=namespace, registry=self.registry)

    def observe_request(self, endpoint, code, seconds):
        """Counts one answered request."""
        self.requests.labels(endpoint=endpoint, code=str(code)).inc()
        if code >= 400:
            self.errors.labels(endpoint=endpoint, code=str(code)).inc()
        self.latency.labels(endpoint=endpoint).observe(seconds)

    def observe_batch(self, num_instances):
        """Counts one model batch of `num_instances` instances."""
        self.batch_size.observe(num_instances)

    def render(self):
        """The metrics in Prometheus' text format (bytes)."""
        return prometheus_client.generate_latest(self.registry)

    @property
    def content_type(self):
        return prometheus_client.CONTENT_TYPE_LATEST
