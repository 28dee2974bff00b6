"""A model that is not MNIST's: a Flax regressor of tabular rows with two named inputs.

    make export MODEL=examples.regressor:MODEL CHECKPOINT=/tmp/jax2tf/checkpoints/regressor

`numeric` holds 6 standardized features and `onehot` one of 3 categories; the output is one
prediction per row, (batch, 1). It has no training step here (examples/train_regressor.py
trains it elsewhere and writes the Orbax checkpoint that the export restores).
"""

import jax
import jax.numpy as jnp
from flax import linen as nn

from models.base import Model, Params

INPUTS = {
    "numeric": jax.ShapeDtypeStruct((6,), jnp.float32),
    "onehot": jax.ShapeDtypeStruct((3,), jnp.float32),
}


class Regressor(nn.Module):
    """Concatenates the two inputs, one hidden layer, one output."""

    @nn.compact
    def __call__(self, numeric: jax.Array, onehot: jax.Array) -> jax.Array:
        x = jnp.concatenate([numeric, onehot], axis=-1)
        x = nn.relu(nn.Dense(features=32)(x))
        return nn.Dense(features=1)(x)


_REGRESSOR = Regressor()


def init(rng: jax.Array) -> Params:
    examples = {name: jnp.zeros((1, *spec.shape), spec.dtype) for name, spec in INPUTS.items()}
    return _REGRESSOR.init(rng, **examples)["params"]


def apply(params: Params, inputs: dict[str, jax.Array]) -> jax.Array:
    return _REGRESSOR.apply({"params": params}, inputs["numeric"], inputs["onehot"])


MODEL = Model(name="regressor", inputs=INPUTS, init=init, apply=apply)
