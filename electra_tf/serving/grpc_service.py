"""TF Serving's gRPC API for `electra-tf serve`: PredictionService and ModelService.

Served by grpcio's asyncio server on the REST server's event loop, with the
protos of the `tensorflow-serving-api` package, so that TF Serving clients
(`PredictionServiceStub(channel).Predict(request)`) work unchanged. Predict
requests join the same dynamic batches as REST requests and get the same answers.
"""

import collections
import traceback

import numpy as np
import tensorflow as tf

from electra_tf.serving.request_error import RequestError

try:
    import grpc
    from tensorflow_serving.apis import (
        get_model_metadata_pb2,
        get_model_status_pb2,
        model_service_pb2_grpc,
        predict_pb2,
        prediction_service_pb2_grpc,
    )
except ImportError as error:  # optional dependencies: the `serve` extra
    raise ImportError(
        "electra-tf serve --grpc-port needs grpcio and tensorflow-serving-api; install them "
        "with `pip install \"electra-tf[serve]\"`."
    ) from error

# ModelVersionStatus.State.AVAILABLE and tensorflow.error.Code.OK.
_AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE
_OK = 0


async def start_grpc_server(versions, config, predict_columns, counts=None):
    """Starts TF Serving's gRPC services on `config.host:config.grpc_port`.

    Args:
        versions: the `ModelVersions` served.
        config: the `ServingConfig` (name, host, grpc_port, limits).
        predict_columns: `async (model, signature_name, {input: list of bytes}) -> outputs`,
            the REST app's batched predict.
        counts: optional `collections.Counter` of answers by gRPC status code name.

    Returns:
        The started `grpc.aio.Server`; `await server.stop(grace)` stops it.
    """
    server = grpc.aio.server()
    services = TFServingServices(versions, config, predict_columns, counts)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        services.prediction_servicer(), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(services.model_servicer(), server)
    address = f"{config.host}:{config.grpc_port}"
    try:
        server.add_insecure_port(address)
    except RuntimeError as error:
        raise ValueError(f"Cannot listen for gRPC on {address} ({error}); pick a free port "
                         "with --grpc-port.") from error
    await server.start()
    return server


