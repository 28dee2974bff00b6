"""A picture of MNIST digits titled with their labels and a model's predictions.

    show.save_images("digits.png", images, labels, predictions)

Needs matplotlib, imported when called; it draws into a file, no window.
"""

import os

import numpy as np

ROWS, COLS = 2, 8
GRID_SIZE = ROWS * COLS  # How many digits the picture shows.


def save_images(
    image_file: str, images: np.ndarray, labels: np.ndarray, predictions: np.ndarray | None = None
) -> str:
    """Writes a PNG of the first GRID_SIZE `images` (N, 28, 28, 1); returns its path.

    Each digit is titled with its label, and with its prediction if `predictions` is given.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(ROWS, COLS, figsize=(COLS * 1.2, ROWS * 1.5))
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(images):
            continue
        ax.imshow(images[i, :, :, 0], cmap="gray")
        title = f"label {labels[i % len(labels)]}"
        if predictions is not None:
            title += f"\npred {predictions[i]}"
        ax.set_title(title, fontsize=8)
    os.makedirs(os.path.dirname(image_file) or ".", exist_ok=True)
    fig.savefig(image_file, dpi=100)
    plt.close(fig)
    return image_file
