"""A CNN in Flax (linen), the upstream jax2tf example's architecture.

conv32 -> avgpool -> conv64 -> avgpool -> dense256 -> dense10. The exporter
needs a plain function of (params, images), so `apply` closes over the module.
"""

import functools

import jax
import jax.numpy as jnp
from flax import linen as nn

from models.base import INPUT_SHAPE, NUM_CLASSES, Model, Params


class CNN(nn.Module):
    """A small CNN; with_classifier=False stops before the last layer."""

    @nn.compact
    def __call__(self, x: jax.Array, with_classifier: bool = True) -> jax.Array:
        x = nn.relu(nn.Conv(features=32, kernel_size=(3, 3))(x))
        x = nn.avg_pool(x, window_shape=(2, 2), strides=(2, 2))
        x = nn.relu(nn.Conv(features=64, kernel_size=(3, 3))(x))
        x = nn.avg_pool(x, window_shape=(2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(nn.Dense(features=256)(x))
        if not with_classifier:
            return x
        return nn.log_softmax(nn.Dense(features=NUM_CLASSES)(x))


_CNN = CNN()


def init(rng: jax.Array) -> Params:
    return _CNN.init(rng, jnp.zeros((1, *INPUT_SHAPE), jnp.float32))["params"]


def apply(params: Params, images: jax.Array, with_classifier: bool = True) -> jax.Array:
    return _CNN.apply({"params": params}, images, with_classifier=with_classifier)


# Float32 images (28, 28, 1) in [0, 1] -> log-probabilities of the 10 digits.
MODEL = Model(
    name="mnist_flax",
    inputs=jax.ShapeDtypeStruct(INPUT_SHAPE, jnp.float32),
    init=init,
    apply=apply,
    dataset="mnist",
    num_classes=NUM_CLASSES,
    features=functools.partial(apply, with_classifier=False),
)
