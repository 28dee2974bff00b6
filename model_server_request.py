r"""Send MNIST test images to a model server over gRPC or REST; print accuracy and latency.

    python model_server_request.py --model_spec_name=mnist_flax --use_grpc \
        --prediction_service_addr=localhost:8500 --serving_batch_size=16 --count_images=128

Each batch goes main -> mnist_client.send_batches (a thread times each request) ->
client.predict -> send, which calls the server's Predict (clients/serving_client.py).
--images='digits/*.png' sends image files and prints each one's digit
(clients/image_client.py); --inputs=file.npz sends your arrays to any model and prints its
outputs (clients/inputs_client.py).
"""

import gc
import sys

from absl import app, flags

from clients import image_client, inputs_client, mnist_client, serving_client, tls
from models import mnist_data
from serving.env import DEFAULTS
from serving.signatures import InputsError

_USE_GRPC = flags.DEFINE_boolean("use_grpc", True, "Use the gRPC API; --nouse_grpc uses REST.")
_MODEL = flags.DEFINE_string("model_spec_name", DEFAULTS["MODEL"], "The model's name ($MODEL).")
_LABEL = flags.DEFINE_string("model_version_label", "", "A config's version label; empty: newest.")
_ADDRESS = flags.DEFINE_string(
    "prediction_service_addr", "", f"host:port of the server; empty: localhost:"
    f"{DEFAULTS['GRPC_PORT']} for gRPC, localhost:{DEFAULTS['REST_PORT']} for REST.",
)  # fmt: skip
_BATCH_SIZE = flags.DEFINE_integer(
    "serving_batch_size", int(DEFAULTS["SERVING_BATCH_SIZE"]), "Images per request.", lower_bound=1
)
_COUNT = flags.DEFINE_integer(
    "count_images", int(DEFAULTS["COUNT_IMAGES"]), "How many test images to send.", lower_bound=1
)
_CA_CERT = flags.DEFINE_string(
    "ca_cert", "", "gRPC over TLS: the CA certificate (PEM file) of the server's; empty: plaintext."
)
_CLIENT_CERT = flags.DEFINE_string(
    "client_cert", "", "With --ca_cert: this client's certificate (PEM file), for client_verify."
)
_CLIENT_KEY = flags.DEFINE_string("client_key", "", "With --client_cert: its private key (PEM).")
_CONCURRENCY = flags.DEFINE_integer("concurrency", 1, "Requests in flight at once.", lower_bound=1)
_CONNECT_TIMEOUT = flags.DEFINE_float("connect_timeout", 5.0, "Seconds to wait for the server.")
_REQUEST_TIMEOUT = flags.DEFINE_float("request_timeout", 30.0, "Seconds to wait for one request.")
_MOCK_DATA = flags.DEFINE_boolean("mock_data", False, mnist_data.MOCK_DATA_HELP)
_DATA_DIR = flags.DEFINE_string("data_dir", None, mnist_data.DATA_DIR_HELP)
_IMAGES = flags.DEFINE_string(
    "images", "", "Glob patterns of PNG or JPEG files, separated by spaces: send them through "
    "the image signature and print each one's digit, instead of sending MNIST test images.",
)  # fmt: skip
_INPUTS = flags.DEFINE_string("inputs", "", "A .npy or .npz of inputs to send, not MNIST's.")
_VERBOSE = flags.DEFINE_boolean("verbose", False, "Log each batch's predictions, not a bar.")


def main(_: list[str]) -> None:
    batch_size, count, wait = _BATCH_SIZE.value, _COUNT.value, _CONNECT_TIMEOUT.value
    if count % batch_size and not (_IMAGES.value or _INPUTS.value):
        fit = count - count % batch_size or batch_size
        sys.exit(
            f"error: --count_images={count} is not a multiple of --serving_batch_size="
            f"{batch_size}: use --count_images={fit} (make request COUNT_IMAGES={fit})."
        )
    try:  # --inputs and --images read their files (a bad one is reported) before connecting.
        client = make_client()
        if _INPUTS.value:
            outputs = inputs_client.send_file(client, _INPUTS.value, wait)
            return print(inputs_client.describe(outputs))
        if _IMAGES.value:
            results = image_client.send_files(client, _IMAGES.value.split(), batch_size, wait)
            return print(image_client.describe(results))
        client.wait_ready(wait)
        input_name = mnist_client.check_model(client, batch_size)
        data = mnist_data.load("test", data_dir=_DATA_DIR.value, mock=_MOCK_DATA.value)
    except (serving_client.RequestError, InputsError, mnist_data.DataError) as e:
        sys.exit(f"error: {e}")
    if len(data) < count:
        sys.exit(f"error: the test data has {len(data)} images, fewer than --count_images={count}")
    gc.freeze()  # A full collection over TensorFlow's objects (gRPC) would pause requests.
    data = mnist_data.Split(data.images[:count], data.labels[:count])
    summary = mnist_client.send_batches(
        client, input_name, data, batch_size, _CONCURRENCY.value, _VERBOSE.value
    )
    print(
        "{api}: {images} images in {requests} requests ({failed} failed), accuracy {accuracy:.2%}, "
        "latency p50 {p50_ms:.1f} ms p90 {p90_ms:.1f} ms p99 {p99_ms:.1f} ms, "
        "{images_per_s:.0f} images/s".format(api="gRPC" if _USE_GRPC.value else "REST", **summary)
    )
    if summary["failed"]:
        sys.exit(f"error: {summary['failed']} of {count // batch_size} requests failed")


def make_client() -> serving_client.GrpcClient | serving_client.RestClient:
    """The client the flags ask for: gRPC (over TLS with --ca_cert: clients/tls.py) or REST."""
    port = DEFAULTS["GRPC_PORT"] if _USE_GRPC.value else DEFAULTS["REST_PORT"]
    address = _ADDRESS.value or f"localhost:{port}"
    args = address, _MODEL.value, _REQUEST_TIMEOUT.value, _LABEL.value
    if not _USE_GRPC.value:
        return serving_client.RestClient(*args)
    tls_files = _CA_CERT.value, _CLIENT_CERT.value, _CLIENT_KEY.value
    return serving_client.GrpcClient(*args, tls.channel(address, *tls_files))


if __name__ == "__main__":
    app.run(main)
