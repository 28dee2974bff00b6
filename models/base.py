"""What every model provides: the `Model` that training and export use.

    model = models.get_model("mnist_flax")
    log_probabilities = model.apply(model.init(jax.random.key(0)), images, True)

The shapes they share, INPUT_SHAPE and NUM_CLASSES, are models.mnist_data's.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax

from models.mnist_data import INPUT_SHAPE, NUM_CLASSES

Params = Any  # A pytree of arrays.


@dataclasses.dataclass(frozen=True)
class Model:
    """A model as the training loop and the exporter see it.

    Attributes:
      name: its name in `models.MODELS`, the --model flag and the $MODEL variable.
      init: rng -> freshly initialised parameters.
      apply: (params, images, with_classifier) -> outputs. The images are
        float32 (B, 28, 28, 1) in [0, 1]. With the classifier the outputs are
        log-probabilities (B, 10); without it, the features of the last hidden
        layer, for reuse in a larger model.
    """

    name: str
    init: Callable[[jax.Array], Params]
    apply: Callable[..., jax.Array]


__all__ = ["INPUT_SHAPE", "NUM_CLASSES", "Model", "Params"]
