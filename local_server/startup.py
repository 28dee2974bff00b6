"""What the server starts with: its options and the files they name, read and checked.

Start-up follows tensorflow_model_server's Server::BuildAndStart: the model config is
--model_config_file, or the one model of --model_name and --model_base_path. Nothing here
imports TensorFlow, so `python -m local_server` reports a bad file before it loads
TensorFlow, which takes seconds.
"""

import dataclasses
import os

import grpc

from local_server import tls
from local_server.batching import BatchingOptions, BatchingParameters, options_from_parameters
from local_server.metrics import DEFAULT_PATH
from local_server.options import ServerOptions
from local_server.protos import monitoring_config_pb2
from serving import model_config
from serving.status import ServingError, invalid


class StartupError(Exception):
    """The server cannot start with these options; the message says why."""


@dataclasses.dataclass(frozen=True)
class Startup:
    options: ServerOptions
    config: model_config.ModelServerConfig
    batching: BatchingOptions | None  # None: --enable_batching is off.
    metrics_path: str  # Where the Prometheus page is on the REST port; "": none.
    credentials: grpc.ServerCredentials | None  # None: plaintext gRPC.


def read(options: ServerOptions) -> Startup:
    """The options with their files read; StartupError if they cannot start a server."""
    try:
        # TLS first: a wrong certificate stops the server before anything else is read.
        credentials = (
            tls.server_credentials(tls.read(options.ssl_config_file))
            if options.ssl_config_file
            else None
        )
        if options.model_config_file:
            config = model_config.read(options.model_config_file)
        elif options.model_base_path:
            config = model_config.single_model(
                options.model_name, os.path.abspath(options.model_base_path)
            )
        else:
            raise invalid(
                "Both server_options.model_base_path and server_options.model_config_file "
                "are empty!"
            )
        if options.batching_parameters_file and not options.enable_batching:
            raise invalid(
                "server_options.batching_parameters_file is set without setting "
                "server_options.enable_batching to true."
            )
        batching = (
            batching_options(options.batching_parameters_file) if options.enable_batching else None
        )
        metrics_path = prometheus_path(options.monitoring_config_file)
    except ServingError as e:
        raise StartupError(str(e)) from e
    return Startup(options, config, batching, metrics_path, credentials)


def batching_options(batching_parameters_file: str) -> BatchingOptions:
    """What a --batching_parameters_file sets (the defaults if there is none), checked."""
    params = (
        model_config.read_text_proto(batching_parameters_file, BatchingParameters())
        if batching_parameters_file
        else None
    )
    return options_from_parameters(params)


def prometheus_path(monitoring_config_file: str) -> str:
    """Where a --monitoring_config_file puts the metrics page on the REST port ("" if none)."""
    if not monitoring_config_file:
        return ""
    monitoring = model_config.read_text_proto(
        monitoring_config_file, monitoring_config_pb2.MonitoringConfig()
    )
    if not monitoring.prometheus_config.enable:
        return ""
    return monitoring.prometheus_config.path or DEFAULT_PATH
