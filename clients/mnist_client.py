"""Send MNIST test images to a classifier on the model server; its accuracy and latency.

    client = serving_client.GrpcClient("localhost:8500", "mnist_flax", timeout=30)
    input_name = mnist_client.check_model(client, batch_size=16)
    summary = mnist_client.send_batches(client, input_name, mnist_data.load("test"), 16)

Over gRPC or REST alike (clients/serving_client.py); model_server_request.py's default request.
"""

import concurrent.futures
import time

import numpy as np
from absl import logging

from clients.serving_client import GrpcClient, RequestError, RestClient, UnknownModelError
from models import NUM_CLASSES, mnist_data, progress
from serving.signatures import SIGNATURE, tensor_dims


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
        raise RequestError(f"model '{client.model}' has no '{SIGNATURE}' of one input and output")
    ((input_name, input_info),), (output_info,) = inputs.items(), outputs.values()
    input_dims, output_dims = tensor_dims(input_info), tensor_dims(output_info)
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
    return input_name


def send_batches(
    client, input_name: str, data: mnist_data.Split, batch_size: int, concurrency=1, verbose=False
) -> dict:
    """Sends `data` in batches from `concurrency` threads; returns accuracy and latency.

    A failed batch is logged and counted. verbose: a log line per batch, not a progress bar.
    """

    def send(images: np.ndarray) -> tuple[float, np.ndarray]:
        start = time.perf_counter()
        outputs = client.predict({input_name: mnist_data.scale_images(images)})
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
