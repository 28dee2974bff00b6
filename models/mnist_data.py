"""MNIST as numpy arrays: from tfds, from IDX files on disk, or synthetic.

    data = mnist_data.load("test", data_dir=None, mock=False)  # a Split
    for images, labels in mnist_data.batches(data, 16): ...

Each source gives a `Split`: uint8 images (N, 28, 28, 1) and int32 labels (N,),
in memory. tfds is the default; --data_dir reads the four standard IDX files
(offline machines); --mock_data makes learnable synthetic digits (tests).
Needs numpy only (tfds is imported when it is the source).
"""

import dataclasses
import gzip
import os
import socket
import urllib.parse
from collections.abc import Iterator

import numpy as np

# One MNIST image, without the batch dimension: 28x28 pixels, one channel.
INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10

# The help of the scripts' --mock_data and --data_dir flags, which choose the
# source (this module defines no flags: `load` takes the values).
MOCK_DATA_HELP = "Use small synthetic data of MNIST's shapes instead of MNIST, for tests."
DATA_DIR_HELP = (
    "Read MNIST from the four standard IDX files (gzipped or not) in this directory, "
    "instead of tfds: for machines without internet."
)

SPLITS = ("train", "test")
# The standard file names of the MNIST distribution, per split.
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_ALL_IDX_FILES = ", ".join(name for pair in IDX_FILES.values() for name in pair)
# Where tfds 4.9 downloads MNIST from; only used to fail fast when offline.
_TFDS_MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
_NETWORK_TIMEOUT_S = 5.0
# Test: as many as the largest COUNT_IMAGES the README and the benchmark send.
_MOCK_SIZES = {"train": 1024, "test": 2048}


class DataError(Exception):
    """The data cannot be loaded; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class Split:
    images: np.ndarray  # uint8 (N, 28, 28, 1)
    labels: np.ndarray  # int32 (N,)

    def __len__(self) -> int:
        return len(self.labels)


def load(split: str, *, data_dir: str | None = None, mock: bool = False) -> Split:
    """Loads the `split` ("train" or "test") of MNIST from the chosen source."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    if mock:
        return synthetic(_MOCK_SIZES[split], seed=SPLITS.index(split))
    if data_dir:
        return load_idx(data_dir, split)
    return _load_tfds(split)


def scale_images(images):
    """uint8 pixels -> float32 in [0, 1], the models' input. numpy or jax arrays."""
    return images.astype(np.float32) / 255.0


def batches(
    data: Split, batch_size: int, *, rng: np.random.Generator | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yields (images, labels) batches; shuffled when `rng` is given.

    The last, partial batch is dropped when shuffling (training wants equal
    batches) and kept otherwise (evaluation wants every example).
    """
    images, labels = data.images, data.labels
    if rng is not None:
        order = rng.permutation(len(data))
        images, labels = images[order], labels[order]
        stop = len(data) - len(data) % batch_size
    else:
        stop = len(data)
    for start in range(0, stop, batch_size):
        yield images[start : start + batch_size], labels[start : start + batch_size]


def synthetic(num_examples: int, seed: int = 0) -> Split:
    """Noise images with a bright bar whose row is the label: learnable, tiny."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, NUM_CLASSES, num_examples, dtype=np.int32)
    images = rng.integers(0, 64, (num_examples, *INPUT_SHAPE), dtype=np.uint8)
    rows = 2 + 2 * labels
    images[np.arange(num_examples), rows, 4:24, 0] = 255
    return Split(images=images, labels=labels)


def load_idx(data_dir: str, split: str) -> Split:
    """Reads one split from the standard MNIST IDX files in `data_dir`."""
    images_path, labels_path = (_find_idx_file(data_dir, name) for name in IDX_FILES[split])
    images = _read_idx(images_path, ndim=3)
    labels = _read_idx(labels_path, ndim=1)
    if images.shape[1:] != INPUT_SHAPE[:2]:
        raise DataError(
            f"{images_path}: images are {images.shape[1]}x{images.shape[2]} pixels, "
            f"MNIST's are {INPUT_SHAPE[0]}x{INPUT_SHAPE[1]}."
        )
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds "
            f"{len(labels)} labels; the two files must come from the same split."
        )
    if labels.size and labels.max() >= NUM_CLASSES:
        raise DataError(f"{labels_path}: label {labels.max()} is outside 0-{NUM_CLASSES - 1}.")
    return Split(images=images[..., np.newaxis], labels=labels.astype(np.int32))


def _find_idx_file(data_dir: str, name: str) -> str:
    for candidate in (name, name + ".gz"):
        path = os.path.join(data_dir, candidate)
        if os.path.isfile(path):
            return path
    raise DataError(
        f"{os.path.join(data_dir, name)}[.gz] not found. DATA_DIR must hold the "
        f"four MNIST IDX files, gzipped or not: {_ALL_IDX_FILES}."
    )


def _read_idx(path: str, ndim: int) -> np.ndarray:
    """Parses an IDX file of unsigned bytes: magic 0x0000 08 NDIM, dims, data."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            content = f.read()
    except (OSError, EOFError) as e:  # gzip raises both for a damaged file.
        raise DataError(f"{path}: cannot be read ({e}).") from e
    header_size = 4 + 4 * ndim
    if len(content) < header_size or content[:4] != bytes((0, 0, 0x08, ndim)):
        raise DataError(
            f"{path}: not an IDX file of {ndim}-dimensional unsigned bytes "
            f"(magic 0x000008{ndim:02x}); is it the right file, and complete?"
        )
    shape = tuple(int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header_size + int(np.prod(shape))
    if len(content) != expected:
        raise DataError(
            f"{path}: truncated or padded: its header promises {expected} bytes "
            f"for shape {shape}, the file has {len(content)}."
        )
    return np.frombuffer(content, dtype=np.uint8, offset=header_size).reshape(shape)


def _load_tfds(split: str) -> Split:
    import tensorflow_datasets as tfds  # Slow to import; only this source needs it.

    builder = tfds.builder("mnist")
    if not builder.is_prepared():
        # tfds retries a failed download for minutes; offline, fail in seconds instead.
        _check_download_host(_TFDS_MNIST_URL)
        builder.download_and_prepare()
    data = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
    return Split(images=data["image"], labels=data["label"].astype(np.int32))


def _check_download_host(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname
    try:
        socket.create_connection((host, 443), timeout=_NETWORK_TIMEOUT_S).close()
    except OSError as e:
        raise DataError(
            f"MNIST is not in the tfds cache and its download host {host} cannot "
            f"be reached ({e}). Either copy the four MNIST IDX files "
            f"({_ALL_IDX_FILES}) into a directory and pass --data_dir=DIR "
            "(make: DATA_DIR=DIR), or use synthetic data with --mock_data "
            "(make: MOCK_DATA=1)."
        ) from e
