"""The inputs an export checks, validates and warms up with, for any model of the protocol.

    batch = inputs.batches(model, "inputs.npz", test_data=None)  # batch(16): 16 examples
    signatures, polymorphic_shapes = inputs.signatures(model, serving_batch_size=-1)

The user's --inputs file (checked against the input specs); otherwise MNIST models' test
images, and for other models inputs made from the specs (seeded: an export repeats).
"""

from collections.abc import Callable

import numpy as np
import tensorflow as tf

import saved_model_lib
from models import mnist_data
from models.base import InputSpec, Model
from serving.signatures import DTYPES, InputsError, load, match_signature

Batch = np.ndarray | dict[str, np.ndarray]
_DATA_TYPES = {v: k for k, v in DTYPES.items()}  # float32 -> DT_FLOAT


def specs(model: Model) -> dict[str, InputSpec]:
    """The model's inputs by their signature names (saved_model_lib.INPUT_NAME for one)."""
    specs = model.input_specs()
    return specs if isinstance(specs, dict) else {saved_model_lib.INPUT_NAME: specs}


def signatures(model: Model, serving_batch_size: int) -> tuple[list, str | None]:
    """convert_and_save_model's input_signatures and polymorphic_shapes (-1: any batch)."""
    batch = None if serving_batch_size == -1 else serving_batch_size
    named = {
        name: tf.TensorSpec((batch, *spec.shape), tf.as_dtype(spec.dtype), name=name)
        for name, spec in specs(model).items()
    }
    signature = named if isinstance(model.input_specs(), dict) else next(iter(named.values()))
    return [signature], ("(b, ...)" if batch is None else None)


def batches(
    model: Model, inputs_file: str, test_data: mnist_data.Split | None
) -> Callable[[int], Batch]:
    """batch(n): n examples to check and warm up with, as the model's apply takes them."""
    if test_data is not None and not inputs_file:
        return lambda n: mnist_data.scale_images(test_data.images[np.arange(n) % len(test_data)])
    named = from_file(model, inputs_file) if inputs_file else from_specs(model)
    one = not isinstance(model.input_specs(), dict)

    def batch(n: int) -> Batch:
        rows = {k: v[np.arange(n) % len(v)] for k, v in named.items()}
        return next(iter(rows.values())) if one else rows

    return batch


def from_file(model: Model, path: str) -> dict[str, np.ndarray]:
    """The arrays of a .npy/.npz, checked against the model's input specs."""
    signature = {
        "inputs": {
            name: {
                "dtype": _DATA_TYPES.get(spec.dtype.name, spec.dtype.name),
                "tensor_shape": {"dim": [{"size": n} for n in (-1, *spec.shape)]},
            }
            for name, spec in specs(model).items()
        }
    }
    arrays = load(path)
    named = match_signature(arrays, signature, f"--inputs={path}")
    if not len(next(iter(named.values()))) or len({len(v) for v in named.values()}) != 1:
        raise InputsError(f"--inputs={path}: its inputs need the same rows, >= 1")
    return named


def from_specs(model: Model, rows: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs made from the specs: normal floats, small integers, random booleans."""
    rng = np.random.default_rng(seed)
    made = {}
    for name, spec in specs(model).items():
        shape = (rows, *spec.shape)
        if spec.dtype.kind == "f":
            made[name] = rng.standard_normal(shape).astype(spec.dtype)
        elif spec.dtype.kind == "b":
            made[name] = rng.integers(0, 2, shape).astype(bool)
        else:
            made[name] = rng.integers(0, 4, shape).astype(spec.dtype)
    return made
