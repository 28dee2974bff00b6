"""The MNIST models, their data and their training loop.

    from models import get_model, mnist_data
    model = get_model("mnist_flax")  # Imports models/mnist_flax.py, and so JAX, only now.

`MODELS` names the models (the --model flag, $MODEL); `models.<name>` defines each
as `MODEL`. To add one, write its module and list its name here. `mnist_data` and
the request client need no JAX: importing this package imports none.
"""

import importlib
from typing import TYPE_CHECKING

from models.mnist_data import INPUT_SHAPE, NUM_CLASSES

if TYPE_CHECKING:
    from models.base import Model

MODELS = ("mnist_pure_jax", "mnist_flax")


def get_model(name: str) -> "Model":
    """The model called `name`; a ValueError lists the valid names."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return importlib.import_module(f"models.{name}").MODEL


__all__ = ["INPUT_SHAPE", "MODELS", "NUM_CLASSES", "get_model"]