class TFServingServices:
    """The handlers of TF Serving's Predict, GetModelMetadata and GetModelStatus RPCs.

    Each turns a `RequestError` into the gRPC status TF Serving gives it
    (NOT_FOUND for an unknown model or version, INVALID_ARGUMENT for a bad
    request, UNAVAILABLE when overloaded).

    Args:
        versions: the `ModelVersions` served.
        config: the `ServingConfig`.
        predict_columns: the REST app's batched predict (see `start_grpc_server`).
        counts: optional `collections.Counter` of answers by gRPC status code name.

    The Predict handler, called directly (the server runs it for each RPC):

    >>> import asyncio, tempfile
    >>> from electra_tf.serving.model_versions import ModelVersions
    >>> from electra_tf.serving.served_model import ServedModel
    >>> from electra_tf.serving.serving_config import ServingConfig
    >>> class Lengths(tf.Module):
    ...     @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    ...     def serve(self, text):
    ...         return {"length": tf.strings.length(text)}
    >>> path = tempfile.mkdtemp()
    >>> module = Lengths()
    >>> tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    >>> versions = ModelVersions.from_models({"1": ServedModel(path, version="1")})
    >>> async def predict_columns(model, signature_name, columns):  # unbatched, for the example
    ...     return model.predict(signature_name, columns)
    >>> services = TFServingServices(versions, ServingConfig(name="lengths"), predict_columns)
    >>> request = predict_pb2.PredictRequest()
    >>> request.model_spec.name = "lengths"
    >>> request.inputs["text"].CopyFrom(tf.make_tensor_proto([b"hello", b"hi"]))
    >>> response = asyncio.run(services.predict(request))
    >>> tf.make_ndarray(response.outputs["length"]), response.model_spec.version.value
    (array([5, 2], dtype=int32), 1)
    >>> request.model_spec.name = "other"
    >>> asyncio.run(services.predict(request))
    Traceback (most recent call last):
    ...
    electra_tf.serving.request_error.RequestError: Servable not found for request:
    Latest(other); this server serves model 'lengths'.
    """

    def __init__(self, versions, config, predict_columns, counts=None):
        self.versions = versions
        self.config = config
        self.predict_columns = predict_columns
        self.counts = counts if counts is not None else collections.Counter()

    def prediction_servicer(self):
        services = self

        class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
            async def Predict(self, request, context):  # noqa: N802  (the proto's name)
                return await services.answer(services.predict, request, context)

            async def GetModelMetadata(self, request, context):  # noqa: N802
                return await services.answer(services.model_metadata, request, context)

        return PredictionServicer()

    def model_servicer(self):
        services = self

        class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
            async def GetModelStatus(self, request, context):  # noqa: N802
                return await services.answer(services.model_status, request, context)

        return ModelServicer()

    async def answer(self, handler, request, context):
        try:
            response = await handler(request)
        except RequestError as error:
            code, message = getattr(grpc.StatusCode, error.grpc_code), error.message
        except Exception as error:  # a genuine internal failure: log it, say what it was
            traceback.print_exception(error)
            code = grpc.StatusCode.INTERNAL
            message = f"Internal error: {type(error).__name__}: {error}"
        else:
            self.counts["OK"] += 1
            return response
        self.counts[code.name] += 1
        await context.abort(code, message)

    def find_model(self, model_spec):
        """The ServedModel a `ModelSpec` names (name, optional version or version_label)."""
        name = model_spec.name
        choice = model_spec.WhichOneof("version_choice")
        version = str(model_spec.version.value) if choice == "version" else None
        label = model_spec.version_label if choice == "version_label" else None
        if name != self.config.name:
            spec = (f"Specific({name}, {version})" if version is not None
                    else f"Label({name}, {label})" if label is not None else f"Latest({name})")
            raise RequestError(404, f"Servable not found for request: {spec}; this server "
                               f"serves model {self.config.name!r}.")
        return self.versions.resolve(version=version, label=label, name=name)

    async def predict(self, request):
        model = self.find_model(request.model_spec)
        signature_name = request.model_spec.signature_name or "serving_default"
        if signature_name not in model.signature_names:
            raise RequestError(400, f"Serving signature name: {signature_name!r} not found in "
                               f"signature def; this model has {model.signature_names}.")
        expected = model.input_names(signature_name)
        if sorted(request.inputs) != expected:
            raise RequestError(400, (
                f"input size does not match signature: {len(request.inputs)}!="
                f"{len(expected)} len({{{', '.join(sorted(request.inputs))}}}) != "
                f"len({{{', '.join(expected)}}}); signature {signature_name!r} takes inputs "
                f"{expected}."))
        columns = {name: self._texts(name, request.inputs[name]) for name in expected}
        lengths = {name: len(values) for name, values in columns.items()}
        if len(set(lengths.values())) > 1:
            raise RequestError(400, f"All inputs must have the same number of items; received "
                               f"{lengths}.")
        outputs = await self.predict_columns(model, signature_name, columns)
        names = sorted(outputs)
        if request.output_filter:
            unknown = sorted(set(request.output_filter) - set(outputs))
            if unknown:
                raise RequestError(400, f"output tensor alias not found in signature: "
                                   f"{unknown}; outputs are {names}.")
            names = [name for name in names if name in set(request.output_filter)]
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.config.name
        response.model_spec.version.value = int(model.version)
        response.model_spec.signature_name = signature_name
        for name in names:
            response.outputs[name].CopyFrom(tf.make_tensor_proto(np.asarray(outputs[name])))
        return response

    def _texts(self, name, tensor_proto):
        """One input TensorProto as a list of bytes: a DT_STRING vector within the limits."""
        if tensor_proto.dtype != tf.string.as_datatype_enum:
            raise RequestError(400, (
                f"Input {name!r} is {tf.dtypes.as_dtype(tensor_proto.dtype).name}; expected "
                "a string tensor (DT_STRING), e.g. tf.make_tensor_proto(['a text'])."))
        try:
            values = tf.make_ndarray(tensor_proto)
        except (ValueError, TypeError) as error:
            raise RequestError(400, f"Input {name!r} is not a valid TensorProto: {error}.")
        if values.ndim != 1 or values.shape[0] == 0:
            raise RequestError(400, (
                f"Input {name!r} has shape {list(values.shape)}; expected a non-empty vector "
                "of texts [batch]."))
        limit = self.config.max_instances
        if values.shape[0] > limit:
            raise RequestError(400, (
                f"The request has {values.shape[0]} instances; at most {limit} are allowed per "
                "request (--max-instances). Split it into smaller requests."))
        texts = [bytes(value) for value in values.tolist()]
        for index, text in enumerate(texts):
            if len(text) > self.config.max_text_length:
                raise RequestError(400, (
                    f"Input {name!r}, item {index} has {len(text)} bytes; at most "
                    f"{self.config.max_text_length} are allowed (--max-text-length)."))
        return texts

    async def model_metadata(self, request):
        model = self.find_model(request.model_spec)
        fields = list(request.metadata_field)
        if not fields:
            raise RequestError(400, "GetModelMetadataRequest must specify at least one "
                               "metadata_field; this server supports 'signature_def'.")
        unsupported = [field for field in fields if field != "signature_def"]
        if unsupported:
            raise RequestError(400, f"Metadata field {unsupported[0]} is not supported; this "
                               "server supports 'signature_def'.")
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.config.name
        response.model_spec.version.value = int(model.version)
        signature_defs = get_model_metadata_pb2.SignatureDefMap()
        for name, signature in model.signature_def_protos.items():
            signature_defs.signature_def[name].CopyFrom(signature)
        response.metadata["signature_def"].Pack(signature_defs)
        return response

    async def model_status(self, request):
        spec = request.model_spec
        if spec.WhichOneof("version_choice") is None:
            self.find_model(spec)  # the name must be served
            served = [self.versions.models[v] for v in self.versions.version_list()]
        else:
            served = [self.find_model(spec)]
        response = get_model_status_pb2.GetModelStatusResponse()
        for model in served:
            status = response.model_version_status.add()
            status.version = int(model.version)
            status.state = _AVAILABLE
            status.status.error_code = _OK
        return response
