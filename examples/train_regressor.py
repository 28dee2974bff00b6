r"""Train examples/regressor.py on synthetic rows and save its parameters as an Orbax checkpoint.

    python -m examples.train_regressor --checkpoint_dir=/tmp/jax2tf/checkpoints/regressor \
        --sample_inputs=/tmp/jax2tf/regressor_inputs.npz

It stands for your own training job: what the export needs from it is the checkpoint of
the pytree that the model's init makes (orbax.checkpoint.StandardCheckpointer), and, if
you like, a few real inputs to check the SavedModel on and to send to the server.
"""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from absl import app, flags, logging

from examples import regressor

_CHECKPOINT_DIR = flags.DEFINE_string("checkpoint_dir", None, "Where to save the checkpoint.")
_SAMPLE_INPUTS = flags.DEFINE_string("sample_inputs", None, "A .npz of a few inputs to write.")
_STEPS = flags.DEFINE_integer("steps", 300, "Training steps.", lower_bound=0)


def synthetic_rows(rows: int, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Inputs and targets: a linear function of the features plus a per-category offset."""
    rng = np.random.default_rng(seed)
    numeric = rng.standard_normal((rows, 6)).astype(np.float32)
    onehot = np.eye(3, dtype=np.float32)[rng.integers(0, 3, rows)]
    target = numeric @ np.linspace(-1, 1, 6, dtype=np.float32) + onehot @ np.float32([0, 2, -2])
    return {"numeric": numeric, "onehot": onehot}, target[:, None]


def train(steps: int, seed: int = 0):
    """The trained parameters, after `steps` of Adam on the mean squared error."""
    inputs, targets = synthetic_rows(1024, seed)
    params = regressor.init(jax.random.key(seed))
    optimizer = optax.adam(1e-2)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state):
        def loss_fn(p):
            return jnp.mean((regressor.apply(p, inputs) - targets) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    loss = None
    for _ in range(steps):
        params, opt_state, loss = step(params, opt_state)
    if loss is not None:
        print(f"Trained {steps} steps: mean squared error {float(loss):.4f}")
    return params


def save(params, directory: str) -> None:
    """Saves `params` where the export's CHECKPOINT finds them."""
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(os.path.abspath(directory), params, force=True)  # Replaces an old one.
    checkpointer.wait_until_finished()


def main(argv: list[str]) -> None:
    del argv
    if not _CHECKPOINT_DIR.value:  # Not mark_flag_as_required: tests import this module.
        sys.exit("error: --checkpoint_dir=DIR is needed: where to save the checkpoint")
    logging.set_verbosity(logging.WARNING)  # Orbax logs each step of a save.
    save(train(_STEPS.value), _CHECKPOINT_DIR.value)
    print(f"Saved the checkpoint to {_CHECKPOINT_DIR.value}")
    if _SAMPLE_INPUTS.value:
        inputs, _ = synthetic_rows(4, seed=1)
        os.makedirs(os.path.dirname(os.path.abspath(_SAMPLE_INPUTS.value)), exist_ok=True)
        np.savez(_SAMPLE_INPUTS.value, **inputs)
        print(f"Wrote 4 rows of inputs to {_SAMPLE_INPUTS.value}")


if __name__ == "__main__":
    app.run(main)
