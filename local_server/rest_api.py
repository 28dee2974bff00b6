"""TensorFlow Serving's REST API without the sockets: (method, path, body) -> (status, JSON).

The paths, their regular expressions and the order of the checks are those of
TensorFlow Serving's model_servers/http_rest_api_handler.cc and
http_rest_api_util.cc, so that a request gets the status and message there.
"""

import re
import time
import urllib.parse

import grpc
from google.protobuf import json_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)

from local_server import rest_codec
from local_server.api import ModelServer
from local_server.errors import http_status
from local_server.servable import DEFAULT_SIGNATURE
from serving.status import ServingError, invalid

# Paths under /v1/ are the API's; anything else is not found (kPathRegex).
API_PATH = re.compile(r"/v1/.*", re.IGNORECASE | re.DOTALL)
_VERSION_OR_LABEL = r"(?:(?:/versions/([0-9]+))|(?:/labels/([^/:]+)))?"
_PREDICTION_PATH = re.compile(
    r"/v1/models/([^/:]+)" + _VERSION_OR_LABEL + r":(classify|regress|predict)", re.IGNORECASE
)
_STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?" + _VERSION_OR_LABEL + r"(?:/(metadata))?", re.IGNORECASE
)
_CORS_ORIGIN = re.compile(r"https?://")
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET",
    "Access-Control-Allow-Headers": "Content-Type",
}


def handle(
    server: ModelServer, method: str, path: str, body: bytes, origin: str = ""
) -> tuple[int, bytes]:
    """One request of the API (a path under /v1/); never raises for a client's error."""
    if method == "OPTIONS":  # A CORS preflight.
        if not _CORS_ORIGIN.search(origin):
            error = "Origin header is missing in CORS preflight"
            return http_status(grpc.StatusCode.FAILED_PRECONDITION), error_body(error)
        return 200, b""
    start = time.perf_counter()
    request = {"model": "", "api": ""}  # What the path names, for the metrics.
    code = grpc.StatusCode.OK
    try:
        return 200, rest_codec.dumps(_process(server, method, path, body, request))
    except ServingError as e:
        code = e.code
        return http_status(e.code), error_body(str(e))
    finally:
        # As http_server.cc: every request counted under its model and status.
        server.metrics.record_request(
            request["model"], request["api"], "REST", code.name, time.perf_counter() - start
        )


def error_body(message: str) -> bytes:
    """TensorFlow Serving's error answer: {"error": message}."""
    return rest_codec.dumps({"error": message})


def _process(server: ModelServer, method: str, path: str, body: bytes, request: dict) -> dict:
    malformed = invalid(f"Malformed request: {method} {path}")
    match = None
    if method == "POST":
        match = _PREDICTION_PATH.fullmatch(path)
    elif method == "GET":
        match = _STATUS_PATH.fullmatch(path)
    if not match:
        raise malformed
    name, version, label, verb = match.groups()
    spec = _model_spec(name or "", version, label)
    request["model"] = spec.name
    request["api"] = verb if method == "POST" else ""
    if method == "POST":
        if verb == "predict":
            return _predict(server, spec, body)
        if verb == "classify":
            request = _examples_request(classification_pb2.ClassificationRequest, spec, body)
            return rest_codec.classification_results(server.classify(request).result)
        if verb == "regress":
            request = _examples_request(regression_pb2.RegressionRequest, spec, body)
            return rest_codec.regression_results(server.regress(request).result)
        raise malformed  # A verb in other letter case: matched, but not dispatched.
    if not spec.name:
        raise invalid("Missing model name in request.")
    if verb == "metadata":
        return _metadata(server, spec)
    request = get_model_status_pb2.GetModelStatusRequest(model_spec=spec)
    return _to_json(server.status(request))


def _model_spec(name: str, version: str | None, label: str | None) -> model_pb2.ModelSpec:
    """ParseModelInfo and FillModelSpecWithNameVersionAndLabel."""
    spec = model_pb2.ModelSpec(name=urllib.parse.unquote(name))
    if version is not None:
        number = int(version)
        if number >= 2**63:
            raise invalid(f"Failed to convert version: {version} to numeric.")
        spec.version.value = number
    if label is not None:
        spec.version_label = urllib.parse.unquote(label)
    return spec


def _predict(server: ModelServer, spec: model_pb2.ModelSpec, body: bytes) -> dict:
    fast = rest_codec.fast_predict(body)
    doc = None if fast else rest_codec.parse(body)
    spec.signature_name = fast.signature_name if fast else rest_codec.signature_name(doc)
    servable = server.servable(spec)
    name = spec.signature_name or DEFAULT_SIGNATURE
    if name not in servable.signature_defs:
        raise invalid(f'Serving signature name: "{name}" not found in signature def')
    signature_inputs = servable.signature_defs[name].inputs
    inputs = rest_codec.fast_inputs(fast, signature_inputs) if fast else None
    if inputs is not None:
        row_format = fast.row_format
    else:
        doc = doc or rest_codec.parse(body)
        inputs, row_format = rest_codec.predict_inputs(
            doc, body, signature_inputs, spec.signature_name
        )
    request = predict_pb2.PredictRequest(model_spec=spec)
    outputs = server.predict_arrays(servable, request, inputs)
    return rest_codec.predict_outputs(outputs, row_format)


def _examples_request(request_type, spec: model_pb2.ModelSpec, body: bytes):
    """A ClassificationRequest or RegressionRequest from its JSON (the same for both)."""
    doc = rest_codec.parse(body)
    spec.signature_name = rest_codec.signature_name(doc)
    return request_type(model_spec=spec, input=rest_codec.examples_input(doc))


def _metadata(server: ModelServer, spec: model_pb2.ModelSpec) -> dict:
    request = get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=spec, metadata_field=["signature_def"]
    )
    response = server.metadata(request)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_map)
    return {
        "model_spec": _to_json(response.model_spec),
        "metadata": {"signature_def": _to_json(signature_map)},
    }


def _to_json(message) -> dict:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
