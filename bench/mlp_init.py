"""Which initialisation trains the MLP best in 3 epochs, on real images.

    python -m bench.mlp_init --data_dir=/usr/share/datasets/fashion-mnist

It trains mnist_pure_jax as `make export` does (Adam 1e-3, 3 epochs, batch
128) from each initialisation below, over several seeds, and prints the mean
test accuracy. The data: MNIST-format IDX files in --data_dir (Debian's
dataset-fashion-mnist has Fashion-MNIST), and, if scikit-learn is installed,
its 1,797 real handwritten digits (8x8, scaled to 24x24 and padded to 28x28;
360 held out). docs/upstream.md quotes its output.
"""

import dataclasses
import itertools
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags, logging

from models import get_model, mnist_data, mnist_pure_jax, train

_DATA_DIR = flags.DEFINE_string("data_dir", None, mnist_data.DATA_DIR_HELP)
_SEEDS = flags.DEFINE_integer("seeds", 3, "Training runs per initialisation.", lower_bound=1)
_EPOCHS = flags.DEFINE_integer("num_epochs", 3, "Epochs per run.", lower_bound=1)

_SIZES = mnist_pure_jax._LAYER_SIZES


def _lecun(rng):
    keys = jax.random.split(rng, len(_SIZES) - 1)
    init = jax.nn.initializers.lecun_normal()
    pairs = itertools.pairwise(_SIZES)
    return [(init(k, (m, n)), jnp.zeros((n,))) for k, (m, n) in zip(keys, pairs, strict=True)]


def _upstream(rng, scale=0.1):
    # The upstream example: every layer, biases too, from the same key.
    return [
        (scale * jax.random.normal(rng, (m, n)), scale * jax.random.normal(rng, (n,)))
        for m, n in itertools.pairwise(_SIZES)
    ]


INITS = {
    "normal 0.1, a key per layer (this project)": mnist_pure_jax.init,
    "normal 0.1, one key for all (upstream)": _upstream,
    "LeCun normal": _lecun,
}


def sklearn_digits() -> tuple[mnist_data.Split, mnist_data.Split] | None:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return None
    digits = load_digits()
    images = np.kron(digits.images / 16.0, np.ones((3, 3)))  # 8x8 -> 24x24
    images = (np.pad(images, ((0, 0), (2, 2), (2, 2)))[..., None] * 255).astype(np.uint8)
    order = np.random.default_rng(0).permutation(len(images))
    labels = digits.target.astype(np.int32)
    test, rest = order[:360], order[360:]
    return (
        mnist_data.Split(images[rest], labels[rest]),
        mnist_data.Split(images[test], labels[test]),
    )


def main(argv: list[str]) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)
    datasets = {}
    if _DATA_DIR.value:
        datasets[_DATA_DIR.value] = (
            mnist_data.load("train", data_dir=_DATA_DIR.value),
            mnist_data.load("test", data_dir=_DATA_DIR.value),
        )
    digits = sklearn_digits()
    if digits:
        datasets["scikit-learn digits"] = digits
    if not datasets:
        sys.exit("error: give --data_dir (MNIST-format IDX files), or pip install scikit-learn")
    base = get_model("mnist_pure_jax")
    for name, (train_data, test_data) in datasets.items():
        print(f"{name}: {len(train_data)} training, {len(test_data)} test images")
        for init_name, init in INITS.items():
            model = dataclasses.replace(base, init=init)
            accuracies = [
                train.train(
                    model, train_data, test_data, num_epochs=_EPOCHS.value, seed=seed
                ).test_accuracy
                for seed in range(_SEEDS.value)
            ]
            print(
                f"  {init_name:45s} mean {np.mean(accuracies):.2%} "
                f"(min {min(accuracies):.2%}, max {max(accuracies):.2%})",
                flush=True,
            )


if __name__ == "__main__":
    app.run(main)
