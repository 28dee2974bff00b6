"""local_server.errors: TensorFlow Serving's mapping of error codes to HTTP statuses."""

import grpc
import pytest
import tensorflow as tf

from local_server.errors import grpc_code, http_status

# ToHTTPStatusCode in TensorFlow Serving's model_servers/http_server.cc.
TENSORFLOW_SERVING = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}


@pytest.mark.parametrize("code", list(grpc.StatusCode), ids=lambda c: c.name)
def test_every_code_has_tensorflow_servings_http_status(code):
    assert http_status(code) == TENSORFLOW_SERVING[code.name]


@pytest.mark.parametrize(
    "error, code",
    [
        pytest.param(tf.errors.InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT, id="400"),
        pytest.param(tf.errors.NotFoundError, grpc.StatusCode.NOT_FOUND, id="404"),
        pytest.param(
            tf.errors.ResourceExhaustedError, grpc.StatusCode.RESOURCE_EXHAUSTED, id="429"
        ),
        pytest.param(tf.errors.InternalError, grpc.StatusCode.INTERNAL, id="500"),
    ],
)
def test_tensorflow_error_codes_are_grpc_codes(error, code):
    assert grpc_code(error(None, None, "x").error_code) == code
