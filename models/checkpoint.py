"""A model's parameters from an Orbax checkpoint, checked against the model's own structure.

    params = checkpoint.restore("/tmp/jax2tf/checkpoints/regressor", model)

The target is what `model.init` makes (its tree, shapes and dtypes, from jax.eval_shape,
without computing it): a checkpoint whose tree or shapes differ is refused, naming the
paths that differ, before anything is converted. The directory is a checkpoint (written
by orbax's StandardCheckpointer or PyTreeCheckpointer), or a CheckpointManager's folder,
whose newest step is read (its only item, if the step has several folders it must be one).
"""

import os

import jax
import numpy as np

from models.base import Model, Params

METADATA_FILE = "_METADATA"  # What Orbax writes beside a saved pytree.
_MAX_LISTED = 10  # Differences shown, of a mismatch.


class CheckpointError(ValueError):
    """The checkpoint cannot give the model's parameters; the message says why."""


def restore(directory: str, model: Model) -> Params:
    """The parameters in the checkpoint `directory`, in the structure `model.init` makes."""
    import orbax.checkpoint as ocp  # Slow to import; only an export from a checkpoint needs it.

    path = find_checkpoint(directory)
    target = jax.eval_shape(model.init, jax.random.key(0))
    checkpointer = ocp.StandardCheckpointer()
    try:
        saved = checkpointer.metadata(path).item_metadata.tree
    except (OSError, ValueError, KeyError, AttributeError) as e:
        raise CheckpointError(f"CHECKPOINT={directory}: Orbax cannot read it ({e}).") from e
    differences = tree_differences(_shapes(saved), _shapes(target))
    if differences:
        listed = "; ".join(differences[:_MAX_LISTED])
        more = len(differences) - _MAX_LISTED
        raise CheckpointError(
            f"CHECKPOINT={directory} does not hold {model.name}'s parameters: {listed}"
            f"{f'; and {more} more' if more > 0 else ''}. Save the pytree that the model's "
            "init returns, or restore into it where you trained."
        )
    try:
        return checkpointer.restore(path, target)
    except (OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"CHECKPOINT={directory}: Orbax cannot restore it ({e}).") from e


def find_checkpoint(directory: str) -> str:
    """The folder of `directory` that holds a saved pytree (the newest step of a manager's)."""
    if not os.path.isdir(directory):
        raise CheckpointError(f"CHECKPOINT={directory}: no such directory.")
    if os.path.isfile(os.path.join(directory, METADATA_FILE)):
        return directory
    entries = os.listdir(directory)
    if not entries:
        raise CheckpointError(f"CHECKPOINT={directory} is empty: no checkpoint was written there.")
    steps = [e for e in entries if e.isdigit() and os.path.isdir(os.path.join(directory, e))]
    if steps:
        step = os.path.join(directory, max(steps, key=int))
        if os.path.isfile(os.path.join(step, METADATA_FILE)):
            return step
        items = [e for e in os.listdir(step) if os.path.isdir(os.path.join(step, e))]
        if len(items) == 1 and os.path.isfile(os.path.join(step, items[0], METADATA_FILE)):
            return os.path.join(step, items[0])
        if len(items) > 1:
            raise CheckpointError(
                f"CHECKPOINT={directory}: step {os.path.basename(step)} holds several items "
                f"({', '.join(sorted(items))}): name the parameters' folder, {step}/ITEM."
            )
    raise CheckpointError(
        f"CHECKPOINT={directory} is not an Orbax checkpoint (no {METADATA_FILE}, nor steps "
        "of a CheckpointManager): name the folder that orbax.checkpoint saved the parameters to."
    )


def tree_differences(saved: dict[str, tuple], expected: dict[str, tuple]) -> list[str]:
    """How the checkpoint's {path: shape} differs from the model's, a phrase per path."""
    differences = [
        f"{p} is missing (the model has {expected[p]})" for p in expected if p not in saved
    ]
    differences += [f"{p} {saved[p]} is not the model's" for p in saved if p not in expected]
    differences += [
        f"{p} has shape {saved[p]}, the model {expected[p]}"
        for p in expected
        if p in saved and saved[p] != expected[p]
    ]
    return differences


def _shapes(tree) -> dict[str, tuple]:
    """{path: shape} of a pytree of arrays or array metadata, paths like ['Dense_0']['kernel']."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(path): tuple(np.shape(leaf)) for path, leaf in leaves}
