"""clients/image_client.py: files read by glob, and a fixed batch padded, in-process."""

import numpy as np
import pytest

from clients import image_client
from clients.serving_client import RequestError
from models import image_spec


class FakeClient:
    """Answers each image's first byte as its digit; records the batches it was sent."""

    model = "mnist_flax"

    def __init__(self):
        self.batches = []

    def predict(self, inputs: dict, signature_name: str) -> dict:
        assert signature_name == image_spec.SIGNATURE_NAME
        images = list(inputs[image_spec.INPUT_NAME])
        self.batches.append(len(images))
        classes = np.array([image[0] for image in images], np.int64)
        return {
            image_spec.CLASSES: classes,
            image_spec.PROBABILITIES: np.eye(10, dtype=np.float32)[classes],
        }


def test_read_images_sorts_the_matches_of_every_pattern(tmp_path):
    for name in ("b.png", "a.png", "c.jpg"):
        (tmp_path / name).write_bytes(name.encode())
    (tmp_path / "folder.png").mkdir()
    files = image_client.read_images([f"{tmp_path}/*.png", f"{tmp_path}/c.jpg"])
    assert [(path.split("/")[-1], data) for path, data in files] == [
        ("a.png", b"a.png"), ("b.png", b"b.png"), ("c.jpg", b"c.jpg"),
    ]  # fmt: skip
    with pytest.raises(RequestError, match="make digits"):
        image_client.read_images([f"{tmp_path}/*.gif"])
    with pytest.raises(RequestError, match="no file matches"):
        image_client.read_images([f"{tmp_path}/folder.png"])


@pytest.mark.parametrize("pad, batches", [(False, [4, 1]), (True, [4, 4])])
def test_classify_files_pads_only_a_fixed_batch(pad, batches):
    client = FakeClient()
    files = [(f"{i}.png", bytes([i])) for i in range(5)]
    results = image_client.classify_files(client, files, 4, pad=pad)
    assert results == [(f"{i}.png", i, 1.0) for i in range(5)]
    assert client.batches == batches
