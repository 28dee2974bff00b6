"""Clients of TensorFlow Serving's API (gRPC and REST), and a load loop over MNIST.

The library behind model_server_request.py, the benchmark and the tests: no
flags, so it can be imported anywhere. Both clients answer the same calls, so
code above them does not care which API it talks to:

- `signature()`: the serving signature's single input (name and shape) and
  single output (shape), from GetModelMetadata (gRPC) or /metadata (REST).
- `predict(input_name, images)`: the single output, as a numpy array.

Every failure is a `RequestError` whose message says what to do, never a
stack trace from grpc or requests.
"""

import concurrent.futures
import dataclasses
import json
import threading
import time
from collections.abc import Callable

import grpc
import numpy as np
import orjson
import requests
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from models import MODELS, NUM_CLASSES, mnist_data

SIGNATURE = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY


class RequestError(Exception):
    """The request cannot be made; the message says why and what to do."""


class UnknownModelError(RequestError):
    pass


class GrpcClient:
    """Predict and GetModelMetadata through the generated gRPC stubs."""

    def __init__(self, address: str, model: str, timeout: float, label: str = ""):
        self.address, self.model, self.timeout, self.label = address, model, timeout, label
        self._channel = grpc.insecure_channel(
            address, options=[("grpc.max_receive_message_length", -1)]
        )
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)

    def wait_ready(self, seconds: float) -> None:
        try:
            grpc.channel_ready_future(self._channel).result(timeout=seconds)
        except grpc.FutureTimeoutError:
            raise _no_server(self.address, seconds, "gRPC") from None

    def signature(self) -> "Signature":
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._fill(request.model_spec)
        response = self._call(self._stub.GetModelMetadata, request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        return _signature(signatures.signature_def, self.model)

    def predict(self, input_name: str, images: np.ndarray) -> np.ndarray:
        (output,) = self._predict(input_name, images).outputs.values()
        return tf.make_ndarray(output)

    def predict_version(self, input_name: str, images: np.ndarray) -> int:
        """Predicts, and returns the version of the model that answered."""
        return self._predict(input_name, images).model_spec.version.value

    def predict_request(self, input_name: str, images: np.ndarray) -> predict_pb2.PredictRequest:
        request = predict_pb2.PredictRequest()
        self._fill(request.model_spec)
        request.model_spec.signature_name = SIGNATURE
        request.inputs[input_name].CopyFrom(tf.make_tensor_proto(images))
        return request

    def _predict(self, input_name: str, images: np.ndarray) -> predict_pb2.PredictResponse:
        return self._call(self._stub.Predict, self.predict_request(input_name, images))

    def _fill(self, model_spec) -> None:
        model_spec.name = self.model
        if self.label:
            model_spec.version_label = self.label

    def _call(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                raise UnknownModelError(e.details()) from None
            if e.code() == grpc.StatusCode.UNAVAILABLE:
                raise RequestError(
                    f"the server at {self.address} is unavailable: {e.details()}"
                ) from None
            raise RequestError(f"{e.code().name}: {e.details()}") from None


class RestClient:
    """Predict and metadata through TensorFlow Serving's REST API."""

    def __init__(self, address: str, model: str, timeout: float, label: str = ""):
        self.address, self.model, self.timeout, self.label = address, model, timeout, label
        self._url = f"http://{address}/v1/models/{model}" + (f"/labels/{label}" if label else "")
        self._local = threading.local()  # A requests.Session is not thread-safe.

    def wait_ready(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                requests.get(f"http://{self.address}/", timeout=seconds)
                return
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise _no_server(self.address, seconds, "REST") from None
                time.sleep(0.2)
            except requests.Timeout:
                raise _no_server(self.address, seconds, "REST") from None

    def signature(self) -> "Signature":
        metadata = self._request("GET", f"{self._url}/metadata")
        signatures = metadata["metadata"]["signature_def"]["signature_def"]
        parsed = {
            name: json_format.ParseDict(
                sig, meta_graph_pb2.SignatureDef(), ignore_unknown_fields=True
            )
            for name, sig in signatures.items()
        }
        return _signature(parsed, self.model)

    @property
    def predict_url(self) -> str:
        return f"{self._url}:predict"

    @staticmethod
    def predict_body(images: np.ndarray) -> bytes:
        """The :predict request's JSON ("instances": one row per image)."""
        body = {"signature_name": SIGNATURE, "instances": np.ascontiguousarray(images)}
        if np.isfinite(images).all():
            # orjson writes the array itself, each float32 as the shortest text
            # that reads back the same: json.dumps(images.tolist()) is several
            # times slower and sends more bytes (README, Performance).
            return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
        # orjson would write NaN and Infinity as null; json writes them as
        # TensorFlow Serving reads them.
        return json.dumps({**body, "instances": images.tolist()}).encode()

    def predict(self, input_name: str, images: np.ndarray) -> np.ndarray:
        predictions = self._request("POST", self.predict_url, self.predict_body(images))[
            "predictions"
        ]
        # TensorFlow Serving writes each float32 output in the shortest text that
        # reads back as the same float32 (not float64).
        return np.asarray(predictions, dtype=np.float32)

    def _request(self, method: str, url: str, data: bytes | None = None) -> dict:
        session = getattr(self._local, "session", None) or requests.Session()
        self._local.session = session
        try:
            response = session.request(
                method,
                url,
                data=data,
                headers={"Content-Type": "application/json"} if data else None,
                timeout=self.timeout,
            )
        except requests.RequestException as e:
            raise RequestError(f"the server at {self.address} did not answer: {e}") from None
        try:
            # json, not orjson or response.json() (simplejson when installed):
            # an answer may hold NaN, which TF Serving writes and those refuse.
            payload = json.loads(response.content)
        except ValueError:
            raise RequestError(
                f"HTTP {response.status_code} without a JSON body from {url}"
            ) from None
        if response.status_code == 404:
            raise UnknownModelError(payload.get("error", "not found"))
        if response.status_code != 200:
            raise RequestError(f"HTTP {response.status_code}: {payload.get('error', payload)}")
        return payload


@dataclasses.dataclass(frozen=True)
class Signature:
    """What the serving signature takes and answers; -1 for a dimension of any size."""

    input_name: str
    input_dims: list[int]
    output_dims: list[int]


def _signature(signatures, model: str) -> Signature:
    if SIGNATURE not in signatures:
        raise RequestError(f"model {model} has no '{SIGNATURE}' signature")
    inputs, outputs = signatures[SIGNATURE].inputs, signatures[SIGNATURE].outputs
    if len(inputs) != 1 or len(outputs) != 1:
        raise RequestError(
            f"model {model} takes {len(inputs)} inputs and answers {len(outputs)} outputs; "
            "this client sends one and reads one"
        )
    ((name, info),) = inputs.items()
    (output,) = outputs.values()
    return Signature(
        name, [d.size for d in info.tensor_shape.dim], [d.size for d in output.tensor_shape.dim]
    )


def _no_server(address: str, seconds: float, api: str) -> RequestError:
    return RequestError(
        f"no model server answers {api} at {address} within {seconds:g} s. Start one with "
        "`make serve` (and check it with `make status`)."
    )


def make_client(use_grpc: bool, address: str, model: str, timeout: float, label: str = ""):
    """A client of one model; label: ask the version it names (a model config's label)."""
    return (GrpcClient if use_grpc else RestClient)(address, model, timeout, label)


def preflight(client, batch_size: int) -> str:
    """Checks the model exists, takes this batch size and classifies; returns its input name."""
    try:
        signature = client.signature()
    except UnknownModelError as e:
        served = [m for m in MODELS if m != client.model and _serves(client, m)]
        listing = ", ".join(served) if served else f"none of {', '.join(MODELS)}"
        raise RequestError(
            f"the server has no model '{client.model}' ({e}). It serves: {listing}. Pass the "
            "served name (make request MODEL=...), or serve this model (make serve MODEL=...)."
        ) from None
    dims = signature.input_dims
    if dims and dims[0] > 0 and dims[0] != batch_size:
        raise RequestError(
            f"model '{client.model}' was exported with batch size {dims[0]}, but requests "
            f"would carry {batch_size} images. Either request with SERVING_BATCH_SIZE={dims[0]} "
            "(--serving_batch_size), or re-export with SERVING_BATCH_SIZE_SAVE=-1 to take "
            "any batch size (make export SERVING_BATCH_SIZE_SAVE=-1)."
        )
    if signature.output_dims[1:] != [NUM_CLASSES]:
        raise RequestError(
            f"model '{client.model}' answers shape {signature.output_dims}, not the "
            f"log-probabilities of {NUM_CLASSES} digits ([-1, {NUM_CLASSES}]): it is no MNIST "
            "classifier (a features-only export is served as MODEL_features). Request a "
            "classifier (make request MODEL=...)."
        )
    return signature.input_name


def _serves(client, model: str) -> bool:
    probe = type(client)(client.address, model, client.timeout)
    try:
        probe.signature()
        return True
    except RequestError:
        return False


def run(
    client,
    input_name: str,
    data: mnist_data.Split,
    batch_size: int,
    concurrency: int,
    log: Callable[[str], None] = print,
    log_failure: Callable[[str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Sends `data` in batches from `concurrency` workers; returns the summary.

    `log` gets a line per batch (its predictions), `log_failure` (default:
    `log`) a line per failed batch, `progress` (done, total) after each batch.
    """
    log_failure = log_failure or log
    batches = list(mnist_data.batches(data, batch_size))
    latencies, failures = [], 0
    correct = done = 0

    def send(images: np.ndarray):
        start = time.perf_counter()
        outputs = client.predict(input_name, mnist_data.scale_images(images))
        return time.perf_counter() - start, np.argmax(outputs, axis=1)

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        pending = [pool.submit(send, images) for images, _ in batches]
        for i, (future, (_, labels)) in enumerate(zip(pending, batches, strict=True)):
            if progress is not None:
                progress(i, len(batches))
            try:
                latency, predicted = future.result()
            except RequestError as e:
                failures += 1
                log_failure(f"batch {i}: failed: {e}")
                continue
            latencies.append(latency)
            correct += int(np.sum(predicted == labels))
            done += len(labels)
            log(
                f"batch {i}: predicted {predicted.tolist()} labels {labels.tolist()}; "
                f"running accuracy {100 * correct / done:.2f}%"
            )
    if progress is not None:
        progress(len(batches), len(batches))
    seconds = time.perf_counter() - start
    ms = np.percentile(latencies, [50, 90, 99]) * 1000 if latencies else [float("nan")] * 3
    return {
        "images": done,
        "accuracy": correct / done if done else float("nan"),
        "requests": len(latencies),
        "failed": failures,
        "p50_ms": ms[0],
        "p90_ms": ms[1],
        "p99_ms": ms[2],
        "images_per_s": done / seconds if seconds else float("nan"),
        "seconds": seconds,
    }
