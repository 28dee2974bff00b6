"""The model protocol: what a model gives the exporter, in one place (README: "Your own model").

    MODEL = Model(
        name="regressor",                       # the served name: MODEL_PATH/regressor/VERSION
        inputs={"numeric": jax.ShapeDtypeStruct((6,), jnp.float32),  # or one spec alone
                "onehot": jax.ShapeDtypeStruct((3,), jnp.float32)},  # (shape without batch)
        init=init,                              # rng -> params (a pytree of arrays)
        apply=apply)                            # (params, inputs) -> one array (batch, ...)

One input spec (anything with .shape and .dtype) makes the signature input `inputs`; a dict
of them makes inputs of those names, and `apply` gets a dict of arrays. Optional: `dataset`
("mnist": saved_model_main.py trains it with models/train.py; None: it needs a checkpoint),
`num_classes` (apply returns log-probabilities of that many classes) and `features` (the
last hidden layer, --nomodel_classifier_layer). The MNIST models are its two examples.
"""

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from models.mnist_data import INPUT_SHAPE, NUM_CLASSES

Params = Any  # A pytree of arrays.
Inputs = Any  # One array, or a dict of arrays by input name.
# What TensorFlow Serving and a directory accept as a model's name.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
REQUIRED = ("name", "inputs", "init", "apply")
OPTIONAL = ("dataset", "num_classes", "features")
DATASETS = ("mnist",)


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One input: its shape without the batch dimension, and its dtype."""

    shape: tuple[int, ...]
    dtype: np.dtype


@dataclasses.dataclass(frozen=True)
class Model:
    """A model as the training loop and the exporter see it (the module docstring)."""

    name: str
    inputs: Any  # A spec, or a dict of specs by input name; see input_specs().
    init: Callable[[jax.Array], Params]
    apply: Callable[[Params, Inputs], jax.Array]
    dataset: str | None = None
    num_classes: int | None = None
    features: Callable[[Params, Inputs], jax.Array] | None = None

    def __post_init__(self):
        problems = protocol_problems(self)
        if problems:
            raise ProtocolError(f"not a model of models/base.py's protocol: {problems}")

    def input_specs(self) -> dict[str, InputSpec] | InputSpec:
        """The inputs as InputSpecs: one, or a dict by name."""
        if isinstance(self.inputs, Mapping):
            return {name: _spec(s) for name, s in self.inputs.items()}
        return _spec(self.inputs)


class ProtocolError(ValueError):
    """An object is not a Model; the message names the missing or wrong parts."""


def as_model(obj: Any) -> Model:
    """`obj` as a Model: a Model, or any object with the protocol's attributes."""
    if isinstance(obj, Model):
        return obj
    missing = [name for name in REQUIRED if not hasattr(obj, name)]
    if missing:
        raise ProtocolError(
            f"{type(obj).__name__} is not a model of models/base.py's protocol: it has no "
            f"{', '.join(missing)} (a model has {', '.join(REQUIRED)}; optional: "
            f"{', '.join(OPTIONAL)})"
        )
    fields = {f: getattr(obj, f) for f in (*REQUIRED, *OPTIONAL) if hasattr(obj, f)}
    return Model(**fields)


def protocol_problems(model: Model) -> str:
    """What is wrong with the parts of `model`, in a line; empty if nothing."""
    problems = []
    if not isinstance(model.name, str) or not NAME_PATTERN.fullmatch(model.name):
        problems.append(f"name {model.name!r} is not a model name ({NAME_PATTERN.pattern})")
    specs = model.inputs if isinstance(model.inputs, Mapping) else {"inputs": model.inputs}
    if not specs:
        problems.append("inputs is an empty dict")
    for key, spec in specs.items():
        if not (hasattr(spec, "shape") and hasattr(spec, "dtype")):
            problems.append(f"input {key!r} is not a spec with .shape and .dtype ({spec!r})")
    for part in ("init", "apply"):
        if not callable(getattr(model, part)):
            problems.append(f"{part} is not callable")
    if model.features is not None and not callable(model.features):
        problems.append("features is not callable")
    if model.dataset not in (None, *DATASETS):
        problems.append(f"dataset {model.dataset!r} is not one of {DATASETS} or None")
    return "; ".join(problems)


def _spec(spec: Any) -> InputSpec:
    return InputSpec(tuple(int(n) for n in spec.shape), np.dtype(spec.dtype))


__all__ = ["INPUT_SHAPE", "NUM_CLASSES", "InputSpec", "Inputs", "Model", "Params", "as_model"]
