"""The local server's settings, one value each, named after tensorflow_model_server's flags."""

import dataclasses
import os

from serving.env import DEFAULTS


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    model_name: str = "default"
    model_base_path: str = ""
    # A ModelServerConfig text file; it wins over model_name and model_base_path.
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: float = 0  # 0: read once.
    allow_version_labels_for_unavailable_models: bool = False
    enable_batching: bool = False
    batching_parameters_file: str = ""
    monitoring_config_file: str = ""
    host: str = "localhost"
    # TensorFlow Serving's own ports, which env.sh gives as GRPC_PORT and REST_PORT.
    port: int = int(DEFAULTS["GRPC_PORT"])
    rest_api_port: int = int(DEFAULTS["REST_PORT"])  # 0: no REST.
    file_system_poll_wait_seconds: float = 1.0
    grpc_max_threads: int = 16
    grpc_max_message_bytes: int = 2**31 - 1  # TensorFlow Serving's default.
    # TensorFlow Serving: 4 x the CPUs, and 30 s.
    rest_api_num_threads: int = 4 * (os.cpu_count() or 1)
    rest_api_timeout_in_ms: int = 30_000
    rest_max_body_bytes: int = 64 * 1024 * 1024
    # A connection that has not sent a whole request within this long, or
    # stays idle between requests this long, is closed.
    rest_idle_timeout_seconds: float = 10.0
    rest_max_connections: int = 4096
    rest_api_enable_cors_support: bool = False
    # An SSLConfig text proto: gRPC over TLS (REST stays plaintext, as in TensorFlow Serving).
    ssl_config_file: str = ""
    max_batch_size: int = 0  # 0: no limit.
