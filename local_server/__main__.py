"""A local model server that speaks TensorFlow Serving's gRPC and REST API.

    python -m local_server --port=8500 --rest_api_port=8501 \
        --model_name=mnist_flax --model_base_path=/tmp/jax2tf/saved_models/mnist_flax

`make serve` starts it where neither Docker nor tensorflow_model_server is
available. Its flags are tensorflow_model_server's (docs/local_server.md says
what it answers); this file reads them, and only this file.
"""

import dataclasses

from absl import app, flags

from local_server import startup
from local_server.options import ServerOptions

_DEFAULT = ServerOptions()

_PORT = flags.DEFINE_integer("port", _DEFAULT.port, "Port of the gRPC API.")
_REST_API_PORT = flags.DEFINE_integer(
    "rest_api_port", _DEFAULT.rest_api_port, "Port of the REST API; 0 disables it."
)
_MODEL_NAME = flags.DEFINE_string("model_name", _DEFAULT.model_name, "Name of the served model.")
_MODEL_BASE_PATH = flags.DEFINE_string(
    "model_base_path",
    _DEFAULT.model_base_path,
    "Directory whose numeric subdirectories are the model's versions.",
)
_MODEL_CONFIG_FILE = flags.DEFINE_string(
    "model_config_file",
    _DEFAULT.model_config_file,
    "A ModelServerConfig in protobuf text format (several models, version policies, labels). "
    "If set, --model_name and --model_base_path are ignored.",
)
_MODEL_CONFIG_FILE_POLL_WAIT_SECONDS = flags.DEFINE_float(
    "model_config_file_poll_wait_seconds",
    _DEFAULT.model_config_file_poll_wait_seconds,
    "Seconds between two reads of --model_config_file; a changed file is applied while "
    "serving. 0: read once, at start.",
    lower_bound=0,
)
_ALLOW_UNAVAILABLE_LABELS = flags.DEFINE_boolean(
    "allow_version_labels_for_unavailable_models",
    _DEFAULT.allow_version_labels_for_unavailable_models,
    "Let a new label point at a version that is not loaded yet (needed for labels in the "
    "config file at start). Moving an existing label still needs the version AVAILABLE.",
)
_ENABLE_BATCHING = flags.DEFINE_boolean(
    "enable_batching",
    _DEFAULT.enable_batching,
    "Merge concurrent requests to the same model and signature into one run.",
)
_BATCHING_PARAMETERS_FILE = flags.DEFINE_string(
    "batching_parameters_file",
    _DEFAULT.batching_parameters_file,
    "BatchingParameters in protobuf text format (max_batch_size, batch_timeout_micros, ...); "
    "needs --enable_batching. Unset: TensorFlow Serving's defaults.",
)
_MONITORING_CONFIG_FILE = flags.DEFINE_string(
    "monitoring_config_file",
    _DEFAULT.monitoring_config_file,
    "A MonitoringConfig in protobuf text format; prometheus_config { enable: true } serves "
    "TensorFlow Serving's metrics on the REST port.",
)
_POLL_SECONDS = flags.DEFINE_float(
    "file_system_poll_wait_seconds",
    _DEFAULT.file_system_poll_wait_seconds,
    "Seconds between two looks for new versions.",
    lower_bound=0.1,
)
_HOST = flags.DEFINE_string(
    "host", _DEFAULT.host, "Address to bind. The server has no authentication: keep it local."
)
_GRPC_MAX_MESSAGE_BYTES = flags.DEFINE_integer(
    "grpc_max_message_bytes",
    _DEFAULT.grpc_max_message_bytes,
    "Largest gRPC request accepted; larger ones get RESOURCE_EXHAUSTED. The default is "
    "TensorFlow Serving's (2 GiB - 1).",
    lower_bound=1,
)
_GRPC_MAX_THREADS = flags.DEFINE_integer(
    "grpc_max_threads", _DEFAULT.grpc_max_threads, "Threads serving gRPC requests.", lower_bound=1
)
_REST_API_NUM_THREADS = flags.DEFINE_integer(
    "rest_api_num_threads",
    _DEFAULT.rest_api_num_threads,
    "Threads running REST requests (TensorFlow Serving's default: 4 per CPU). Connections "
    "do not take threads: one event loop holds them all.",
    lower_bound=1,
)
_REST_API_TIMEOUT_IN_MS = flags.DEFINE_integer(
    "rest_api_timeout_in_ms",
    _DEFAULT.rest_api_timeout_in_ms,
    "A REST request without an answer after this long gets 504 DEADLINE_EXCEEDED.",
    lower_bound=1,
)
_REST_API_ENABLE_CORS_SUPPORT = flags.DEFINE_boolean(
    "rest_api_enable_cors_support",
    _DEFAULT.rest_api_enable_cors_support,
    "Add CORS headers to REST answers.",
)
_REST_IDLE_TIMEOUT_SECONDS = flags.DEFINE_float(
    "rest_idle_timeout_seconds",
    _DEFAULT.rest_idle_timeout_seconds,
    "A REST connection that sends no whole request, or stays idle between requests, this "
    "long is closed.",
    lower_bound=0.1,
)
_REST_MAX_CONNECTIONS = flags.DEFINE_integer(
    "rest_max_connections",
    _DEFAULT.rest_max_connections,
    "Open REST connections beyond this get 503 and are closed.",
    lower_bound=1,
)
_REST_MAX_BODY_BYTES = flags.DEFINE_integer(
    "rest_max_body_bytes",
    _DEFAULT.rest_max_body_bytes,
    "Largest REST request body accepted; larger ones get 429 RESOURCE_EXHAUSTED without "
    "being read. Parsing JSON takes about 10 times the body's size in memory, hence a lower "
    "default than gRPC's.",
    lower_bound=1,
)
_SSL_CONFIG_FILE = flags.DEFINE_string(
    "ssl_config_file",
    _DEFAULT.ssl_config_file,
    "An SSLConfig in protobuf text format (server_key, server_cert, custom_ca: the PEM text; "
    "client_verify): gRPC over TLS, client certificates too with client_verify. REST stays "
    "plaintext. Unset: plaintext gRPC.",
)
_MAX_BATCH_SIZE = flags.DEFINE_integer(
    "max_batch_size",
    _DEFAULT.max_batch_size,
    "Largest batch (dimension 0 of an input) accepted; 0: no limit.",
    lower_bound=0,
)
flags.DEFINE_boolean(
    "xla_cpu_compilation_enabled",
    True,
    "Accepted for command-line compatibility with tensorflow_model_server. TensorFlow's "
    "Python runtime always compiles jit_compile functions with XLA.",
)
flags.DEFINE_boolean(
    "xla_gpu_compilation_enabled",
    False,
    "Accepted for command-line compatibility with tensorflow_model_server (GPU=1). TensorFlow "
    "runs the model on a GPU if it sees one.",
)


def main(argv: list[str]) -> None:
    del argv
    # Each flag is named after the ServerOptions field it sets.
    options = ServerOptions(
        **{f.name: flags.FLAGS[f.name].value for f in dataclasses.fields(ServerOptions)}
    )
    try:
        settings = startup.read(options)
        # Imported once the files are read: TensorFlow takes seconds to import.
        from local_server import server

        server.run(settings)
    except startup.StartupError as e:
        raise SystemExit(f"error: {e}") from None
    except OSError as e:
        raise SystemExit(
            f"error: {e}. Another server may be running (make status; make stop), or choose "
            "other ports (GRPC_PORT=..., REST_PORT=...)."
        ) from None


if __name__ == "__main__":
    app.run(main)
