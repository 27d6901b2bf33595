"""The REST service: TF Serving's API over FastAPI, dynamic batching, metrics, a demo page.

`build_serving_app` builds the ASGI app for loaded models; `run_server` loads a
model directory and serves it with uvicorn until SIGTERM/SIGINT, finishing the
requests in flight before it exits.
"""

import asyncio
import collections
import contextlib
import importlib.resources
import json
import re
import signal
import threading
import time
import traceback
import typing

import tensorflow as tf

from electra_tf.serving.dynamic_batcher import DynamicBatcher, QueueFullError
from electra_tf.serving.predict_request import (
    format_predict_response,
    parse_predict_request,
    split_outputs,
)
from electra_tf.serving.model_versions import ModelVersions
from electra_tf.serving.request_error import RequestError
from electra_tf.serving.serving_config import ServingConfig
from electra_tf.serving.serving_metrics import ServingMetrics
from electra_tf.utils.tensorflow_threads import set_tensorflow_threads

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


# TF Serving's URL patterns (http_rest_api_util.cc), case-insensitive as there:
# POST /v1/models/NAME[/versions/N | /labels/LABEL]:(classify|regress|predict)
# GET  /v1/models[/NAME][/versions/N | /labels/LABEL][/metadata]
_MODEL_PART = (r"/v1/models(?:/(?P<name>[^/:]+))?"
               r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?")
_POST_PATH = re.compile(_MODEL_PART + r":(?P<verb>classify|regress|predict)", re.IGNORECASE)
_GET_PATH = re.compile(_MODEL_PART + r"(?P<metadata>/metadata)?", re.IGNORECASE)
_V1 = re.compile(r"/v1(/|$)", re.IGNORECASE)


def run_model_batch(model, signature_name, payloads):
    """Runs one batch of requests; returns per request its outputs or its error.

    Never raises: if the batch fails as a whole, each request is rerun alone, so
    that only the one the model rejects fails (400 when the model rejects its
    input, 500 for any other failure).

    Args:
        model: a `ServedModel`.
        signature_name: the signature all `payloads` call.
        payloads: list of {input name: tf.string tensor (n,)} (one per request).

    Returns:
        A list as long as `payloads`: {output name: np.ndarray} or `RequestError`.

    Texts longer than the model's `max_seq_length` tokens are refused (400) when
    the export says `truncate: false`, counted by its `count_tokens` signature;
    the rest of the batch still runs.

    Two requests, run as one batch of three texts and answered separately:

    >>> import tempfile
    >>> from electra_tf.serving.served_model import ServedModel
    >>> class Lengths(tf.Module):
    ...     @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    ...     def serve(self, text):
    ...         return {"length": tf.strings.length(text)}
    >>> path = tempfile.mkdtemp()
    >>> module = Lengths()
    >>> tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    >>> model = ServedModel(path, version="1")
    >>> results = run_model_batch(model, "serving_default", [
    ...     {"text": tf.constant(["hello", "hi"])}, {"text": tf.constant(["hey"])}])
    >>> [result["length"].tolist() for result in results]
    [[5, 2], [3]]
    """
    try:
        return _run_together(model, signature_name, payloads)
    except Exception as error:  # find the request that broke the batch: run each alone
        if len(payloads) > 1:
            return [run_model_batch(model, signature_name, [p])[0] for p in payloads]
        return [_model_error(model, error)]


class _TextTooLong(Exception):
    """The model's own length check (count_tokens) refused a text."""


def _run_together(model, signature_name, payloads):
    results = [None] * len(payloads)
    sizes = [int(next(iter(p.values())).shape[0]) for p in payloads]
    if (not model.truncate and model.max_seq_length and signature_name == "serving_default"
            and "count_tokens" in model.signature_names):
        try:
            counts = model.predict("count_tokens", _concatenate(payloads))["num_tokens"]
        except tf.errors.InvalidArgumentError as error:
            # Some exports check the length inside count_tokens too.
            raise _TextTooLong(_assertion(error)) from error
        offset = 0
        for index, size in enumerate(sizes):
            for position, count in enumerate(counts[offset:offset + size]):
                if count > model.max_seq_length and results[index] is None:
                    results[index] = RequestError(400, (
                        f"Instance {position} has {int(count)} tokens; this model reads at most "
                        f"{model.max_seq_length} and was exported with truncate=false, so "
                        "long texts are refused. Shorten the text or export with truncation."))
            offset += size
    runnable = [i for i, result in enumerate(results) if result is None]
    if runnable:
        outputs = model.predict(signature_name, _concatenate([payloads[i] for i in runnable]))
        for i, part in zip(runnable, split_outputs(outputs, [sizes[i] for i in runnable])):
            results[i] = model.unpad(part)  # a tagger's columns: this request's own
    return results


def _model_error(model, error):
    """The answer for one request the model failed on."""
    if isinstance(error, _TextTooLong):
        return RequestError(400, (
            f"The text is longer than this model's max_seq_length={model.max_seq_length} "
            "tokens and the model was exported with truncate=false, so long texts are "
            f"refused; shorten it. The model says: {error}"))
    if isinstance(error, tf.errors.InvalidArgumentError):
        return RequestError(400, f"The model rejected the input: {_assertion(error)}")
    traceback.print_exception(error)  # a genuine internal failure: keep its trace in the log
    return RequestError(500, f"Internal error running the model: {type(error).__name__}: "
                        f"{error}")


def _assertion(error):
    """The line of a TensorFlow assertion error that says what failed."""
    lines = [line for line in error.message.splitlines() if "assertion failed" in line]
    return (lines[0] if lines else error.message.splitlines()[-1]).strip()


def _concatenate(payloads):
    if len(payloads) == 1:
        return payloads[0]
    return {name: tf.concat([payload[name] for payload in payloads], axis=0)
            for name in payloads[0]}


def _error_response(status, message):
    """TF Serving's error body; ASCII-escaped, so any text the client sent fits in it."""
    return Response(json.dumps({"error": message}), status_code=status,
                    media_type="application/json")


def build_serving_app(models, config=None):
    """The ASGI app serving `models` under `config.name`.

    Endpoints (TF Serving's REST API, URL patterns case-insensitive as there,
    plus a few of ours); SPEC is `/versions/N` or `/labels/LABEL`, optional:
        GET  /v1/models/NAME[SPEC]            version status
        GET  /v1/models/NAME[SPEC]/metadata   signature defs
        POST /v1/models/NAME[SPEC]:predict    row or columnar predict
        GET  /metrics /healthz /readyz        Prometheus, liveness, readiness
        GET  /  /demo/info                    demo page and what it needs
        GET  /openapi.json /docs              the OpenAPI spec
    Other requests under /v1/ get TF Serving's 400 "Malformed request".

    Args:
        models: a `ModelVersions`, or {version: ServedModel}.
        config: a `ServingConfig`.

    `run_server` serves it with uvicorn; here a GET goes to the ASGI app directly:

    >>> import tempfile
    >>> from electra_tf.serving.served_model import ServedModel
    >>> class Lengths(tf.Module):
    ...     @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    ...     def serve(self, text):
    ...         return {"length": tf.strings.length(text)}
    >>> path = tempfile.mkdtemp()
    >>> module = Lengths()
    >>> tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    >>> app = build_serving_app({"1": ServedModel(path)}, ServingConfig(name="lengths"))
    >>> async def get(url):
    ...     sent = []
    ...     async def receive():
    ...         return {"type": "http.request", "body": b""}
    ...     async def send(message):
    ...         sent.append(message)
    ...     await app({"type": "http", "method": "GET", "path": url, "headers": [],
    ...                "query_string": b""}, receive, send)
    ...     return sent[0]["status"], json.loads(sent[1]["body"])
    >>> asyncio.run(get("/v1/models/lengths"))
    (200, {'model_version_status': [{'version': '1', 'state': 'AVAILABLE',
                                     'status': {'error_code': 'OK', 'error_message': ''}}]})
    >>> asyncio.run(get("/v1/models/other"))
    (404, {'error': "Servable not found for request: Latest(other); this server serves model
                     'lengths'."})
    >>> build_serving_app({}, ServingConfig(name="lengths"))
    Traceback (most recent call last):
    ...
    ValueError: `models` is empty; expected {version: ServedModel} or a ModelVersions.
    """
    config = config or ServingConfig()
    if not isinstance(models, ModelVersions):
        if not models:
            raise ValueError("`models` is empty; expected {version: ServedModel} or a "
                             "ModelVersions.")
        models = ModelVersions.from_models(models, version_labels=config.version_labels)
    versions = models
    metrics = ServingMetrics()

    def run_batch(key, payloads):
        model, signature_name = key
        return run_model_batch(model, signature_name, payloads)

    batcher = DynamicBatcher(
        run_batch, max_batch_size=config.max_batch_size,
        batch_timeout_ms=config.batch_timeout_ms, max_queue=config.max_queue,
        num_workers=config.workers, on_batch=lambda key, size: metrics.observe_batch(size))

    async def predict_columns(model, signature_name, columns):
        """Converts one validated request to tensors, then runs it in a batch."""
        try:
            tensors = model.to_tensors(signature_name, columns)
        except (ValueError, UnicodeError, tf.errors.OpError) as error:
            raise RequestError(400, f"The input could not be converted to tensors: {error}")
        size = int(next(iter(tensors.values())).shape[0])
        try:
            return await batcher.submit((model, signature_name), tensors, size=size)
        except QueueFullError as error:
            raise RequestError(503, str(error)) from None

    async def lifespan(app):
        grpc_server = None
        if config.grpc_port is not None:
            from electra_tf.serving.grpc_service import start_grpc_server

            grpc_server = await start_grpc_server(versions, config, predict_columns,
                                                  counts=app.state.grpc_counts)
        if config.file_system_poll_wait_seconds and versions.base_path:
            versions.start_polling(config.file_system_poll_wait_seconds)
        yield
        # uvicorn has let in-flight HTTP requests finish by now.
        if grpc_server is not None:
            await grpc_server.stop(config.graceful_shutdown_s)
        versions.stop_polling()
        await batcher.close()
        observed = app.state.observed
        by_status = ", ".join(f"{status}: {count}"
                              for status, count in sorted(observed.by_status.items()))
        grpc_answers = app.state.grpc_counts
        grpc_summary = "" if grpc_server is None else (
            f"; gRPC: answered {sum(grpc_answers.values())} ("
            + ", ".join(f"{code}: {count}" for code, count in sorted(grpc_answers.items()))
            + ")")
        print(f"electra-tf serve: {config.name!r} stopped; answered {observed.answered} of "
              f"{observed.received} requests received (by status: {by_status or 'none'})"
              f"{grpc_summary}",
              flush=True)

    app = fastapi.FastAPI(
        title="electra_tf model server",
        description="TensorFlow Serving's REST API for an electra_tf end-to-end SavedModel.",
        version=str(versions.latest), lifespan=lifespan)
    app.state.shutting_down = False
    app.state.metrics = metrics
    app.state.batcher = batcher
    app.state.versions = versions
    app.state.predict_columns = predict_columns

    def find_model(name, version=None, label=None):
        if name != config.name:
            spec = (f"Specific({name}, {version})" if version is not None
                    else f"Label({name}, {label})" if label is not None else f"Latest({name})")
            raise RequestError(404, f"Servable not found for request: {spec}; this server "
                               f"serves model {config.name!r}.")
        return versions.resolve(version=version, label=label, name=name)

    @app.exception_handler(RequestError)
    async def request_error(request, error):
        return _error_response(error.status, error.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, error):
        message = str(error.detail)
        if error.status_code == 405:
            message = (f"Method {request.method} is not allowed for {request.url.path}; "
                       "see /openapi.json.")
        elif error.status_code == 404:
            message = (f"No such endpoint: {request.url.path}; see /openapi.json "
                       "(e.g. POST /v1/models/NAME:predict).")
        return _error_response(error.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, error):
        return _error_response(400, f"Invalid request: {error.errors()}")

    app.state.observed = _RequestCounts()
    app.state.grpc_counts = collections.Counter()  # gRPC answers by status code name
    app.add_middleware(_TFServingPaths)
    app.add_middleware(_ObserveRequests, metrics=metrics, counts=app.state.observed)

    # The OpenAPI spec lists the served name and versions, so that clients and
    # fuzzers reach the model; other values are still answered (404).
    ModelName = typing.Annotated[str, fastapi.Path(
        description="the model name", json_schema_extra={"enum": [config.name]})]
    ModelVersion = typing.Annotated[str, fastapi.Path(
        description="a model version", json_schema_extra={"enum": versions.version_list()})]
    ModelLabel = typing.Annotated[str, fastapi.Path(
        description="a version label (--version-labels)",
        json_schema_extra={"enum": sorted(config.version_labels or {})} if config.version_labels
        else None)]

    def status_json(models_shown):
        return {"model_version_status": [
            {"version": model.version, "state": "AVAILABLE",
             "status": {"error_code": "OK", "error_message": ""}}
            for model in sorted(models_shown, key=lambda model: int(model.version))]}

    def metadata_json(name, model):
        return {"model_spec": {"name": name, "signature_name": "", "version": model.version},
                "metadata": {"signature_def": {"signature_def": model.signature_defs}}}

    status_responses = {404: _ERROR_RESPONSES[404], 400: _ERROR_RESPONSES[400]}

    @app.get("/v1/models", responses=status_responses, summary="(needs a model name)")
    async def no_model_name():
        raise RequestError(400, "Missing model name in request.")

    @app.get("/v1/models/{name}", responses=status_responses, summary="Model status")
    async def model_status(name: ModelName):
        find_model(name)
        return status_json(versions.models.values())

    @app.get("/v1/models/{name}/versions/{version}", responses=status_responses,
             summary="Model version status")
    async def model_version_status(name: ModelName, version: ModelVersion):
        return status_json([find_model(name, version=version)])

    @app.get("/v1/models/{name}/labels/{label}", responses=status_responses,
             summary="Model version status by label")
    async def model_label_status(name: ModelName, label: ModelLabel):
        return status_json([find_model(name, label=label)])

    @app.get("/v1/models/{name}/metadata", responses=status_responses, summary="Model metadata")
    async def model_metadata(name: ModelName):
        return metadata_json(name, find_model(name))

    @app.get("/v1/models/{name}/versions/{version}/metadata", responses=status_responses,
             summary="Model version metadata")
    async def model_version_metadata(name: ModelName, version: ModelVersion):
        return metadata_json(name, find_model(name, version=version))

    @app.get("/v1/models/{name}/labels/{label}/metadata", responses=status_responses,
             summary="Model version metadata by label")
    async def model_label_metadata(name: ModelName, label: ModelLabel):
        return metadata_json(name, find_model(name, label=label))

    async def predict(request, model):
        body = await _read_body(request, config.max_body_bytes)
        body = _decode_json(body)
        signature_name = body.get("signature_name", "serving_default") if isinstance(body, dict) \
            else "serving_default"
        if signature_name == "":
            signature_name = "serving_default"  # TF Serving's default too
        if not isinstance(signature_name, str) or signature_name not in model.signature_names:
            shown = ascii(signature_name) if isinstance(signature_name, str) else (
                f"a JSON {type(signature_name).__name__}")
            raise RequestError(400, f"Serving signature name: {shown} not found in "
                               f"signature def; this model has {model.signature_names}.")
        try:
            columns, row_format = parse_predict_request(
                body, model.input_names(signature_name), max_instances=config.max_instances,
                max_text_length=config.max_text_length)
        except ValueError as error:
            raise RequestError(400, str(error)) from None
        outputs = await predict_columns(model, signature_name, columns)
        # A JSONResponse skips FastAPI's (slow) jsonable_encoder: these are plain lists.
        return JSONResponse(format_predict_response(outputs, row_format))

    def not_supported(model, verb):
        signatures = {name: signature.method_name
                      for name, signature in model.signature_def_protos.items()}
        raise RequestError(400, (
            f"Expected a {verb} signature (method_name tensorflow/serving/{verb}); this model's "
            f"signatures are {signatures}, so :{verb} is not supported. Use :predict."))

    predict_options = dict(openapi_extra={"requestBody": _PREDICT_BODY},
                           responses=_ERROR_RESPONSES)

    @app.post("/v1/models/{name}:predict", summary="Predict (latest version)", **predict_options)
    async def model_predict(name: ModelName, request: fastapi.Request):
        return await predict(request, find_model(name))

    @app.post("/v1/models/{name}/versions/{version}:predict", summary="Predict (one version)",
              **predict_options)
    async def model_version_predict(name: ModelName, version: ModelVersion,
                                    request: fastapi.Request):
        return await predict(request, find_model(name, version=version))

    @app.post("/v1/models/{name}/labels/{label}:predict", summary="Predict (a labelled version)",
              **predict_options)
    async def model_label_predict(name: ModelName, label: ModelLabel, request: fastapi.Request):
        return await predict(request, find_model(name, label=label))

    def refuse_verb(verb):
        async def refuse(name: str, version: typing.Optional[str] = None,
                         label: typing.Optional[str] = None):
            not_supported(find_model(name, version=version, label=label), verb)
        return refuse

    for verb in ("classify", "regress"):  # TF Serving's other verbs: not for text models
        for suffix in ("", "/versions/{version}", "/labels/{label}"):
            app.add_api_route(f"/v1/models/{{name}}{suffix}:{verb}", refuse_verb(verb),
                              methods=["POST"], include_in_schema=False)

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
            return _error_response(503, "shutting down")
        return {"status": "ready", "model": config.name, "versions": versions.version_list()}

    @app.get("/demo/info", summary="What the demo page needs to know")
    async def demo_info():
        model = versions.resolve()
        info = model.export_info
        inputs = model.input_names("serving_default")  # sorted; the export's order reads better
        if sorted(info.get("inputs") or []) == inputs:
            inputs = info["inputs"]
        return {"name": config.name, "version": model.version, "task": info.get("task"),
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


def _decode_json(body):
    """The request body as JSON: UTF-8 only (as TF Serving), any malformed JSON a 400."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RequestError(400, (
            f"The request body is not UTF-8 ({error}); JSON bodies must be UTF-8 encoded "
            "(UTF-16 and other encodings are refused, as by TF Serving).")) from None
    try:
        return json.loads(text)
    except RecursionError:
        raise RequestError(400, "The request body is not valid JSON that can be read: it "
                           "nests arrays or objects too deeply.") from None
    except ValueError as error:  # JSONDecodeError, or an integer of over 4,300 digits
        raise RequestError(400, f"The request body is not valid JSON: {error}.") from None


class _RequestCounts:
    """HTTP requests the app received and answered (a response was started), by status."""

    def __init__(self):
        self.received = 0
        self.answered = 0
        self.by_status = collections.Counter()


class _TFServingPaths:
    """ASGI middleware: TF Serving's URL matching for /v1/ paths.

    Paths that match TF Serving's patterns (case-insensitively) are rewritten
    to the lower-case routes; other requests under /v1/ get its 400
    "Malformed request: METHOD PATH".
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not _V1.match(scope["path"]):
            return await self.app(scope, receive, send)
        method, path = scope["method"], scope["path"]
        pattern = {"POST": _POST_PATH, "GET": _GET_PATH}.get(method)
        match = pattern.fullmatch(path) if pattern is not None else None
        if match is None:
            response = _error_response(400, f"Malformed request: {method} {path}")
            return await response(scope, receive, send)
        parts = match.groupdict()
        canonical = "/v1/models"
        if parts["name"] is not None:
            canonical += "/" + parts["name"]
        if parts["version"] is not None:
            canonical += "/versions/" + parts["version"]
        elif parts["label"] is not None:
            canonical += "/labels/" + parts["label"]
        canonical += ":" + parts["verb"].lower() if method == "POST" else (
            "/metadata" if parts["metadata"] else "")
        if canonical != path:
            scope = {**scope, "path": canonical}
        await self.app(scope, receive, send)


class _ObserveRequests:
    """ASGI middleware: counts and times every request by its route (lighter than
    Starlette's BaseHTTPMiddleware, which costs about a millisecond per request),
    and answers an unexpected exception with a JSON 500, counted like any answer."""

    def __init__(self, app, metrics, counts):
        self.app = app
        self.metrics = metrics
        self.counts = counts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [None]
        self.counts.received += 1

        async def send_observed(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                self.counts.answered += 1
                self.counts.by_status[message["status"]] += 1
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        except Exception as error:  # a genuine internal failure: answer it, log it
            traceback.print_exception(error)
            if status[0] is None:
                response = _error_response(500, f"Internal error: {type(error).__name__}: "
                                           f"{error}")
                await response(scope, receive, send_observed)
        finally:
            endpoint = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe_request(endpoint, status[0] or 500, time.perf_counter() - start)


async def _read_body(request, max_body_bytes):
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_body_bytes:
        raise RequestError(413, f"The request body has {int(length)} bytes; at most "
                           f"{max_body_bytes} are allowed (--max-body-bytes).")
    chunks, received = [], 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_body_bytes:
            raise RequestError(413, f"The request body exceeds {max_body_bytes} bytes "
                               "(--max-body-bytes).")
        chunks.append(chunk)
    return b"".join(chunks)


# After SIGTERM, how long connections accepted just before it get to send
# their request: uvicorn closes connections that have not sent one yet.
ACCEPTED_CONNECTION_GRACE_S = 0.25


class _GracefulServer(uvicorn.Server):
    """uvicorn's server that fails readiness as soon as SIGTERM arrives, reads the
    requests of connections it has already accepted before closing them, and
    exits normally (status 0) once drained instead of re-raising the signal."""

    def handle_exit(self, sig, frame):
        self.config.app.state.shutting_down = True
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self):
        # uvicorn's own re-raises SIGTERM after a graceful shutdown, so the process
        # would die of the signal (exit status -15) after draining; a drained
        # server has stopped as asked, and says so with status 0.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

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
    (queued or in a running batch) get their answers, then the function returns
    (the process exits with status 0).

    Args:
        model_dir: a SavedModel or a TF Serving base directory (numeric versions).
        config: a `ServingConfig`.
        on_ready: optional callback `(url)` once the server listens.
    """
    config = config or ServingConfig()
    set_tensorflow_threads(config.intra_op_threads, config.inter_op_threads)
    versions = ModelVersions(model_dir, policy=config.version_policy,
                             version_labels=config.version_labels)
    app = build_serving_app(versions, config)
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
