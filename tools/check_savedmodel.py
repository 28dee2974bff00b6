"""Load a SavedModel with the TensorFlow installed here and run it as TensorFlow Serving does.

    python tools/check_savedmodel.py --saved_model_dir=/tmp/jax2tf/saved_models/mnist_flax/1

With `tensorflow-cpu==X.Y.*` installed, this tells whether TensorFlow Serving
X.Y can serve the model, without Docker (`make compat` runs it for each
release). It imports only tensorflow, numpy and absl, and none of this
project's files, so it runs in a virtualenv that holds nothing else. Like
TensorFlow Serving's Predict, it loads the "serve" MetaGraph into a TF1
Session and runs the signature's tensors by name, then compares with the JAX
outputs stored with the export (assets.extra/validation_batch.npz). Where the
export has an image signature (predict_images, models/image_signature.py), it
runs it too on the batch's PNG files. It prints one JSON line and exits 1 if
the model does not load, run, or match.
"""

import json
import os
import re
import sys

import numpy as np
import tensorflow as tf
from absl import app, flags

VALIDATION_FILE = os.path.join("assets.extra", "validation_batch.npz")
# models/image_spec.py's names, repeated: this file imports none of the project's.
IMAGE_SIGNATURE, IMAGE_PROBABILITIES = "predict_images", "probabilities"

_SAVED_MODEL_DIR = flags.DEFINE_string(
    "saved_model_dir",
    None,
    "A SavedModel version directory, e.g. MODEL_PATH/MODEL/1 (required).",
)
_SIGNATURE = flags.DEFINE_string("signature_name", "serving_default", "The signature to run.")


def empty_result(error: str | None = None, tensorflow: str | None = None) -> dict:
    """The findings before anything was tried: the fields of the JSON line, all negative."""
    return dict(
        tensorflow=tensorflow,
        loads=False,
        runs=False,
        max_abs_diff=None,
        matches=False,
        error=error,
        images=None,  # The image signature: True matches, False does not, None: none.
    )


def check(saved_model_dir: str, signature_name: str) -> dict:
    """Loads, runs and compares; returns the findings (see the module docstring)."""
    result = empty_result(tensorflow=tf.__version__)
    try:
        batch = np.load(os.path.join(saved_model_dir, VALIDATION_FILE))
    except OSError as e:
        result["error"] = f"no validation batch: {e}. Export the model again (make export)."
        return result
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        try:
            meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], saved_model_dir)
            signature = meta_graph.signature_def[signature_name]
        except (tf.errors.OpError, RuntimeError, OSError, KeyError, ValueError) as e:
            result["error"] = error_line(e)
            return result
        result["loads"] = True
        # One input is stored as "inputs", named ones as "inputs.NAME" (saved_model_lib.py).
        named = {
            k.removeprefix("inputs."): batch[k] for k in batch.files if k.startswith("inputs.")
        }
        if not named and len(signature.inputs) == 1:
            named = {next(iter(signature.inputs)): batch["inputs"]}
        if set(named) != set(signature.inputs) or len(signature.outputs) != 1:
            result["error"] = f"{signature_name} has not the validation batch's inputs, one output"
            return result
        (output_info,) = signature.outputs.values()
        try:
            feed = {signature.inputs[name].name: array for name, array in named.items()}
            outputs = session.run(output_info.name, feed)
        except (tf.errors.OpError, ValueError) as e:
            result["error"] = error_line(e)
            return result
        image_error = None
        if IMAGE_SIGNATURE in meta_graph.signature_def and "images" in batch:
            image_error = check_images(session, meta_graph.signature_def[IMAGE_SIGNATURE], batch)
            result["images"] = image_error is None
    result["runs"] = True
    expected = batch["outputs"]
    if outputs.shape != expected.shape:
        result["error"] = f"output shape {outputs.shape}, expected {expected.shape}"
        return result
    result["max_abs_diff"] = float(np.max(np.abs(outputs - expected)))
    result["matches"] = bool(
        np.allclose(outputs, expected, atol=float(batch["atol"]), rtol=float(batch["rtol"]))
    )
    if not result["matches"]:
        result["error"] = (
            f"outputs differ from JAX's by up to {result['max_abs_diff']:.3g} "
            f"(atol {float(batch['atol'])}, rtol {float(batch['rtol'])})"
        )
    elif image_error:
        result["matches"] = False
        result["error"] = f"{IMAGE_SIGNATURE}: {image_error}"
    return result


def check_images(session, signature, batch) -> str | None:
    """Runs the image signature on the batch's PNG files; why it fails to match, or None."""
    (input_info,) = signature.inputs.values()
    output_name = signature.outputs[IMAGE_PROBABILITIES].name
    try:
        probabilities = session.run(output_name, {input_info.name: batch["images"]})
    except (tf.errors.OpError, ValueError) as e:
        return error_line(e)
    expected = batch["image_probabilities"]
    if probabilities.shape != expected.shape:
        return f"output shape {probabilities.shape}, expected {expected.shape}"
    diff = float(np.max(np.abs(probabilities - expected)))
    if not np.allclose(probabilities, expected, atol=float(batch["atol"]), rtol=0):
        return f"probabilities differ from JAX's by up to {diff:.3g}"
    return None


# Lines of TensorFlow's error texts that say where, not what.
_NOISE = ("root error(s) found", "Graph execution error", "Detected at node", "[[{{node")


def error_line(error: Exception) -> str:
    """The line of a TensorFlow error that says what went wrong."""
    text = getattr(error, "message", None) or str(error)
    for line in text.splitlines():
        line = re.sub(r"^\(\d+\)\s*", "", line.strip())
        if line and not any(noise in line for noise in _NOISE):
            return line
    return type(error).__name__


def main(argv: list[str]) -> None:
    del argv
    result = check(_SAVED_MODEL_DIR.value, _SIGNATURE.value)
    print(json.dumps(result), flush=True)
    sys.exit(0 if result["matches"] else 1)


if __name__ == "__main__":
    # Required only when run: importing this module must not constrain other programs' flags.
    flags.mark_flag_as_required(_SAVED_MODEL_DIR.name)
    app.run(main)
