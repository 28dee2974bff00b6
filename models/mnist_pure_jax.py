"""An MLP in pure JAX: no framework, so every parameter and operation is visible.

784 -> 512 -> 512 -> 10 with tanh, the upstream jax2tf example's architecture.
The parameters are a list of (weights, biases) pairs, a pytree that jax2tf and
tf.nest both understand, so it needs no conversion before export.
"""

import functools
import math

import jax
import jax.numpy as jnp

from models.base import INPUT_SHAPE, NUM_CLASSES, Model, Params

_LAYER_SIZES = (math.prod(INPUT_SHAPE), 512, 512, NUM_CLASSES)


# Normal weights of standard deviation 0.1, the upstream example's scale: in 3
# epochs it trains as well as LeCun-normal on Fashion-MNIST and better on real
# handwritten digits (python -m bench.mlp_init; docs/upstream.md).
_INIT_SCALE = 0.1


def init(rng: jax.Array) -> Params:
    # A key per layer, so that layers start independent; biases start at zero.
    keys = jax.random.split(rng, len(_LAYER_SIZES) - 1)
    return [
        (_INIT_SCALE * jax.random.normal(key, (m, n)), jnp.zeros((n,)))
        for key, m, n in zip(keys, _LAYER_SIZES[:-1], _LAYER_SIZES[1:], strict=True)
    ]


def apply(params: Params, images: jax.Array, with_classifier: bool = True) -> jax.Array:
    # -1, not the product of INPUT_SHAPE: keeps the batch dimension symbolic
    # for a batch-polymorphic export.
    x = images.reshape((images.shape[0], -1))
    for w, b in params[:-1]:
        x = jnp.tanh(x @ w + b)
    if not with_classifier:
        return x
    w, b = params[-1]
    return jax.nn.log_softmax(x @ w + b)


# Float32 images (28, 28, 1) in [0, 1] -> log-probabilities of the 10 digits.
MODEL = Model(
    name="mnist_pure_jax",
    inputs=jax.ShapeDtypeStruct(INPUT_SHAPE, jnp.float32),
    init=init,
    apply=apply,
    dataset="mnist",
    num_classes=NUM_CLASSES,
    features=functools.partial(apply, with_classifier=False),
)
