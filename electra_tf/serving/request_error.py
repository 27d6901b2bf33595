"""RequestError: a request the service refuses, with TF Serving's status for it."""

# TF Serving's error codes by HTTP status, for the gRPC API (grpc.StatusCode names).
GRPC_CODES = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 413: "INVALID_ARGUMENT",
              500: "INTERNAL", 503: "UNAVAILABLE"}


class RequestError(Exception):
    """A request the service refuses: an HTTP `status` and a message for {"error": ...}.

    The REST API answers `status` with TF Serving's body `{"error": message}`;
    the gRPC API aborts with the matching code (`grpc_code`).

    Example:
    >>> error = RequestError(404, "Servable not found for request: Latest(other)")
    >>> error.status, error.grpc_code
    (404, 'NOT_FOUND')
    """

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def grpc_code(self):
        """The name of the `grpc.StatusCode` TF Serving gives this error."""
        return GRPC_CODES.get(self.status, "INVALID_ARGUMENT" if self.status < 500 else "INTERNAL")
