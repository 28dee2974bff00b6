"""What every model of the registry provides, and the shapes they share."""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax

# One MNIST image, without the batch dimension: 28x28 pixels, one channel.
INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10

Params = Any  # A pytree of arrays.


@dataclasses.dataclass(frozen=True)
class Model:
    """A model as the training loop and the exporter see it.

    Attributes:
      name: the registry key, the --model flag and the $MODEL variable.
      init: rng -> freshly initialised parameters.
      apply: (params, images, with_classifier) -> outputs. The images are
        float32 (B, 28, 28, 1) in [0, 1]. With the classifier the outputs are
        log-probabilities (B, 10); without it, the features of the last hidden
        layer, for reuse in a larger model.
    """

    name: str
    init: Callable[[jax.Array], Params]
    apply: Callable[..., jax.Array]
