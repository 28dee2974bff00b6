"""The MNIST sources: IDX files (gzipped and raw), synthetic data, tfds offline."""

import gzip
import os
import socket
import tempfile

import numpy as np
import pytest
import tensorflow_datasets as tfds

from models import mnist_data


def write_idx(path, array: np.ndarray, gz: bool = False, magic: bytes | None = None) -> str:
    header = magic or bytes((0, 0, 0x08, array.ndim))
    header += b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path = str(path) + (".gz" if gz else "")
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(data)
    return path


def write_split(directory, split: str, n: int = 5, gz: bool = False, size: int = 28):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, size, size))
    labels = np.arange(n) % 10
    images_name, labels_name = mnist_data.IDX_FILES[split]
    write_idx(directory / images_name, images, gz)
    write_idx(directory / labels_name, labels, gz)
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    images, labels = write_split(tmp_path, "test", gz=gz)
    split = mnist_data.load("test", data_dir=str(tmp_path))
    assert split.images.shape == (5, 28, 28, 1) and split.images.dtype == np.uint8
    np.testing.assert_array_equal(split.images[..., 0], images)
    np.testing.assert_array_equal(split.labels, labels)
    assert split.labels.dtype == np.int32


def test_missing_file_names_the_file_and_the_fix(tmp_path):
    write_split(tmp_path, "test")
    with pytest.raises(mnist_data.DataError, match=r"train-images-idx3-ubyte.*not found.*DATA_DIR"):
        mnist_data.load("train", data_dir=str(tmp_path))


def test_truncated_file(tmp_path):
    write_split(tmp_path, "test")
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(mnist_data.DataError, match=f"{path}: truncated"):
        mnist_data.load("test", data_dir=str(tmp_path))


def test_truncated_gzip(tmp_path):
    write_split(tmp_path, "test", gz=True)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(mnist_data.DataError, match=f"{path}: cannot be read"):
        mnist_data.load("test", data_dir=str(tmp_path))


def test_wrong_magic(tmp_path):
    write_split(tmp_path, "test")
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((2, 28, 28)), magic=b"\x00\x00\x0d\x03")
    with pytest.raises(mnist_data.DataError, match="not an IDX file"):
        mnist_data.load("test", data_dir=str(tmp_path))


def test_wrong_image_size(tmp_path):
    write_split(tmp_path, "test", size=32)
    with pytest.raises(mnist_data.DataError, match="32x32 pixels"):
        mnist_data.load("test", data_dir=str(tmp_path))


def test_label_out_of_range_and_count_mismatch(tmp_path):
    write_split(tmp_path, "test")
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([1, 2, 3, 4, 12]))
    with pytest.raises(mnist_data.DataError, match="label 12 is outside 0-9"):
        mnist_data.load("test", data_dir=str(tmp_path))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([1, 2, 3]))
    with pytest.raises(mnist_data.DataError, match=r"5 images but .* 3 labels"):
        mnist_data.load("test", data_dir=str(tmp_path))


def test_synthetic_data_shapes_and_determinism():
    a, b = mnist_data.synthetic(64, seed=1), mnist_data.synthetic(64, seed=1)
    assert a.images.shape == (64, 28, 28, 1) and a.labels.shape == (64,)
    np.testing.assert_array_equal(a.images, b.images)
    assert set(np.unique(a.labels)) <= set(range(10))


def test_batches_cover_every_example_in_order_and_drop_remainder_when_shuffling():
    data = mnist_data.synthetic(50)
    ordered = list(mnist_data.batches(data, 16))
    assert [len(y) for _, y in ordered] == [16, 16, 16, 2]
    np.testing.assert_array_equal(np.concatenate([y for _, y in ordered]), data.labels)
    shuffled = list(mnist_data.batches(data, 16, rng=np.random.default_rng(0)))
    assert [len(y) for _, y in shuffled] == [16, 16, 16]


def test_tfds_offline_fails_fast_with_advice(tmp_path, monkeypatch):
    # An empty tfds cache and a network that refuses every connection.
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "data"))
    # tfds.builder makes a temporary folder for metadata from GCS and leaves it: keep it here.
    (tmp_path / "data").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def unreachable(*args, **kwargs):
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr(socket, "create_connection", unreachable)

    # tfds's own download would retry for minutes: it must not even start.
    def no_download(*args, **kwargs):
        raise AssertionError("tfds download attempted while offline")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_download)
    with pytest.raises(mnist_data.DataError) as error:
        mnist_data.load("train")
    assert "--data_dir" in str(error.value) and "DATA_DIR=" in str(error.value)
    assert "MOCK_DATA=1" in str(error.value)
    assert not os.listdir(tmp_path / "data")  # Nothing half-downloaded.
