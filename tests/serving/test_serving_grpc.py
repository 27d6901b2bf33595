"""TF Serving's gRPC API on `electra-tf serve --grpc-port`, called as TF Serving users call it.

The client side is the `tensorflow-serving-api` package's own stubs and protos:
a `PredictRequest` whose `inputs["text"]` is a string TensorProto. Its answers
must equal the REST answers of the same server.
"""

import base64

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from google.protobuf import json_format
from serving_helpers import LABEL_NAMES, TEXTS, in_process_token_counts, shared_server
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

TIMEOUT_S = 30


@pytest.fixture(scope="module")
def server():
    return shared_server()


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(server.grpc_target) as channel:
        yield channel


def predict_request(texts, signature_name="serving_default", name="sentiment", version=None,
                    label=None):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    request.inputs["text"].CopyFrom(tf.make_tensor_proto(texts))
    return request


def test_predict_equals_the_rest_answer(server, channel):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    response = stub.Predict(predict_request(TEXTS), TIMEOUT_S)
    outputs = {name: tf.make_ndarray(tensor) for name, tensor in response.outputs.items()}
    assert sorted(outputs) == ["label", "label_id", "probabilities"]
    assert response.model_spec.name == "sentiment"
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    rest = requests.post(server.model_url(":predict"), json={"inputs": TEXTS}).json()["outputs"]
    assert outputs["probabilities"].dtype == np.float32
    # REST writes float32's shortest form, which reads back as the same float32.
    np.testing.assert_array_equal(outputs["probabilities"],
                                  np.array(rest["probabilities"], np.float32))
    assert outputs["label_id"].tolist() == rest["label_id"]
    assert [label.decode() for label in outputs["label"]] == rest["label"]
    assert set(rest["label"]) <= set(LABEL_NAMES)


def test_predict_a_signature_a_version_a_label_and_an_output_filter(server, channel):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    counts = stub.Predict(predict_request(TEXTS, "count_tokens"), TIMEOUT_S)
    assert tf.make_ndarray(counts.outputs["num_tokens"]).tolist() == (
        in_process_token_counts(TEXTS))
    latest = stub.Predict(predict_request(TEXTS[:2]), TIMEOUT_S)
    for spec in (dict(version=1), dict(label="stable")):
        response = stub.Predict(predict_request(TEXTS[:2], **spec), TIMEOUT_S)
        assert response.outputs == latest.outputs and response.model_spec.version.value == 1
    request = predict_request(TEXTS[:2])
    request.output_filter.append("label")
    assert sorted(stub.Predict(request, TIMEOUT_S).outputs) == ["label"]


def test_get_model_metadata_equals_the_rest_metadata(server, channel):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "sentiment"
    request.metadata_field.append("signature_def")
    response = stub.GetModelMetadata(request, TIMEOUT_S)
    assert response.model_spec.name == "sentiment" and response.model_spec.version.value == 1
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_defs)
    as_json = json_format.MessageToDict(signature_defs, preserving_proto_field_name=True,
                                        always_print_fields_with_no_presence=True)
    rest = requests.get(server.model_url("/metadata")).json()
    assert as_json == rest["metadata"]["signature_def"]


def test_get_model_status_equals_the_rest_status(server, channel):
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "sentiment"
    response = stub.GetModelStatus(request, TIMEOUT_S)
    as_json = json_format.MessageToDict(response, preserving_proto_field_name=True,
                                        always_print_fields_with_no_presence=True)
    rest = requests.get(server.model_url()).json()
    assert as_json == rest, (as_json, rest)


@pytest.mark.parametrize("change,code,message", [
    (dict(name="other"), grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest"),
    (dict(version=7), grpc.StatusCode.NOT_FOUND, "Specific(sentiment, 7)"),
    (dict(label="canary"), grpc.StatusCode.INVALID_ARGUMENT,
     "Unrecognized servable version label: canary"),
    (dict(signature_name="classify"), grpc.StatusCode.INVALID_ARGUMENT, "not found in signature"),
    (dict(texts=["a"] * 9), grpc.StatusCode.INVALID_ARGUMENT, "at most 8 are allowed"),
    (dict(texts=[[1.5]]), grpc.StatusCode.INVALID_ARGUMENT, "expected a string tensor"),
    (dict(texts=[["a", "b"]]), grpc.StatusCode.INVALID_ARGUMENT, "expected a non-empty vector"),
    (dict(texts=["x" * 2001]), grpc.StatusCode.INVALID_ARGUMENT, "at most 2000 are allowed"),
])
def test_bad_requests_get_tf_serving_status_codes(server, channel, change, code, message):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    texts = change.pop("texts", TEXTS[:1])
    with pytest.raises(grpc.RpcError) as raised:
        stub.Predict(predict_request(texts, **change), TIMEOUT_S)
    assert raised.value.code() == code
    assert message in raised.value.details()
    assert stub.Predict(predict_request(TEXTS[:1]), TIMEOUT_S).outputs["label"]  # still fine


def test_bytes_that_are_not_utf8_reach_the_model_as_over_rest(server, channel):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    data = b"\xff\xfe caf\xe9 good"
    response = stub.Predict(predict_request([data]), TIMEOUT_S)
    rest = requests.post(server.model_url(":predict"), json={
        "instances": [{"b64": base64.b64encode(data).decode()}]}).json()["predictions"][0]
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["probabilities"])[0],
                                  np.array(rest["probabilities"], np.float32))
