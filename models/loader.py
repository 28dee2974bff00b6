"""MODEL as a name of the registry or as `package.module:attribute`, loaded as a Model.

    model = loader.load("examples.regressor:MODEL")  # or "mnist_flax"

The module is imported from the current directory or PYTHONPATH; the attribute is a
model of models/base.py's protocol, or a callable without arguments that returns one.
Every failure is a ModelError of one line: what went wrong, then what MODEL expects.
"""

import importlib
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from models.base import Model

REGISTRY = ("mnist_pure_jax", "mnist_flax")
EXPECTED = (
    "MODEL is one of {names}, or package.module:attribute (importable from the current "
    "directory or PYTHONPATH) naming a model of models/base.py's protocol"
)


class ModelError(ValueError):
    """MODEL names no model; the message says why and what MODEL expects."""


def load(spec: str) -> "Model":
    """The model that `spec` names: a registry name or package.module:attribute."""
    from models import base  # Imports JAX: only once a model is asked for.

    expected = EXPECTED.format(names=", ".join(REGISTRY))
    if ":" not in spec:
        if spec not in REGISTRY:
            raise ModelError(f"unknown model {spec!r}. {expected}.")
        return importlib.import_module(f"models.{spec}").MODEL
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ModelError(f"MODEL={spec}: both the module and the attribute are needed. {expected}.")
    if os.getcwd() not in sys.path:  # A script's sys.path starts at its own folder.
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # Whatever the user's module raises, shown as it is.
        raise ModelError(
            f"MODEL={spec}: importing {module_name} failed: {type(e).__name__}: {e}. {expected}."
        ) from e
    try:
        obj = getattr(module, attribute)
    except AttributeError:
        raise ModelError(
            f"MODEL={spec}: module {module_name} has no attribute {attribute!r}. {expected}."
        ) from None
    if callable(obj) and not _has_protocol_parts(obj):
        try:
            obj = obj()
        except Exception as e:
            raise ModelError(
                f"MODEL={spec}: calling {attribute}() failed: {type(e).__name__}: {e}. {expected}."
            ) from e
    try:
        return base.as_model(obj)
    except base.ProtocolError as e:
        raise ModelError(f"MODEL={spec}: {e}.") from e


def _has_protocol_parts(obj) -> bool:
    """Whether `obj` has any part of a model (so it is one, or a wrong one: not a factory)."""
    from models import base

    return any(hasattr(obj, name) for name in base.REQUIRED)
