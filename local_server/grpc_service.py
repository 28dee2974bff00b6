"""The gRPC transport: tensorflow-serving-api's servicers on a bounded thread pool."""

import time
from concurrent import futures

import grpc
from absl import logging
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from local_server.api import ModelServer
from serving.status import ServingError, first_line


def _method(name: str, api: str = ""):
    """A servicer method calling ModelServer.<name>; api: its name in the request metrics."""

    def handler(self, request, context):
        start, code = time.perf_counter(), grpc.StatusCode.OK
        try:
            return getattr(self.server, name)(request)
        except ServingError as e:
            code = e.code
            context.abort(e.code, str(e))
        except Exception as e:
            code = grpc.StatusCode.INTERNAL
            logging.exception("gRPC %s failed", name)
            context.abort(grpc.StatusCode.INTERNAL, first_line(e))
        finally:
            if api:  # As prediction_service_impl.cc, for Predict, Classify and Regress.
                self.server.metrics.record_request(
                    request.model_spec.name, api, "GRPC", code.name, time.perf_counter() - start
                )

    return handler


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, server: ModelServer):
        self.server = server

    Predict = _method("predict", "Predict")
    Classify = _method("classify", "Classify")
    Regress = _method("regress", "Regress")
    MultiInference = _method("multi_inference")
    GetModelMetadata = _method("metadata")


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, server: ModelServer):
        self.server = server

    GetModelStatus = _method("status")
    HandleReloadConfigRequest = _method("handle_reload_config")


def start(
    server: ModelServer,
    host: str,
    port: int,
    max_bytes: int,
    threads: int,
    credentials: grpc.ServerCredentials | None = None,
) -> grpc.Server:
    """A started gRPC server, over TLS with `credentials`; OSError if it cannot listen."""
    grpc_server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads),
        options=[
            ("grpc.max_receive_message_length", max_bytes),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 0),  # A busy port is an error, not a shared port.
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(server), grpc_server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(server), grpc_server)
    address = f"{host}:{port}"
    try:
        if credentials is None:
            bound = grpc_server.add_insecure_port(address)
        else:
            bound = grpc_server.add_secure_port(address, credentials)
    except RuntimeError as e:
        raise OSError(f"cannot listen on {address} for gRPC: {e}") from e
    if bound == 0:
        raise OSError(f"cannot listen on {address} for gRPC: is the port in use?")
    grpc_server.start()
    return grpc_server
