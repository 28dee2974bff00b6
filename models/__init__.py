"""The MNIST models, their data and their shared training loop.

`MODELS` is the registry: model name (the --model flag, $MODEL) -> `Model`.
To add a model, write a module that defines `MODEL` and list it here.
"""

from models import mnist_flax, mnist_pure_jax
from models.base import INPUT_SHAPE, NUM_CLASSES, Model

MODELS: dict[str, Model] = {m.name: m for m in (mnist_pure_jax.MODEL, mnist_flax.MODEL)}


def get_model(name: str) -> Model:
    """The registered model called `name`; a ValueError lists the valid names."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}") from None


__all__ = ["INPUT_SHAPE", "MODELS", "NUM_CLASSES", "Model", "get_model"]
