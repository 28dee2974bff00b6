"""Clients of one model on TensorFlow Serving, over gRPC or REST, and the loop that sends MNIST.

    client = GrpcClient("localhost:8500", "mnist_flax", timeout=30)  # RestClient: port 8501
    input_name = check_model(client, batch_size=16)
    log_probabilities = client.predict(input_name, images)  # images: float32 (16, 28, 28, 1)

Both clients answer the same calls; every failure is a RequestError that says what to do.
tensorflow-serving-api's messages import TensorFlow (seconds): only GrpcClient imports them.
"""

import base64
import concurrent.futures
import contextlib
import json
import threading
import time

import grpc
import numpy as np
import orjson
import requests
from absl import logging
from google.protobuf import json_format

from models import NUM_CLASSES, mnist_data, progress

SIGNATURE = "serving_default"  # The signature the export writes and the clients call.
_NO_SERVER = "no model server answers {} at {} within {:g} s: start one with `make serve`."


class RequestError(Exception):
    """The request cannot be made; the message says why and what to do."""


class UnknownModelError(RequestError):
    """The server serves no such model (or no version under that label)."""


def grpc_channel(
    address: str, ca_cert: str = "", client_cert: str = "", client_key: str = ""
) -> grpc.Channel:
    """A channel to a server: over TLS when ca_cert names the CA file (PEM) of the server's
    certificate, with a client certificate and key files for a server that verifies clients;
    plaintext without."""
    options = [("grpc.max_receive_message_length", -1)]
    if not ca_cert:
        if client_cert or client_key:
            raise RequestError("a client certificate needs TLS: give --ca_cert too")
        return grpc.insecure_channel(address, options)
    if bool(client_cert) != bool(client_key):
        raise RequestError("give both --client_cert and --client_key, or neither")
    pems = []
    for path in (ca_cert, client_key, client_cert):
        try:
            with open(path, "rb") if path else contextlib.nullcontext() as f:
                pems.append(f.read() if f else None)
        except OSError as e:
            raise RequestError(f"cannot read {path}: {e.strerror}") from None
    credentials = grpc.ssl_channel_credentials(*pems)
    return grpc.secure_channel(address, credentials, options)


class GrpcClient:
    """One model through the gRPC API; label: ask the version a model config's label names;
    channel: a grpc_channel to the address (over TLS, say), or a plaintext one."""

    def __init__(
        self,
        address: str,
        model: str,
        timeout: float,
        label: str = "",
        channel: grpc.Channel | None = None,
    ):
        from tensorflow_serving.apis import model_pb2, prediction_service_pb2_grpc

        self.address, self.model, self.timeout = address, model, timeout
        self._spec = model_pb2.ModelSpec(name=model, signature_name=SIGNATURE)
        if label:
            self._spec.version_label = label
        self._channel = channel or grpc_channel(address)
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)

    def wait_ready(self, seconds: float) -> None:
        try:
            grpc.channel_ready_future(self._channel).result(timeout=seconds)
        except grpc.FutureTimeoutError:
            error = _NO_SERVER.format("gRPC", self.address, seconds)
            # A TLS server and a plaintext client (or the reverse) never connect either.
            raise RequestError(
                f"{error} A server started with TLS_DIR needs it here too."
            ) from None

    def signatures(self) -> dict:
        """The model's SignatureDefs by name, from GetModelMetadata, in REST's JSON form."""
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.CopyFrom(self._spec)
        with _errors(self.address):
            response = self._stub.GetModelMetadata(request, timeout=self.timeout)
        packed = response.metadata["signature_def"]  # A SignatureDefMap, in a protobuf Any.
        return json_format.MessageToDict(packed, preserving_proto_field_name=True)["signature_def"]

    def predict(self, input_name: str, images: np.ndarray) -> np.ndarray:
        """`images`, float32 (N, 28, 28, 1) in [0, 1] -> the model's output."""
        import tensorflow as tf

        request = self.predict_request(input_name, images)
        with _errors(self.address):
            response = self._stub.Predict(request, timeout=self.timeout)
        (output,) = response.outputs.values()
        return tf.make_ndarray(output)

    def which_version_answers(self, input_name: str, images: np.ndarray) -> int:
        """Sends a Predict of `images`; returns the version of the model that answered it."""
        request = self.predict_request(input_name, images)
        with _errors(self.address):
            return self._stub.Predict(request, timeout=self.timeout).model_spec.version.value

    def predict_signature(self, signature_name: str, inputs: dict) -> dict[str, np.ndarray]:
        """Predict on any signature of the model: {input name: array} -> {output name: array}."""
        import tensorflow as tf
        from tensorflow_serving.apis import model_pb2, predict_pb2

        spec = model_pb2.ModelSpec()
        spec.CopyFrom(self._spec)
        spec.signature_name = signature_name
        protos = {name: tf.make_tensor_proto(value) for name, value in inputs.items()}
        request = predict_pb2.PredictRequest(model_spec=spec, inputs=protos)
        with _errors(self.address):
            response = self._stub.Predict(request, timeout=self.timeout)
        return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}

    def predict_request(self, input_name: str, images: np.ndarray):
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        inputs = {input_name: tf.make_tensor_proto(images)}
        return predict_pb2.PredictRequest(model_spec=self._spec, inputs=inputs)


