"""Send your own arrays (a .npy, or a .npz of named inputs) to any served model; its outputs.

    outputs = inputs_client.send_file(client, "inputs.npz", wait=5)  # {"output_0": array}
    print(inputs_client.describe(outputs))

The arrays are checked against the signature the server reports (serving/signatures.py)
before anything is sent. Over REST, no TensorFlow is loaded.
"""

import numpy as np

from serving.signatures import DTYPES, SIGNATURE, load, match_signature


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
