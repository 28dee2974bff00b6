"""local_server.rest_api against TensorFlow Serving's http_rest_api_handler_test.cc.

In process, on a rebuild of TensorFlow Serving's half_plus_two test model,
set up as that test sets it up: versions 123 and 124 on disk, a `specific`
policy serving 123, then a config reload that labels it "Version_Label". Each
request is one of that test's, with the status code and the answer or message
fragment it expects.
"""

import json

import pytest
from half_plus_two import write_tf1

from local_server import rest_api
from local_server.api import ModelServer
from serving import model_config

MODEL = "half_plus_two"
LABEL = "Version_Label"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("models") / MODEL
    write_tf1(base / "123")
    write_tf1(base / "124")
    config = model_config.single_model(MODEL, str(base))
    config.model_config_list.config[0].model_version_policy.specific.versions.append(123)
    server = ModelServer(config)
    server.poll()
    config.model_config_list.config[0].version_labels[LABEL] = 123
    server.reload_config(config)
    return server


def call(server, method, path, body=""):
    status, data = rest_api.handle(server, method, path, body.encode())
    return status, json.loads(data)


@pytest.mark.parametrize(
    "method, path, message",
    [
        pytest.param("GET", "/v1/foo", "Malformed request", id="GET /v1/foo"),
        pytest.param("POST", "/v1/foo", "Malformed request", id="POST /v1/foo"),
        pytest.param("GET", "/v1/models", "Missing model name", id="GET /v1/models"),
        pytest.param("GET", "/v1/models/debug/model_name", "Malformed request", id="debug path"),
        pytest.param("POST", "/v1/models", "Malformed request", id="POST /v1/models"),
        pytest.param("GET", "/v1/models/foo:predict", "Malformed request", id="GET predict"),
        pytest.param("GET", "/v1/models/foo/version/50:predict", "Malformed request", id="version"),
        pytest.param("POST", "/v1/models/foo/version/50:regress", "Malformed request", id="regr"),
        pytest.param(
            "POST", "/v1/models/foo/versions/HELLO:regress", "Malformed request", id="HELLO"
        ),
        pytest.param(
            "POST",
            f"/v1/models/foo/versions/{2**64 - 1}:regress",
            "Failed to convert version",
            id="uint64 version",
        ),
        pytest.param("POST", "/v1/models/foo/metadata", "Malformed request", id="POST metadata"),
        pytest.param(
            "POST", "/v1/models/foo/label/some_label:regress", "Malformed request", id="label"
        ),
        pytest.param(
            "POST",
            "/v1/models/foo/versions/50/labels/some_label:regress",
            "Malformed request",
            id="version and label",
        ),
        pytest.param(
            "POST", "/v1/models/foo/versions/some_label:regress", "Malformed request", id="vlabel"
        ),
        pytest.param("PUT", f"/v1/models/{MODEL}", "Malformed request", id="PUT"),
        pytest.param("DELETE", f"/v1/models/{MODEL}", "Malformed request", id="DELETE"),
        pytest.param("POST", f"/v1/models/{MODEL}:PREDICT", "Malformed request", id="verb case"),
    ],
)
def test_unsupported_api_calls(server, method, path, message):
    status, answer = call(server, method, path)
    assert status == 400, answer
    assert message in answer["error"]


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/v1/models/foo:predict", id="unknown model"),
        pytest.param("/v1/models/foo/versions/50:predict", id="unknown model and version"),
        pytest.param(f"/v1/models/{MODEL}/versions/99:predict", id="unknown version"),
    ],
)
def test_predict_model_name_version_errors(server, path):
    status, answer = call(server, "POST", path, '{ "instances": [1] }')
    assert status == 404 and "Servable not found for request" in answer["error"]


@pytest.mark.parametrize(
    "path, body, message",
    [
        pytest.param(":predict", "", "JSON Parse error: The document is empty", id="empty"),
        pytest.param(
            ":predict", "instances = [1, 2]", "JSON Parse error: Invalid value", id="bad JSON"
        ),
        pytest.param(
            ":predict", '{ "instances": ["x", "y"] }', "not of expected type: float", id="type"
        ),
        pytest.param(
            "/labels/Version_Nonexistent:predict",
            '{ "instances": ["x", "y"] }',
            "Unrecognized servable version label",
            id="label",
        ),
        pytest.param(
            ":predict",
            '{ "signature_name": 100 }',
            "'signature_name' key must be a string value.",
            id="signature_name type",
        ),
        pytest.param(
            ":predict",
            '{ "signature_name": "nope", "instances": [1.0] }',
            'Serving signature name: "nope" not found in signature def',
            id="unknown signature",
        ),
        pytest.param(
            ":classify",
            '{ "signature_name": "regress_x_to_y", "examples": [{"x": 1.0}] }',
            'Expected classification signature outputs to contain at least one of "classes" or '
            '"scores"',
            id="classify on a regress signature",
        ),
        pytest.param(
            ":regress",
            '{ "signature_name": "nope", "examples": [{"x": 1.0}] }',
            "No signature was found with the name: nope",
            id="regress unknown signature",
        ),
        pytest.param(
            ":regress",
            '{ "signature_name": "regress_x_to_y", "examples": [{"y": 1.0}] }',
            "Feature: x (data type: float) is required but could not be found.",
            id="regress without feature x",
        ),
    ],
)
def test_predict_classify_regress_request_errors(server, path, body, message):
    status, answer = call(server, "POST", f"/v1/models/{MODEL}{path}", body)
    assert status == 400, answer
    assert message in answer["error"]