class RestClient:
    """One model through the REST API; label: ask the version a model config's label names."""

    def __init__(self, address: str, model: str, timeout: float, label: str = ""):
        self.address, self.model, self.timeout = address, model, timeout
        self._url = f"http://{address}/v1/models/{model}" + (f"/labels/{label}" if label else "")
        self.predict_url = f"{self._url}:predict"
        self._local = threading.local()  # A requests.Session per thread: one is not thread-safe.

    def wait_ready(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                requests.get(f"http://{self.address}/", timeout=seconds)
                return
            time.sleep(0.2)
        raise RequestError(_NO_SERVER.format("REST", self.address, seconds))

    def signatures(self) -> dict:
        """The model's SignatureDefs by name, from /metadata."""
        with _errors(self.address):
            response = self._session().get(f"{self._url}/metadata", timeout=self.timeout)
            return _answer(response)["metadata"]["signature_def"]["signature_def"]

    def predict(self, input_name: str, images: np.ndarray) -> np.ndarray:
        """`images`, float32 (N, 28, 28, 1) in [0, 1] -> the model's output."""
        body = self.predict_body(images)
        with _errors(self.address):
            response = self._session().post(self.predict_url, body, timeout=self.timeout)
            return np.asarray(_answer(response)["predictions"], dtype=np.float32)

    def predict_signature(self, signature_name: str, inputs: dict) -> dict | np.ndarray:
        """Predict on any signature: {input name: array} -> {output name: array}, or the
        array of a signature's only output (REST names it "outputs" alone). In the columnar
        ("inputs") format; bytes go as {"b64": ...}, as TensorFlow Serving reads them."""
        columns = {
            name: [{"b64": base64.b64encode(b).decode()} for b in value]
            if np.asarray(value).dtype.kind in "SO"
            else np.ascontiguousarray(value)
            for name, value in inputs.items()
        }
        body = {"signature_name": signature_name, "inputs": columns}
        body = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
        with _errors(self.address):
            response = self._session().post(self.predict_url, body, timeout=self.timeout)
            outputs = _answer(response)["outputs"]
        if not isinstance(outputs, dict):
            return np.asarray(outputs)
        return {name: np.asarray(value) for name, value in outputs.items()}

    @staticmethod
    def predict_body(images: np.ndarray) -> bytes:
        """The :predict request's JSON: one row ("instances") per image, finite floats."""
        # orjson writes each float32 as the shortest text that reads back the same, and fast.
        body = {"signature_name": SIGNATURE, "instances": np.ascontiguousarray(images)}
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session


def _answer(response: requests.Response) -> dict:
    """A REST answer's JSON; an HTTP error as a RequestError (UnknownModelError: 404)."""
    answer = json.loads(response.content)  # Not response.json(): simplejson refuses NaN.
    if response.status_code != 200:
        error = UnknownModelError if response.status_code == 404 else RequestError
        raise error(f"HTTP {response.status_code}: {answer.get('error', answer)}")
    return answer


@contextlib.contextmanager
def _errors(address: str):
    """grpc's and requests' exceptions as RequestErrors (UnknownModelError: NOT_FOUND)."""
    try:
        yield
    except grpc.RpcError as e:
        error = UnknownModelError if e.code() == grpc.StatusCode.NOT_FOUND else RequestError
        raise error(f"the server at {address} answered {e.code().name}: {e.details()}") from None
    except (requests.RequestException, ValueError) as e:  # ValueError: an answer not JSON.
        raise RequestError(f"the server at {address} did not answer: {e}") from None


def tensor_dims(info: dict) -> list[int]:
    """The dims of a TensorInfo in REST's JSON form (GetModelMetadata); -1: any size. JSON
    writes int64 as a string and omits a 0."""
    return [int(d.get("size", 0)) for d in info.get("tensor_shape", {}).get("dim", [])]


def check_model(client: GrpcClient | RestClient, batch_size: int) -> str:
    """Checks that the model is served, takes `batch_size` and classifies; its input's name."""
    try:
        signature = client.signatures().get(SIGNATURE, {})
    except UnknownModelError as e:
        raise RequestError(
            f"the server has no model '{client.model}' ({e}). Pass the served name (make "
            "request MODEL=...), or serve this model (make serve MODEL=...)."
        ) from None
    inputs, outputs = signature.get("inputs", {}), signature.get("outputs", {})
    if len(inputs) != 1 or len(outputs) != 1:
        raise RequestError(f"model '{client.model}' has no '{SIGNATURE}' signature of one input")
    input_dims, output_dims = (tensor_dims(t) for t in (*inputs.values(), *outputs.values()))
    batch = input_dims[0] if input_dims else -1
    if batch > 0 and batch != batch_size:
        raise RequestError(
            f"model '{client.model}' was exported with batch size {batch}, but requests would "
            f"carry {batch_size} images. Either request with SERVING_BATCH_SIZE={batch} (--serving"
            "_batch_size), or re-export with SERVING_BATCH_SIZE_SAVE=-1 to take any batch size."
        )
    if output_dims[1:] != [NUM_CLASSES]:
        raise RequestError(
            f"model '{client.model}' answers shape {output_dims}, not the log-probabilities of "
            f"{NUM_CLASSES} digits: it is no MNIST classifier (a features-only export is served "
            "as MODEL_features). Request a classifier (make request MODEL=...)."
        )
    return next(iter(inputs))


def send_batches(
    client, input_name: str, data: mnist_data.Split, batch_size: int, concurrency=1, verbose=False
) -> dict:
    """Sends `data` in batches from `concurrency` threads; returns accuracy and latency.

    A failed batch is logged and counted. verbose: a log line per batch, not a progress bar.
    """

    def send(images: np.ndarray) -> tuple[float, np.ndarray]:
        start = time.perf_counter()
        outputs = client.predict(input_name, mnist_data.scale_images(images))
        return time.perf_counter() - start, np.argmax(outputs, axis=1)

    batches = list(mnist_data.batches(data, batch_size))
    latencies, correct, done, start = [], 0, 0, time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        pending = [pool.submit(send, images) for images, _ in batches]
        for i, (future, (_, labels)) in enumerate(zip(pending, batches, strict=True)):
            try:
                latency, predicted = future.result()
            except RequestError as e:
                logging.warning("batch %d: failed: %s", i, e)
            else:
                latencies.append(latency)
                correct, done = correct + int(np.sum(predicted == labels)), done + len(labels)
                if verbose:
                    logging.info(
                        "batch %d: predicted %s labels %s; running accuracy %.2f%%",
                        i, predicted.tolist(), labels.tolist(), 100 * correct / done,
                    )  # fmt: skip
            if not verbose:
                progress.bar("requests", i + 1, len(batches))
    ms = np.percentile(latencies, [50, 90, 99]) * 1000 if latencies else [np.nan] * 3
    return dict(
        images=done, requests=len(latencies), failed=len(batches) - len(latencies),
        accuracy=correct / done if done else np.nan, p50_ms=ms[0], p90_ms=ms[1], p99_ms=ms[2],
        images_per_s=done / (time.perf_counter() - start)
    )  # fmt: skip
