"""Clients of one model on TensorFlow Serving, over gRPC or REST, answering the same calls.

    client = GrpcClient("localhost:8500", "mnist_flax", timeout=30)  # RestClient: port 8501
    log_probabilities = client.predict({"inputs": images})  # images: float32 (16, 28, 28, 1)

Every failure is a RequestError: what to do, or the server's answer. Only GrpcClient
imports tensorflow-serving-api's messages, which import TensorFlow (seconds), at its first call.
"""

import base64
import contextlib
import functools
import json
import socket
import threading
import time

import grpc
import numpy as np
import orjson
import requests
from google.protobuf import json_format

from serving.signatures import SIGNATURE

_NO_SERVER = "no model server answers {} at {} within {:g} s: start one with `make serve`."
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", -1)]  # Answers of any size.


class RequestError(Exception):
    """The request cannot be made; the message says why and what to do."""


class UnknownModelError(RequestError):
    """The server serves no such model (NOT_FOUND, HTTP 404); an unknown label is invalid."""


class GrpcClient:
    """One model through the gRPC API; label: ask the version a model config's label names;
    channel: over TLS from clients/tls.py; by default plaintext."""

    def __init__(self, address: str, model: str, timeout: float, label="", channel=None):
        self.address, self.model, self.timeout = address, model, timeout
        self._spec = {"name": model, "signature_name": SIGNATURE}  # A ModelSpec's fields.
        if label:  # A oneof: unset (not ""), the newest version answers.
            self._spec["version_label"] = label
        self._channel = channel or grpc.insecure_channel(address, CHANNEL_OPTIONS)

    @functools.cached_property
    def _stub(self):
        """Made at the first call: its import loads TensorFlow (seconds), which wait_ready
        does not need to say that no server answers."""
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        return prediction_service_pb2_grpc.PredictionServiceStub(self._channel)

    def wait_ready(self, seconds: float) -> None:
        try:
            grpc.channel_ready_future(self._channel).result(timeout=seconds)
        except grpc.FutureTimeoutError:
            if not _listens(self.address):
                raise RequestError(_NO_SERVER.format("gRPC", self.address, seconds)) from None
            raise RequestError(  # A TLS handshake that failed, or a server that is no gRPC one.
                f"the server at {self.address} accepts connections, but no gRPC channel was set "
                f"up within {seconds:g} s: do both use TLS? A server started with TLS_DIR needs "
                "it here too (its ca.crt, and client.crt and client.key if it verifies clients). "
                "Or is it a REST port, not gRPC's?"
            ) from None

    def signatures(self) -> dict:
        """The model's SignatureDefs by name, from GetModelMetadata, in REST's JSON form."""
        from tensorflow_serving.apis.get_model_metadata_pb2 import GetModelMetadataRequest

        request = GetModelMetadataRequest(model_spec=self._spec, metadata_field=["signature_def"])
        with _errors(self.address):
            response = self._stub.GetModelMetadata(request, timeout=self.timeout)
        packed = response.metadata["signature_def"]  # A SignatureDefMap, in a protobuf Any.
        return json_format.MessageToDict(packed, preserving_proto_field_name=True)["signature_def"]

    def predict(self, inputs: dict, signature_name: str = SIGNATURE) -> np.ndarray | dict:
        """{input name: array} -> the only output's array, or {output name: array}: as REST."""
        import tensorflow as tf

        response = self.send(self.predict_request(inputs, signature_name))
        outputs = {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}
        return outputs.popitem()[1] if len(outputs) == 1 else outputs

    def predict_request(self, inputs: dict, signature_name: str = SIGNATURE):
        """The PredictRequest of {input name: array} to a signature of the model."""
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        spec = {**self._spec, "signature_name": signature_name}
        protos = {name: tf.make_tensor_proto(value) for name, value in inputs.items()}
        return predict_pb2.PredictRequest(model_spec=spec, inputs=protos)

    def send(self, request):
        """Sends a PredictRequest; the PredictResponse (model_spec.version: who answered)."""
        with _errors(self.address):
            return self._stub.Predict(request, timeout=self.timeout)


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
        metadata = self._request("GET", f"{self._url}/metadata")["metadata"]
        return metadata["signature_def"]["signature_def"]

    def predict(self, inputs: dict, signature_name: str = SIGNATURE) -> np.ndarray | dict:
        """{input name: array} -> the only output's array (REST does not name it), or
        {output name: array}; numbers as float64 or int64, JSON having no dtype."""
        body = self.predict_body(inputs, signature_name)
        outputs = self._request("POST", self.predict_url, body)["outputs"]
        if not isinstance(outputs, dict):
            return np.asarray(outputs)
        return {name: np.asarray(value) for name, value in outputs.items()}

    @staticmethod
    def predict_body(inputs: dict, signature_name: str = SIGNATURE) -> bytes:
        """The :predict request's JSON, columnar ("inputs"): each float32 as the shortest text
        that reads back the same (orjson, fast), bytes as {"b64": ...}. A single input goes
        unnamed, as the signature's only one: the form local_server/ parses fastest."""
        columns = {
            name: [{"b64": base64.b64encode(b).decode()} for b in value]
            if np.asarray(value).dtype.kind in "SO"
            else np.ascontiguousarray(value)
            for name, value in inputs.items()
        }
        if len(columns) == 1:
            (columns,) = columns.values()
        body = {"signature_name": signature_name, "inputs": columns}
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)

    def _request(self, method: str, url: str, body: bytes | None = None) -> dict:
        """The answer's JSON; an HTTP error as a RequestError (UnknownModelError: 404)."""
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        with _errors(self.address):
            response = self._local.session.request(method, url, data=body, timeout=self.timeout)
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


def _listens(address: str) -> bool:
    """Whether something accepts TCP connections at host:port."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=2).close()
    except (OSError, ValueError):
        return False
    return True
