"""Write a few MNIST test digits as PNG files, to send with `make request IMAGES=...` or the page.

    python -m tools.sample_digits --out=digits --count=10 [--mock_data]

`make digits` runs it. Even-numbered files are MNIST as it is (a light digit on dark,
28x28); odd-numbered ones are dark ink on white, 4 times larger, as a scan or a
drawing would be: the image signature answers the same for both.
"""

import os

import numpy as np
from absl import app, flags
from PIL import Image

from models import mnist_data

_OUT = flags.DEFINE_string("out", "digits", "The directory to write the PNG files into.")
_COUNT = flags.DEFINE_integer("count", 10, "How many test digits to write.", lower_bound=1)
_MOCK_DATA = flags.DEFINE_boolean("mock_data", False, mnist_data.MOCK_DATA_HELP)
_DATA_DIR = flags.DEFINE_string("data_dir", None, mnist_data.DATA_DIR_HELP)
SCALE = 4  # The dark-on-light files' size: 4 x 28 pixels a side.


def sample_images(data: mnist_data.Split, count: int) -> list[tuple[str, np.ndarray]]:
    """(file name, uint8 (H, W, 1) pixels) of the first `count` test digits.

    The name holds the index and the label: 0003_label-0.png.
    """
    samples = []
    for i in range(min(count, len(data))):
        image = data.images[i]
        if i % 2:  # Ink on paper: inverted and larger, each pixel a SCALE x SCALE block.
            image = np.kron(255 - image, np.ones((SCALE, SCALE, 1), np.uint8))
        samples.append((f"{i:04d}_label-{data.labels[i]}.png", image))
    return samples


def main(argv: list[str]) -> None:
    del argv
    try:
        data = mnist_data.load("test", data_dir=_DATA_DIR.value, mock=_MOCK_DATA.value)
    except mnist_data.DataError as e:
        raise SystemExit(f"error: {e}") from None
    os.makedirs(_OUT.value, exist_ok=True)
    samples = sample_images(data, _COUNT.value)
    for name, image in samples:  # Pillow: a grayscale PNG; tf.image is not needed.
        Image.fromarray(image[:, :, 0]).save(os.path.join(_OUT.value, name))
    pattern = os.path.join(_OUT.value, "*.png")
    print(f"Wrote {len(samples)} test digits to {_OUT.value}/ (make request IMAGES='{pattern}').")


if __name__ == "__main__":
    app.run(main)
