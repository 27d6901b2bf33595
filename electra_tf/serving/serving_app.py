"""The REST service: TF Serving's API over FastAPI, dynamic batching, metrics, a demo page.

`build_serving_app` builds the ASGI app for loaded models; `run_server` loads a
model directory and serves it with uvicorn until SIGTERM/SIGINT, finishing the
requests in flight before it exits.
"""

import asyncio
import importlib.resources
import json
import time
import typing

import tensorflow as tf

from electra_tf.serving.dynamic_batcher import DynamicBatcher, QueueFullError
from electra_tf.serving.predict_request import (
    format_predict_response,
    parse_predict_request,
    split_outputs,
)
from electra_tf.serving.served_model import ServedModel, find_model_versions
from electra_tf.serving.serving_config import ServingConfig
from electra_tf.serving.serving_metrics import ServingMetrics

try:
    import fastapi
    import uvicorn
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ImportError as error:  # optional dependencies: the `serve` extra
    raise ImportError(
        "electra_tf.serving needs fastapi and uvicorn; install them with "
        "`pip install \"electra-tf[serve]\"`."
    ) from error

_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
_TEXT = {"oneOf": [{"type": "string"},
                   {"type": "object", "properties": {"b64": {"type": "string"}},
                    "required": ["b64"]}]}
# The request body as TF Serving's REST documentation describes it, for the OpenAPI spec.
_PREDICT_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object",
        "properties": {
            "signature_name": {"type": "string"},
            "instances": {"type": "array", "items": {
                "oneOf": [_TEXT, {"type": "object", "additionalProperties": _TEXT}]}},
            "inputs": {"oneOf": [{"type": "array", "items": _TEXT},
                                 {"type": "object",
                                  "additionalProperties": {"type": "array", "items": _TEXT}}]},
        },
        "example": {"instances": ["a gripping, beautifully shot film"]},
    }}},
}
_ERROR_RESPONSES = {code: {"description": text, "content": {"application/json": {"schema": _ERROR}}}
                    for code, text in ((400, "bad request"), (404, "unknown model or version"),
                                       (413, "body too large"), (503, "overloaded"))}


