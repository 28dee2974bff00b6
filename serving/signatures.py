"""A SignatureDef's inputs as TensorFlow Serving reports them (GetModelMetadata, REST's
/metadata, in JSON form), and your arrays (a .npy, or a .npz of named inputs) checked
against them: by `make export INPUTS=` and `model_server_request.py --inputs`.

    signature = client.signatures()[SIGNATURE]
    named = signatures.match_signature(signatures.load("inputs.npz"), signature)

Names, dtypes and shapes (-1: any size) are checked before anything is sent. numpy only.
"""

import os

import numpy as np

SIGNATURE = "serving_default"  # The signature the export writes and the clients call.

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
    """A TensorInfo (REST's JSON form) as (numpy dtype name, dims); -1: any size. A dtype
    that a .npy cannot hold keeps TensorFlow's name (DT_STRING)."""
    return DTYPES.get(info.get("dtype", ""), info.get("dtype", "?")), tensor_dims(info)


def match_signature(
    arrays: np.ndarray | dict[str, np.ndarray], signature: dict, source: str = "--inputs"
) -> dict[str, np.ndarray]:
    """The arrays by the signature's input names, checked against its dtypes and shapes."""
    inputs = signature.get("inputs", {})
    if not inputs:
        raise InputsError(f"{source}: the model has no '{SIGNATURE}' signature with inputs")
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
            f"{source}: arrays {', '.join(sorted(arrays))}, but the signature's inputs are {names}:"
            " save them by those names, np.savez(path, NAME=array, ...)"
        )
    for name, array in arrays.items():
        dtype, dims = tensor_spec(inputs[name])
        if dtype not in DTYPES.values():
            raise InputsError(
                f"{source}: input '{name}' takes {dtype}, but --inputs sends numbers and booleans"
                " only: send it with clients/serving_client.py's predict"
            )
        fits = len(dims) == array.ndim and all(
            d in (-1, n) for d, n in zip(dims, array.shape, strict=True)
        )
        if array.dtype != np.dtype(dtype) or not fits:
            raise InputsError(
                f"{source}: input '{name}' is {array.dtype} {tuple(array.shape)}, the signature "
                f"takes {dtype} {tuple(dims)} (-1: any size); convert it, e.g. "
                f"np.asarray(x, np.{dtype}), or reshape it"
            )
    return dict(arrays)


def tensor_dims(info: dict) -> list[int]:
    """A TensorInfo's dims, in REST's JSON form (int64 as strings, 0 omitted); -1: any size."""
    return [int(d.get("size", 0)) for d in info.get("tensor_shape", {}).get("dim", [])]
