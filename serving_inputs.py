"""Send your own arrays (a .npy, or a .npz of named inputs) to any served model; its outputs.

    arrays = serving_inputs.load("inputs.npz")          # {"numeric": ..., "onehot": ...}
    signature = client.signatures()["serving_default"]
    named = serving_inputs.match_signature(arrays, signature)
    outputs = serving_inputs.send(client, named, signature)  # {"output_0": array}

The arrays are checked against the signature the server reports (names, dtypes, shapes,
-1 for any size) before anything is sent. No TensorFlow: REST needs only numpy.
"""

import os

import numpy as np

from serving_client import SIGNATURE, tensor_dims

# The signature's dtypes (TensorFlow's DataType names) that a .npy can hold.
DTYPES = {
    "DT_FLOAT": "float32", "DT_DOUBLE": "float64", "DT_HALF": "float16", "DT_INT8": "int8",
    "DT_INT16": "int16", "DT_INT32": "int32", "DT_INT64": "int64", "DT_UINT8": "uint8",
    "DT_UINT16": "uint16", "DT_UINT32": "uint32", "DT_UINT64": "uint64", "DT_BOOL": "bool",
}  # fmt: skip


class InputsError(ValueError):
    """The inputs file cannot be sent to this signature; the message says why."""


def load(path: str) -> np.ndarray | dict[str, np.ndarray]:
    """A .npy's array, or a .npz's arrays by name."""
    if not path.endswith((".npy", ".npz")):
        raise InputsError(f"--inputs={path}: a .npy (one input) or .npz (named inputs) is needed")
    if not os.path.isfile(path):
        raise InputsError(f"--inputs={path}: no such file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise InputsError(f"--inputs={path}: numpy cannot read it ({e})") from e
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded:
        return {name: loaded[name] for name in loaded.files}


def tensor_spec(info: dict) -> tuple[str, list[int]]:
    """A TensorInfo (REST's JSON form) as (numpy dtype name, dims); -1: any size."""
    return DTYPES.get(info.get("dtype", ""), info.get("dtype", "?")), tensor_dims(info)


def match_signature(
    arrays: np.ndarray | dict[str, np.ndarray], signature: dict, source: str = "--inputs"
) -> dict[str, np.ndarray]:
    """The arrays by the signature's input names, checked against its dtypes and shapes."""
    inputs = signature.get("inputs", {})
    names = ", ".join(sorted(inputs))
    if isinstance(arrays, np.ndarray):
        if len(inputs) != 1:
            raise InputsError(
                f"{source}: one array, but the signature has {len(inputs)} inputs ({names}): "
                "save them in a .npz by name, np.savez(path, NAME=array, ...)"
            )
        arrays = {next(iter(inputs)): arrays}
    if set(arrays) != set(inputs):
        raise InputsError(
            f"{source}: arrays {', '.join(sorted(arrays))}, but the signature's inputs are {names}"
        )
    for name, array in arrays.items():
        dtype, dims = tensor_spec(inputs[name])
        fits = len(dims) == array.ndim and all(
            d in (-1, n) for d, n in zip(dims, array.shape, strict=True)
        )
        if dtype not in DTYPES.values() or array.dtype != np.dtype(dtype) or not fits:
            raise InputsError(
                f"{source}: input '{name}' is {array.dtype} {tuple(array.shape)}, the signature "
                f"takes {dtype} {tuple(dims)} (-1: any size); convert it, e.g. "
                f"np.asarray(x, np.{dtype}), or reshape it"
            )
    return dict(arrays)


def send_file(client, path: str, wait: float) -> dict[str, np.ndarray]:
    """--inputs: loads `path` (a bad file is reported before connecting), waits up to `wait`
    seconds for the server, matches the arrays to its signature and sends them; the outputs."""
    arrays = load(path)
    client.wait_ready(wait)
    signature = client.signatures().get(SIGNATURE, {})
    return send(client, match_signature(arrays, signature, f"--inputs={path}"), signature)


def send(client, named: dict[str, np.ndarray], signature: dict) -> dict[str, np.ndarray]:
    """Sends one request; the outputs by the signature's output names, numbers in its dtypes
    (REST's JSON has none) and others, such as strings, as they come."""
    answer = client.predict(named)
    outputs = signature.get("outputs", {})
    if not isinstance(answer, dict):  # A single output's answer comes unnamed.
        answer = {next(iter(outputs)): answer}
    return {
        name: np.asarray(value, dtype=DTYPES.get(outputs.get(name, {}).get("dtype")))
        for name, value in answer.items()
    }


def describe(outputs: dict[str, np.ndarray]) -> str:
    """The outputs as text: per output, its name, dtype and shape, then its values."""
    return "\n".join(
        f"{name}: {array.dtype} {tuple(array.shape)}\n{np.array2string(array, threshold=200)}"
        for name, array in sorted(outputs.items())
    )