@pytest.mark.parametrize(
    "path, body, expected",
    [
        pytest.param(
            ":predict",
            '{"instances": [[1.0, 2.0], [3.0, 4.0]]}',
            {"predictions": [[2.5, 3.0], [3.5, 4.0]]},
            id="latest",
        ),
        pytest.param(
            "/versions/123:predict",
            '{"instances": [1.0, 2.0]}',
            {"predictions": [2.5, 3.0]},
            id="version",
        ),
        pytest.param(
            "/versions/123:predict",
            '{"signature_name": "serving_default", "instances": [3.0, 4.0]}',
            {"predictions": [3.5, 4.0]},
            id="signature_name",
        ),
        pytest.param(
            "/versions/123:predict",
            '{"signature_name": "serving_default", "inputs": [3.0, 4.0]}',
            {"outputs": [3.5, 4.0]},
            id="columnar",
        ),
        pytest.param(
            ":regress",
            '{"signature_name": "regress_x_to_y", "examples": [ { "x": 80.0 } ] }',
            {"results": [42]},
            id="regress",
        ),
        pytest.param(
            "/versions/123:regress",
            '{"signature_name": "regress_x_to_y", "examples": [ { "x": 80.0 } ] }',
            {"results": [42]},
            id="regress version",
        ),
        pytest.param(
            f"/labels/{LABEL}:predict",
            '{"instances": [1.0, 2.0]}',
            {"predictions": [2.5, 3.0]},
            id="label",
        ),
        pytest.param(
            f"/labels/{LABEL}:regress",
            '{"signature_name": "regress_x_to_y", "examples": [ { "x": 80.0 } ] }',
            {"results": [42]},
            id="regress label",
        ),
        pytest.param(
            ":classify",
            '{"signature_name": "classify_x_to_y", "examples": [ { "x": 20.0 } ] }',
            {"results": [[["", 12]]]},
            id="classify",
        ),
        pytest.param(
            f"/labels/{LABEL}:classify",
            '{"signature_name": "classify_x_to_y", "examples": [ { "x": 10.0 } ] }',
            {"results": [[["", 7]]]},
            id="classify label",
        ),
        pytest.param(
            ":regress",
            '{"signature_name": "regress_x_to_y2", "context": {"x": 2.0},'
            ' "examples": [{"x": 80.0}, {}]}',
            {"results": [43, 4]},
            id="regress with context",
        ),
    ],
)
def test_predict_classify_regress(server, path, body, expected):
    assert call(server, "POST", f"/v1/models/{MODEL}{path}", body) == (200, expected)


STATUS = {
    "model_version_status": [
        {
            "version": "123",
            "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""},
        }
    ]
}


@pytest.mark.parametrize(
    "suffix",
    [
        pytest.param("", id="all versions"),
        pytest.param("/versions/123", id="version"),
        pytest.param(f"/labels/{LABEL}", id="label"),
    ],
)
def test_get_status(server, suffix):
    assert call(server, "GET", f"/v1/models/{MODEL}{suffix}") == (200, STATUS)


def test_get_status_of_unknown_models_and_versions(server):
    status, answer = call(server, "GET", "/v1/models/foo")
    assert status == 404 and answer["error"] == "Could not find any versions of model foo"
    status, answer = call(server, "GET", f"/v1/models/{MODEL}/versions/7")
    assert status == 404 and answer["error"] == f"Could not find version 7 of model {MODEL}"


def test_get_model_metadata(server):
    status, answer = call(server, "GET", f"/v1/models/{MODEL}/metadata")
    assert status == 200
    assert answer["model_spec"] == {"name": MODEL, "version": "123", "signature_name": ""}
    signatures = answer["metadata"]["signature_def"]["signature_def"]
    assert sorted(signatures) == [
        "classify_x_to_y",
        "regress_x2_to_y3",
        "regress_x_to_y",
        "regress_x_to_y2",
        "serving_default",
    ]
    regress = signatures["regress_x_to_y"]
    assert regress["method_name"] == "tensorflow/serving/regress"
    assert regress["inputs"]["inputs"]["dtype"] == "DT_STRING"
    assert regress["outputs"]["outputs"]["name"] == "y:0"


def test_cors_preflight_needs_an_origin(server):
    assert rest_api.handle(server, "OPTIONS", f"/v1/models/{MODEL}", b"", "https://a.b") == (
        200,
        b"",
    )
    status, data = rest_api.handle(server, "OPTIONS", f"/v1/models/{MODEL}", b"")
    assert status == 400 and b"Origin header is missing in CORS preflight" in data
