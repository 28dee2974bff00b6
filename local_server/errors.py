"""Status codes mapped to each transport, in one place.

Every layer raises serving.status.ServingError; gRPC aborts with its code,
REST answers `{"error": message}` with `http_status(code)`.
"""

import grpc

from serving.status import ServingError

# TensorFlow Serving's ToHTTPStatusCode (model_servers/http_server.cc).
_HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}


def servable_not_found(spec: str) -> ServingError:
    """No loaded version answers `spec`: TensorFlow Serving's words for it."""
    return ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {spec}")


def http_status(code: grpc.StatusCode) -> int:
    return _HTTP_STATUS.get(code, 500)


def grpc_code(tf_code: int) -> grpc.StatusCode:
    """The gRPC code of a tf.errors code (both are absl's codes, same numbers)."""
    return next((c for c in grpc.StatusCode if c.value[0] == tf_code), grpc.StatusCode.UNKNOWN)
