"""Send image files through the model's image signature; the digit and probability of each.

    client = serving_client.GrpcClient("localhost:8500", "mnist_flax", timeout=30)
    batch = image_client.check_model(client)  # None: any number of images per request
    classes, probabilities = image_client.classify(client, [open("7.png", "rb").read()])

The server decodes and scales (models/image_signature.py): the client sends the files'
bytes as they are, over gRPC (a DT_STRING tensor) or REST ({"b64": ...}).
"""

import glob
import os
from collections.abc import Sequence

import numpy as np

from clients.serving_client import GrpcClient, RequestError, RestClient
from models import image_spec
from serving.signatures import tensor_dims


def read_images(patterns: Sequence[str]) -> list[tuple[str, bytes]]:
    """(path, bytes) of the files that the glob `patterns` match, sorted (folders are
    skipped); RequestError if none."""
    matches = {path for pattern in patterns for path in glob.glob(os.path.expanduser(pattern))}
    paths = sorted(path for path in matches if os.path.isfile(path))
    if not paths:
        raise RequestError(
            f"no file matches {' '.join(patterns)}: write sample digits with `make digits`, "
            "or name PNG or JPEG files (make request IMAGES='digits/*.png')."
        )
    images = []
    for path in paths:
        with open(path, "rb") as f:
            images.append((path, f.read()))
    return images


def check_model(client: GrpcClient | RestClient) -> int | None:
    """Checks that the model has the image signature; its fixed batch size, None if any."""
    signature = client.signatures().get(image_spec.SIGNATURE_NAME)
    if signature is None:
        raise RequestError(
            f"model '{client.model}' has no '{image_spec.SIGNATURE_NAME}' signature: export it "
            "again with this repository (make export), as a classifier."
        )
    (tensor,) = signature["inputs"].values()
    batch = (tensor_dims(tensor) or [-1])[0]
    return batch if batch > 0 else None


def classify(
    client: GrpcClient | RestClient, images: Sequence[bytes]
) -> tuple[np.ndarray, np.ndarray]:
    """Encoded images -> (their digits (N,), their probabilities (N, 10)), in one request."""
    outputs = client.predict(
        {image_spec.INPUT_NAME: np.array(images, dtype=object)},
        signature_name=image_spec.SIGNATURE_NAME,
    )
    return outputs[image_spec.CLASSES], outputs[image_spec.PROBABILITIES]


def classify_files(
    client: GrpcClient | RestClient,
    files: Sequence[tuple[str, bytes]],
    batch_size: int,
    pad: bool = False,
) -> list[tuple[str, int, float]]:
    """(path, digit, its probability) per file, in requests of `batch_size` files.

    pad: the signature takes exactly `batch_size` (a fixed-batch export): the last
    request is filled up with its last file, whose extra answers are dropped.
    """
    results = []
    for start in range(0, len(files), batch_size):
        chunk = list(files[start : start + batch_size])
        padded = [data for _, data in chunk]
        if pad:
            padded += [padded[-1]] * (batch_size - len(chunk))
        classes, probabilities = classify(client, padded)
        for i, (path, _) in enumerate(chunk):
            results.append((path, int(classes[i]), float(probabilities[i, classes[i]])))
    return results


def send_files(
    client: GrpcClient | RestClient, patterns: Sequence[str], batch_size: int, wait: float
) -> list[tuple[str, int, float]]:
    """--images: reads the files (a pattern that matches none is reported before connecting),
    waits up to `wait` seconds for the server, checks the model, classifies them in requests
    of `batch_size` files, or of the model's fixed batch size."""
    files = read_images(patterns)
    client.wait_ready(wait)
    fixed = check_model(client)
    return classify_files(client, files, fixed or batch_size, pad=bool(fixed))


def describe(results: Sequence[tuple[str, int, float]]) -> str:
    """send_files' results as text: "path: digit (probability)", a line per file."""
    return "\n".join(f"{path}: {digit} ({probability:.1%})" for path, digit, probability in results)