class _RequestError(Exception):
    """A request the service refuses: `status` and a message for {"error": ...}."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def load_model_versions(model_dir):
    """Loads the latest version under `model_dir` (as TF Serving's default policy does).

    Returns {version: ServedModel} with that one version.
    """
    versions = find_model_versions(model_dir)
    latest = max(versions, key=int)
    return {latest: ServedModel(versions[latest], version=latest)}


def run_model_batch(model, signature_name, payloads):
    """Runs one batch of requests; returns per request its outputs or an error.

    Args:
        model: a `ServedModel`.
        signature_name: the signature all `payloads` call.
        payloads: list of {input name: list of str} (one per request).

    Returns:
        A list as long as `payloads`: {output name: np.ndarray} or `_RequestError`.

    Texts longer than the model's `max_seq_length` tokens are refused (400) when
    the export says `truncate: false`, counted by its `count_tokens` signature;
    the rest of the batch still runs. If the model rejects the batch, each
    request is rerun alone so that only the bad one fails.
    """
    results = [None] * len(payloads)
    if (not model.truncate and model.max_seq_length and signature_name == "serving_default"
            and "count_tokens" in model.signature_names):
        try:
            counts = model.predict("count_tokens", _concatenate(payloads))["num_tokens"]
        except tf.errors.InvalidArgumentError as error:
            # Some exports check the length inside count_tokens too: find the request.
            if len(payloads) > 1:
                return [run_model_batch(model, signature_name, [p])[0] for p in payloads]
            return [_RequestError(400, (
                f"The text is longer than this model's max_seq_length={model.max_seq_length} "
                "tokens and the model was exported with truncate=false, so long texts are "
                f"refused; shorten it. The model says: {_assertion(error)}"))]
        offset = 0
        for index, payload in enumerate(payloads):
            size = len(next(iter(payload.values())))
            for position, count in enumerate(counts[offset:offset + size]):
                if count > model.max_seq_length and results[index] is None:
                    results[index] = _RequestError(400, (
                        f"Instance {position} has {int(count)} tokens; this model reads at most "
                        f"{model.max_seq_length} and was exported with truncate=false, so "
                        "long texts are refused. Shorten the text or export with truncation."))
            offset += size
    runnable = [i for i, result in enumerate(results) if result is None]
    if not runnable:
        return results
    try:
        outputs = model.predict(signature_name, _concatenate([payloads[i] for i in runnable]))
        sizes = [len(next(iter(payloads[i].values()))) for i in runnable]
        for i, part in zip(runnable, split_outputs(outputs, sizes)):
            results[i] = part
    except tf.errors.InvalidArgumentError as error:
        if len(runnable) == 1:
            results[runnable[0]] = _RequestError(
                400, f"The model rejected the input: {_assertion(error)}")
        else:  # find the bad request: run each alone
            for i in runnable:
                results[i] = run_model_batch(model, signature_name, [payloads[i]])[0]
    return results


def _assertion(error):
    """The line of a TensorFlow assertion error that says what failed."""
    lines = [line for line in error.message.splitlines() if "assertion failed" in line]
    return (lines[0] if lines else error.message.splitlines()[-1]).strip()


def _concatenate(payloads):
    return {name: [text for payload in payloads for text in payload[name]]
            for name in payloads[0]}


def build_serving_app(models, config=None):
    """The ASGI app serving `models` ({version: ServedModel}) under `config.name`.

    Endpoints (TF Serving's REST API plus a few of ours):
        GET  /v1/models/NAME[/versions/V]            version status
        GET  /v1/models/NAME[/versions/V]/metadata   signature defs
        POST /v1/models/NAME[/versions/V]:predict    row or columnar predict
        GET  /metrics /healthz /readyz               Prometheus, liveness, readiness
        GET  /  /demo/info                           demo page and what it needs
        GET  /openapi.json /docs                     the OpenAPI spec
    """
    config = config or ServingConfig()
    if not models:
        raise ValueError("`models` is empty; expected {version: ServedModel}.")
    latest = max(models, key=int)
    metrics = ServingMetrics()

    def run_batch(key, payloads):
        version, signature_name = key
        return run_model_batch(models[version], signature_name, payloads)

    batcher = DynamicBatcher(
        run_batch, max_batch_size=config.max_batch_size,
        batch_timeout_ms=config.batch_timeout_ms, max_queue=config.max_queue,
        num_workers=config.workers, on_batch=lambda key, size: metrics.observe_batch(size))

    async def lifespan(app):
        yield
        await batcher.close()  # uvicorn has let in-flight requests finish by now
        observed = app.state.observed
        print(f"electra-tf serve: {config.name!r} stopped; answered {observed.answered} of "
              f"{observed.received} requests received", flush=True)

    app = fastapi.FastAPI(
        title="electra_tf model server",
        description="TensorFlow Serving's REST API for an electra_tf end-to-end SavedModel.",
        version=str(latest), lifespan=lifespan)
    app.state.shutting_down = False
    app.state.metrics = metrics
    app.state.batcher = batcher

    def find_model(name, version=None, method="POST"):
        if method == "GET" and ":" in (name if version is None else version):
            # GET /v1/models/NAME:predict matches the status URL with a ':' in NAME.
            raise _RequestError(405, f"Method GET is not allowed for ...{(version or name)!r}; "
                                "predict takes POST, status and metadata take GET.")
        if name != config.name:
            request = f"Latest({name})" if version is None else f"Specific({name}, {version})"
            raise _RequestError(404, f"Servable not found for request: {request}; this server "
                                f"serves model {config.name!r}.")
        if version is None:
            return models[latest]
        if not version.isdigit():
            raise _RequestError(400, f"Version must be a number; received {version!r}.")
        if str(int(version)) not in models:
            raise _RequestError(404, f"Servable not found for request: Specific({name}, "
                                f"{version}); available versions: {sorted(models, key=int)}.")
        return models[str(int(version))]

    @app.exception_handler(_RequestError)
    async def request_error(request, error):
        return JSONResponse({"error": error.message}, status_code=error.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, error):
        message = str(error.detail)
        if error.status_code == 405:
            message = (f"Method {request.method} is not allowed for {request.url.path}; "
                       "predict takes POST, status and metadata take GET.")
        elif error.status_code == 404:
            message = (f"No such endpoint: {request.url.path}; see /openapi.json "
                       "(e.g. POST /v1/models/NAME:predict).")
        return JSONResponse({"error": message}, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, error):
        return JSONResponse({"error": f"Invalid request: {error.errors()}"}, status_code=400)

    @app.exception_handler(Exception)
    async def internal_error(request, error):  # never a bare 500 page: JSON naming the error
        return JSONResponse({"error": f"Internal error: {type(error).__name__}: {error}"},
                            status_code=500)

    app.state.observed = _RequestCounts()
    app.add_middleware(_ObserveRequests, metrics=metrics, counts=app.state.observed)

    # The OpenAPI spec lists the served name and versions, so that clients and
    # fuzzers reach the model; other values are still answered (404).
    ModelName = typing.Annotated[str, fastapi.Path(
        description="the model name", json_schema_extra={"enum": [config.name]})]
    ModelVersion = typing.Annotated[str, fastapi.Path(
        description="a model version", json_schema_extra={"enum": sorted(models, key=int)})]

    def status_json(models_shown):
        return {"model_version_status": [
            {"version": version, "state": "AVAILABLE",
             "status": {"error_code": "OK", "error_message": ""}}
            for version in sorted(models_shown, key=int)]}

    def metadata_json(name, model):
        return {"model_spec": {"name": name, "signature_name": "", "version": model.version},
                "metadata": {"signature_def": {"signature_def": model.signature_defs}}}

    status_responses = {404: _ERROR_RESPONSES[404], 400: _ERROR_RESPONSES[400]}

    @app.get("/v1/models/{name}", responses=status_responses, summary="Model status")
    async def model_status(name: ModelName):
        find_model(name, method="GET")
        return status_json(models)

    @app.get("/v1/models/{name}/versions/{version}", responses=status_responses,
             summary="Model version status")
    async def model_version_status(name: ModelName, version: ModelVersion):
        return status_json([find_model(name, version, method="GET").version])

    @app.get("/v1/models/{name}/metadata", responses=status_responses, summary="Model metadata")
    async def model_metadata(name: ModelName):
        return metadata_json(name, find_model(name, method="GET"))

    @app.get("/v1/models/{name}/versions/{version}/metadata", responses=status_responses,
             summary="Model version metadata")
    async def model_version_metadata(name: ModelName, version: ModelVersion):
        return metadata_json(name, find_model(name, version, method="GET"))

    async def predict(request, name, version):
        model = find_model(name, version)
        body = await _read_body(request, config.max_body_bytes)
        try:
            body = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise _RequestError(400, f"The request body is not valid JSON: {error}.") from None
        signature_name = body.get("signature_name", "serving_default") if isinstance(body, dict) \
            else "serving_default"
        if not isinstance(signature_name, str) or signature_name not in model.signature_names:
            raise _RequestError(400, f"Serving signature name: {signature_name!r} not found in "
                                f"signature def; this model has {model.signature_names}.")
        try:
            columns, row_format = parse_predict_request(
                body, model.input_names(signature_name), max_instances=config.max_instances,
                max_text_length=config.max_text_length)
        except ValueError as error:
            raise _RequestError(400, str(error)) from None
        size = len(next(iter(columns.values())))
        try:
            outputs = await batcher.submit((model.version, signature_name), columns, size=size)
        except QueueFullError as error:
            raise _RequestError(503, str(error)) from None
        # A JSONResponse skips FastAPI's (slow) jsonable_encoder: these are plain lists.
        return JSONResponse(format_predict_response(outputs, row_format))

    predict_options = dict(openapi_extra={"requestBody": _PREDICT_BODY},
                           responses=_ERROR_RESPONSES)

    @app.post("/v1/models/{name}:predict", summary="Predict (latest version)", **predict_options)
    async def model_predict(name: ModelName, request: fastapi.Request):
        return await predict(request, name, None)

    @app.post("/v1/models/{name}/versions/{version}:predict", summary="Predict (one version)",
              **predict_options)
    async def model_version_predict(name: ModelName, version: ModelVersion,
                                    request: fastapi.Request):
        return await predict(request, name, version)

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus_metrics():
        metrics.queued.set(batcher.queued)
        return Response(metrics.render(), media_type=metrics.content_type)

    @app.get("/healthz", summary="Liveness")
    async def health():
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness", responses={503: _ERROR_RESPONSES[503]})
    async def ready():
        if app.state.shutting_down:
            return JSONResponse({"error": "shutting down"}, status_code=503)
        return {"status": "ready", "model": config.name, "versions": sorted(models, key=int)}

    @app.get("/demo/info", summary="What the demo page needs to know")
    async def demo_info():
        model = models[latest]
        info = model.export_info
        inputs = model.input_names("serving_default")  # sorted; the export's order reads better
        if sorted(info.get("inputs") or []) == inputs:
            inputs = info["inputs"]
        return {"name": config.name, "version": latest, "task": info.get("task"),
                "inputs": inputs,
                "outputs": model.output_names("serving_default"),
                "label_names": info.get("label_names"),
                "max_text_length": config.max_text_length}

    page = importlib.resources.files("electra_tf.serving").joinpath("static/index.html")
    page = page.read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, summary="Demo page")
    async def demo_page():
        return page

    return app


class _RequestCounts:
    """HTTP requests the app received and answered (a response was started)."""

    def __init__(self):
        self.received = 0
        self.answered = 0


class _ObserveRequests:
    """ASGI middleware: counts and times every request by its route (lighter than
    Starlette's BaseHTTPMiddleware, which costs about a millisecond per request)."""

    def __init__(self, app, metrics, counts):
        self.app = app
        self.metrics = metrics
        self.counts = counts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [500]
        self.counts.received += 1

        async def send_observed(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                self.counts.answered += 1
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            endpoint = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe_request(endpoint, status[0], time.perf_counter() - start)


async def _read_body(request, max_body_bytes):
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_body_bytes:
        raise _RequestError(413, f"The request body has {int(length)} bytes; at most "
                            f"{max_body_bytes} are allowed (--max-body-bytes).")
    chunks, received = [], 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_body_bytes:
            raise _RequestError(413, f"The request body exceeds {max_body_bytes} bytes "
                                "(--max-body-bytes).")
        chunks.append(chunk)
    return b"".join(chunks)


# After SIGTERM, how long connections accepted just before it get to send
# their request: uvicorn closes connections that have not sent one yet.
ACCEPTED_CONNECTION_GRACE_S = 0.25


class _GracefulServer(uvicorn.Server):
    """uvicorn's server that fails readiness as soon as SIGTERM arrives and reads
    the requests of connections it has already accepted before closing them."""

    def handle_exit(self, sig, frame):
        self.config.app.state.shutting_down = True
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets=None):
        for server in self.servers:  # stop accepting, as uvicorn's shutdown does first
            server.close()
        for sock in sockets or []:
            sock.close()
        await asyncio.sleep(ACCEPTED_CONNECTION_GRACE_S)
        await super().shutdown(sockets)


def run_server(model_dir, config=None, on_ready=None):
    """Loads `model_dir` and serves it until SIGTERM or SIGINT.

    Shutdown is graceful: the listening socket closes, requests in flight
    (queued or in a running batch) get their answers, then the process returns.

    Args:
        model_dir: a SavedModel or a TF Serving base directory (numeric versions).
        config: a `ServingConfig`.
        on_ready: optional callback `(url)` once the server listens.
    """
    config = config or ServingConfig()
    models = load_model_versions(model_dir)
    # Warm the model up (tracing, thread pools) before the first request.
    for model in models.values():
        names = model.input_names("serving_default")
        model.predict("serving_default", {name: ["warm up"] for name in names})
    app = build_serving_app(models, config)
    server = _GracefulServer(uvicorn.Config(
        app, host=config.host, port=config.port, log_level="warning", access_log=False,
        timeout_graceful_shutdown=config.graceful_shutdown_s, lifespan="on"))
    if on_ready is not None:
        original_startup = server.startup

        async def startup(sockets=None):
            await original_startup(sockets=sockets)
            on_ready(f"http://{config.host}:{config.port}")

        server.startup = startup
    server.run()
