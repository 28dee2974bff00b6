"""The MNIST models, their data and their training loop; any model through the protocol.

    from models import get_model, mnist_data
    model = get_model("mnist_flax")  # Imports models/mnist_flax.py, and so JAX, only now.
    model = get_model("examples.regressor:MODEL")  # Any model of models/base.py's protocol.

`MODELS` names the registry's models (the --model flag, $MODEL); `models.<name>` defines
each as `MODEL`. To add one, write its module and list its name in models/loader.py, or
name it as package.module:attribute. `mnist_data` and the request client need no JAX:
importing this package imports none.
"""

from typing import TYPE_CHECKING

from models.loader import REGISTRY as MODELS
from models.loader import ModelError
from models.mnist_data import INPUT_SHAPE, NUM_CLASSES

if TYPE_CHECKING:
    from models.base import Model


def get_model(name: str) -> "Model":
    """The model `name` names (models/loader.py); a ModelError says what MODEL expects."""
    from models import loader

    return loader.load(name)


__all__ = ["INPUT_SHAPE", "MODELS", "NUM_CLASSES", "ModelError", "get_model"]
