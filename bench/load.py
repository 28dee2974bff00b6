"""The benchmark's load: one prepared request, serialized once, sent from N threads.

    send = load.predict_sender(serving_client.GrpcClient(address, model, 60), "inputs", images)
    summary = load.run(send, clients=4, seconds=10)  # requests, per_s, p50_ms, p99_ms

The requests come from the client's builders (GrpcClient.predict_request,
RestClient.predict_body), so the load is what model_server_request.py sends, without
its per-request CPU; every answer is still read and checked.
"""

import http.client
import json
import threading
import time
import urllib.parse
from collections.abc import Callable

import grpc
import numpy as np
from tensorflow_serving.apis import predict_pb2

from clients import serving_client


def grpc_sender(
    address: str, method: str, request, response_type, check: Callable = lambda answer: True
) -> Callable[[], Callable[[], None]]:
    """A factory of senders (one per thread, each its own channel) of one call.

    check(answer) says whether the answer, a `response_type`, is right.
    """
    body = request.SerializeToString()

    def sender():
        call = grpc.insecure_channel(address).unary_unary(method)

        def send():
            _check(check(response_type.FromString(call(body, timeout=60))), f"{method}'s answer")

        return send

    return sender


def predict_sender(
    client: serving_client.GrpcClient, input_name: str, images: np.ndarray
) -> Callable[[], Callable[[], None]]:
    """grpc_sender of the client's Predict request for `images`."""
    return grpc_sender(
        client.address,
        "/tensorflow.serving.PredictionService/Predict",
        client.predict_request({input_name: images}),
        predict_pb2.PredictResponse,
        lambda answer: len(answer.outputs) > 0,
    )


def rest_sender(
    client: serving_client.RestClient, input_name: str, images: np.ndarray
) -> Callable[[], Callable[[], None]]:
    """A factory of senders (one per thread, each its own connection) of the client's :predict."""
    body = client.predict_body({input_name: images})
    url = urllib.parse.urlsplit(client.predict_url)
    headers = {"Content-Type": "application/json"}

    def sender():
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)

        def send():
            connection.request("POST", url.path, body, headers)
            response = connection.getresponse()
            answer = response.read()
            _check(response.status == 200, f"HTTP {response.status}: {answer[:200]!r}")
            _check(len(json.loads(answer)["outputs"]) == len(images), "a short answer")

        return send

    return sender


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise RuntimeError(f"the server answered wrong: {what}")


def run(sender: Callable[[], Callable[[], None]], clients: int, seconds: float) -> dict:
    """`clients` threads send for `seconds`; requests a second and latency percentiles.

    A failed request stops the run with its error.
    """
    stop, lock = threading.Event(), threading.Lock()
    latencies: list[float] = []
    errors: list[BaseException] = []

    def loop(send):
        mine = []
        try:
            while not stop.is_set():
                start = time.perf_counter()
                send()
                mine.append(time.perf_counter() - start)
        except Exception as e:  # Re-raised in the caller's thread.
            errors.append(e)
            stop.set()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=loop, args=(sender(),)) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    return {
        "requests": len(latencies),
        "per_s": len(latencies) / elapsed,
        "p50_ms": p50,
        "p99_ms": p99,
    }
