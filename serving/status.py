"""TensorFlow Serving's Status: a gRPC status code and the message it gives.

The config-file checks (serving.model_config) and every layer of the local
server raise ServingError; each transport maps it to its protocol once
(local_server/errors.py).
"""

import grpc


class ServingError(Exception):
    """An error for the client, with the gRPC status code it maps to."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


def invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def first_line(error: Exception) -> str:
    """The first line of an error's message (TensorFlow's run on), or its type's name."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
