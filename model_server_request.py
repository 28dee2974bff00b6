"""Send MNIST test images to a model server over gRPC or REST; report accuracy and latency.

    python model_server_request.py --model_spec_name=mnist_flax --use_grpc \
        --prediction_service_addr=localhost:8500 --serving_batch_size=16 --count_images=128

Works against TensorFlow Serving (Docker or tensorflow_model_server) and the
project's local server (python -m local_server) alike: it uses only their public API.

Why it is shaped this way:
- Before sending images it reads the model's metadata, so it learns the input
  name from the signature and stops with an actionable message when the model
  was exported for another batch size, instead of the server's "Call
  parameter must match argument; got parameter 8 shape: f32[16,28,28,1],
  argument shape: f32[8,28,28,1]".
- A batch that fails (say, while the server restarts) is reported and
  counted; the run goes on, and the exit status says whether all succeeded.
- --concurrency N sends from N workers at once, to load-test a server, as
  TensorFlow Serving's own MNIST client does.
"""

import functools
import gc
import sys

from absl import app, flags, logging

from local_server.options import ServerOptions
from models import mnist_data, progress
from serving_client import RequestError, make_client, preflight, run

_USE_GRPC = flags.DEFINE_boolean("use_grpc", True, "Use the gRPC API; --nouse_grpc uses REST.")
_MODEL_SPEC_NAME = flags.DEFINE_string(
    "model_spec_name", "mnist_flax", "Name of the model on the server (its --model_name, $MODEL)."
)
_MODEL_VERSION_LABEL = flags.DEFINE_string(
    "model_version_label",
    "",
    "Ask the version this label names in the server's model config, e.g. canary "
    "(make request LABEL=canary). Empty: the newest version served.",
)
_PREDICTION_SERVICE_ADDR = flags.DEFINE_string(
    "prediction_service_addr",
    f"localhost:{ServerOptions.port}",
    f"host:port of the server: its gRPC port ({ServerOptions.port}) with --use_grpc, its REST "
    f"port ({ServerOptions.rest_api_port}) with --nouse_grpc.",
)
_SERVING_BATCH_SIZE = flags.DEFINE_integer(
    "serving_batch_size",
    16,
    "Images per request. Must equal the batch size the model was exported with, unless "
    "it was exported batch-polymorphic (-1). Must divide --count_images.",
    lower_bound=1,
)
_COUNT_IMAGES = flags.DEFINE_integer(
    "count_images", 128, "How many test images to send.", lower_bound=1
)
_CONCURRENCY = flags.DEFINE_integer(
    "concurrency", 1, "Requests in flight at once (concurrent workers).", lower_bound=1
)
_CONNECT_TIMEOUT = flags.DEFINE_float(
    "connect_timeout", 5.0, "Seconds to wait for the server to answer at all."
)
_REQUEST_TIMEOUT = flags.DEFINE_float("request_timeout", 30.0, "Seconds to wait for one request.")

_MOCK_DATA = flags.DEFINE_boolean("mock_data", False, mnist_data.MOCK_DATA_HELP)
_DATA_DIR = flags.DEFINE_string("data_dir", None, mnist_data.DATA_DIR_HELP)
_VERBOSE = flags.DEFINE_boolean(
    "verbose",
    False,
    "Log each batch: the predicted digits, the labels and the running accuracy "
    "(make request VERBOSE=1).",
)


def main(argv: list[str]) -> None:
    del argv
    batch_size, count = _SERVING_BATCH_SIZE.value, _COUNT_IMAGES.value
    if count % batch_size:
        sys.exit(
            f"error: --count_images={count} is not a multiple of --serving_batch_size="
            f"{batch_size}: use COUNT_IMAGES={count - count % batch_size or batch_size}."
        )
    api = "gRPC" if _USE_GRPC.value else "REST"
    client = make_client(
        _USE_GRPC.value,
        _PREDICTION_SERVICE_ADDR.value,
        _MODEL_SPEC_NAME.value,
        _REQUEST_TIMEOUT.value,
        _MODEL_VERSION_LABEL.value,
    )
    try:
        client.wait_ready(_CONNECT_TIMEOUT.value)
        input_name = preflight(client, batch_size)
        data = mnist_data.load("test", data_dir=_DATA_DIR.value, mock=_MOCK_DATA.value)
    except (RequestError, mnist_data.DataError) as e:
        sys.exit(f"error: {e}")
    if len(data) < count:
        sys.exit(f"error: the test data has {len(data)} images, fewer than --count_images={count}")
    data = mnist_data.Split(data.images[:count], data.labels[:count])
    # TensorFlow holds millions of Python objects; a full garbage collection
    # among them (which the lists of REST requests trigger) pauses requests.
    gc.freeze()
    logging.info(
        "Sending %d images to %s at %s over %s, %d per request, %d at a time",
        count, _MODEL_SPEC_NAME.value, _PREDICTION_SERVICE_ADDR.value, api, batch_size,
        _CONCURRENCY.value,
    )  # fmt: skip
    # A line per batch with --verbose (make request VERBOSE=1); failures always.
    summary = run(
        client,
        input_name,
        data,
        batch_size,
        _CONCURRENCY.value,
        log=logging.info if _VERBOSE.value else lambda line: None,
        log_failure=logging.warning,
        # A bar on a terminal instead of the lines; --verbose has the lines.
        progress=None if _VERBOSE.value else functools.partial(progress.bar, "requests"),
    )
    print(
        f"{api}: {summary['images']} images in {summary['requests']} requests "
        f"({summary['failed']} failed), accuracy {100 * summary['accuracy']:.2f}%, latency "
        f"p50 {summary['p50_ms']:.1f} ms p90 {summary['p90_ms']:.1f} ms p99 "
        f"{summary['p99_ms']:.1f} ms, {summary['images_per_s']:.0f} images/s"
    )
    if summary["failed"]:
        sys.exit(f"error: {summary['failed']} of {len(data) // batch_size} requests failed")


if __name__ == "__main__":
    app.run(main)
