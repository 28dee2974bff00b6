"""A picture of MNIST digits titled with their labels and a model's predictions.

    show.save_images("digits.png", images, labels, predictions)

Drawn with Pillow, imported when called, into a PNG file.
"""

import os

import numpy as np

ROWS, COLS = 2, 8
GRID_SIZE = ROWS * COLS  # How many digits the picture shows.
# Each digit drawn 3 times its size, under 30 pixels of title, 6 pixels apart.
_SCALE, _TITLE, _GAP = 3, 30, 6


def save_images(
    image_file: str, images: np.ndarray, labels: np.ndarray, predictions: np.ndarray | None = None
) -> str:
    """Writes a PNG of the first GRID_SIZE `images` (N, 28, 28, 1); returns its path.

    Each digit is titled with its label, and with its prediction if `predictions` is given.
    """
    from PIL import Image, ImageDraw, ImageFont

    side = 28 * _SCALE
    width, height = side + _GAP, side + _TITLE + _GAP
    picture = Image.new("L", (COLS * width, ROWS * height), color=255)
    draw, font = ImageDraw.Draw(picture), ImageFont.load_default(size=11)
    for i in range(min(len(images), GRID_SIZE)):
        x, y = i % COLS * width + _GAP // 2, i // COLS * height
        pixels = np.clip(images[i, :, :, 0], 0, 1) * 255
        digit = Image.fromarray(pixels.astype(np.uint8)).resize((side, side), Image.NEAREST)
        picture.paste(digit, (x, y + _TITLE))
        title = f"label {labels[i % len(labels)]}"
        if predictions is not None:
            title += f"\npred {predictions[i]}"
        draw.multiline_text((x + side // 2, y + 1), title, fill=0, font=font, anchor="ma")
    os.makedirs(os.path.dirname(image_file) or ".", exist_ok=True)
    picture.save(image_file)
    return image_file
