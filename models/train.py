"""One training loop for every model of the registry.

Adam at learning rate 0.001 reaches high test accuracy within the default 3
epochs for both models; plain SGD at that rate leaves the MLP far from converged
(docs/upstream.md compares them).

The step takes uint8 images and integer labels and does the scaling and the
one-hot arithmetic on the device, so the host only slices arrays. JAX
dispatches each step asynchronously: the host prepares the next batch while the
device computes, and reads the accuracy counters back once per epoch.
"""

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from models.base import Model, Params
from models.mnist_data import Split, batches, scale_images
from models.progress import bar as progress_bar

TRAIN_BATCH_SIZE = 128
TEST_BATCH_SIZE = 16
EVAL_BATCH_SIZE = 256  # Accuracy in few large batches: fewer dispatches, the same count.
LEARNING_RATE = 1e-3


@dataclasses.dataclass(frozen=True)
class TrainResult:
    params: Params
    train_accuracy: float | None  # Over the last epoch, while the parameters moved.
    test_accuracy: float | None  # None: a model with no test data.


def train(
    model: Model, train_data: Split, test_data: Split, *, num_epochs: int, seed: int = 0
) -> TrainResult:
    """Trains `model` with Adam; logs time, throughput and accuracy per epoch."""
    # Jitted, each is one XLA compilation rather than one per operation.
    params = jax.jit(model.init)(jax.random.PRNGKey(seed))
    optimizer = optax.adam(LEARNING_RATE)
    opt_state = jax.jit(optimizer.init)(params)
    step = make_train_step(model, optimizer)
    count_correct = make_count_correct(model)  # Compiled once, not once per epoch.
    shuffle_rng = np.random.default_rng(seed)
    steps_per_epoch = len(train_data) // TRAIN_BATCH_SIZE
    if steps_per_epoch == 0:
        raise ValueError(
            f"{len(train_data)} training examples are fewer than one batch of {TRAIN_BATCH_SIZE}"
        )
    train_accuracy = test_accuracy = 0.0
    for epoch in range(1, num_epochs + 1):
        start = time.perf_counter()
        label = f"{model.name}: epoch {epoch}/{num_epochs}"
        params, opt_state, correct = train_epoch(
            step, params, opt_state, train_data, shuffle_rng, progress=label
        )
        train_accuracy = correct / (steps_per_epoch * TRAIN_BATCH_SIZE)
        seconds = time.perf_counter() - start
        test_accuracy = accuracy(model, params, test_data, count_correct)
        logging.info(
            "%s: epoch %d/%d in %.1f s (%.0f examples/s): train accuracy %.2f%%, "
            "test accuracy %.2f%%",
            model.name,
            epoch,
            num_epochs,
            seconds,
            steps_per_epoch * TRAIN_BATCH_SIZE / seconds,
            100 * train_accuracy,
            100 * test_accuracy,
        )
    return TrainResult(params, train_accuracy, test_accuracy)


def train_epoch(step, params, opt_state, data: Split, rng: np.random.Generator, progress: str = ""):
    """One pass over `data` in shuffled batches: (params, opt_state, correct predictions)."""
    steps = len(data) // TRAIN_BATCH_SIZE
    correct = []
    for i, (images, labels) in enumerate(batches(data, TRAIN_BATCH_SIZE, rng=rng)):
        params, opt_state, batch_correct = step(params, opt_state, images, labels)
        correct.append(batch_correct)
        if progress:
            progress_bar(progress, i + 1, steps)
    return params, opt_state, int(np.sum(jax.device_get(correct)))


def make_train_step(model: Model, optimizer: optax.GradientTransformation):
    """The jitted step: (params, opt_state, images, labels) -> (params, opt_state, correct)."""

    def loss_fn(params, images, labels):
        log_probs = model.apply(params, scale_images(images))
        loss = -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=1))
        return loss, log_probs

    @jax.jit
    def step(params, opt_state, images, labels):
        (_, log_probs), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, images, labels)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        correct = jnp.sum(jnp.argmax(log_probs, axis=1) == labels)
        return optax.apply_updates(params, updates), opt_state, correct

    return step


def make_count_correct(model: Model):
    """The jitted count of correct predictions: (params, images, labels) -> int."""

    @jax.jit
    def count_correct(params, images, labels):
        predicted = jnp.argmax(model.apply(params, scale_images(images)), axis=1)
        return jnp.sum(predicted == labels)

    return count_correct


def accuracy(model: Model, params: Params, data: Split, count_correct=None) -> float:
    """Fraction of `data` that `model` classifies correctly (count_correct: a
    make_count_correct(model) to reuse)."""
    count_correct = count_correct or make_count_correct(model)
    counts = [count_correct(params, x, y) for x, y in batches(data, EVAL_BATCH_SIZE)]
    return float(np.sum(jax.device_get(counts))) / len(data)
