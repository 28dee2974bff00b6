"""The parts of saved_model_main.py's export around the conversion.

    options = export_lib.ExportOptions(model="mnist_pure_jax", mock_data=True)
    serve = export_lib.serving_signature("/tmp/jax2tf/saved_models/mnist_pure_jax/1")
    outputs = export_lib.predict(serve, export_lib.test_batch(test_data, 16))

ExportOptions (a field per flag); the files an export writes beside the SavedModel
(validation batch, warmup requests, export record, for MNIST models a picture of
predictions); the SavedModel's serving signature, which TensorFlow Serving runs; and the
checks on it: against the JAX function before publishing, and a published version's test
accuracy (--nogenerate_model).
"""

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator

import jax
import numpy as np
import tensorflow as tf
from absl import logging

import saved_model_lib
from models import MODELS, checkpoint, image_signature, image_spec, inputs, mnist_data, show, train
from models.base import InputSpec, Model, Params
from models.inputs import Batch
from models.train import TrainResult
from serving import releases, versions
from serving.env import DEFAULTS
from serving.status import first_line

IMAGES_FILE = os.path.join("assets.extra", "test_images.png")
VALIDATION_BATCH_SIZE = 8  # Examples in the validation batch of a batch-polymorphic export.
# How close the SavedModel must come to the JAX function, on each kind of device.
CPU_TOLERANCES = dict(atol=1e-5, rtol=1e-5)
GPU_TOLERANCES = dict(atol=1e-6, rtol=1e-4)


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """What to train and how to export it: one field per flag of saved_model_main.py."""

    model: str = DEFAULTS["MODEL"]
    model_classifier_layer: bool = True
    model_path: str = DEFAULTS["MODEL_PATH"]
    model_version: int | None = None  # None: the next free version, when publishing.
    serving_batch_size: int = int(DEFAULTS["SERVING_BATCH_SIZE_SAVE"])  # -1: any.
    num_epochs: int = 3
    compile_model: bool = True
    show_images: bool = False
    test_savedmodel: bool = True
    platforms: tuple[str, ...] = ("cpu",)
    warmup_batch_sizes: tuple[int, ...] = (1, 8, 16, 32, 64, 128)
    # The table's newest release with an image, as env.sh's default; "nightly": JAX's newest format.
    tf_serving_version: str = releases.newest_with_image().release
    overwrite: bool = False
    mock_data: bool = False
    data_dir: str = ""
    checkpoint: str = ""  # An Orbax checkpoint to restore the parameters from, not training.
    inputs: str = ""  # A .npy/.npz of real inputs to check the SavedModel on.


class ExportError(Exception):
    """The export cannot go on; the message says why and what to do."""


def load_mnist(split: str, options: ExportOptions) -> mnist_data.Split:
    """The `split` of MNIST from the source the options choose: tfds, --data_dir or mock."""
    return mnist_data.load(split, data_dir=options.data_dir or None, mock=options.mock_data)


def inputs_and_checkpoint(
    model: Model, options: ExportOptions
) -> tuple[Callable[[int], Batch] | None, Params | None]:
    """The export's pre-flight for the model: the examples to check it on, when they are not
    MNIST's test images (--inputs, or made from the input specs), and the parameters of
    --checkpoint. Refuses what cannot be exported, before anything is written."""
    mnist = model.dataset == "mnist"
    if not options.model_classifier_layer and model.features is None:
        raise ExportError(f"{model.name} has no features to export: keep the classifier layer.")
    if not (mnist or options.checkpoint):
        raise ExportError(
            f"{model.name} has no training here (its dataset is not mnist): pass the Orbax "
            "checkpoint of its parameters, CHECKPOINT=dir (--checkpoint)."
        )
    batch = inputs.batches(model, options.inputs, None) if options.inputs or not mnist else None
    if batch is not None:
        source = options.inputs or "inputs made from its input specs"
        logging.info("The SavedModel will be checked against JAX on %s", source)
    if not options.checkpoint:
        return batch, None
    logging.info(
        "Restoring %s's parameters from %s (no training: NUM_EPOCHS is ignored)",
        model.name,
        options.checkpoint,
    )
    return batch, checkpoint.restore(options.checkpoint, model)


def parameters(
    model: Model,
    options: ExportOptions,
    test_data: mnist_data.Split | None,
    restored: Params | None,
) -> TrainResult:
    """The parameters to export: those `restored` from a checkpoint, or trained on MNIST."""
    if restored is not None:
        test_accuracy = None if test_data is None else train.accuracy(model, restored, test_data)
        return TrainResult(restored, None, test_accuracy)
    train_data = load_mnist("train", options)
    logging.info(
        "Training %s for %d epochs on %d examples", model.name, options.num_epochs, len(train_data)
    )
    return train.train(model, train_data, test_data, num_epochs=options.num_epochs)


@contextlib.contextmanager
def export_errors(base_dir: str) -> Iterator[None]:
    """Turns a taken MODEL_VERSION, or a failed write under MODEL_PATH, into an ExportError."""
    try:
        yield
    except versions.VersionExistsError as e:  # A FileExistsError, but no failed write.
        raise ExportError(str(e)) from e
    except (OSError, tf.errors.OpError) as e:
        raise ExportError(
            f"writing the SavedModel under {base_dir} failed ({first_line(e)}). Check that "
            "MODEL_PATH is a writable directory with free space, or choose another one (make "
            "export MODEL_PATH=...). Nothing was published."
        ) from e


def write_assets(
    path: str,
    model: Model,
    served_name: str,
    jax_predict: Callable[[Batch], jax.Array],
    batch: Callable[[int], Batch],
    options: ExportOptions,
) -> None:
    """Writes the validation batch and the warmup requests into the version's assets.extra/.

    `batch(n)` gives n examples (models/inputs.py). The validation batch holds some and
    `jax_predict`'s outputs on them, to check the SavedModel later with any TensorFlow
    (`make compat`, within CPU_TOLERANCES). A fixed-batch export is warmed up at its batch
    size, a batch-polymorphic one at `options.warmup_batch_sizes`.
    """
    fixed = None if options.serving_batch_size == -1 else options.serving_batch_size
    inputs = batch(fixed or VALIDATION_BATCH_SIZE)
    outputs = np.asarray(jax_predict(inputs))
    # The image signature's check: the same digits as PNG, and the softmax of JAX's answer.
    images = {}
    if has_image_signature(model, options):
        pixels = np.round(np.clip(inputs, 0, 1) * 255).astype(np.uint8)  # MNIST's: exact.
        images = dict(
            images=png_batch(pixels),
            image_probabilities=np.asarray(
                jax.nn.softmax(jax_predict(mnist_data.scale_images(pixels)), axis=-1)
            ),
        )
    saved_model_lib.write_validation_batch(path, inputs, outputs, **CPU_TOLERANCES, extra=images)
    warmup_sizes = [fixed] if fixed else options.warmup_batch_sizes
    if warmup_sizes:
        batches = [batch(n) for n in warmup_sizes]
        # One image request too: it traces and compiles the image signature's own graph.
        image_requests = []
        if images:
            first = images["images"][: fixed or 1]
            image_requests = [(image_spec.SIGNATURE_NAME, image_spec.INPUT_NAME, first)]
        saved_model_lib.write_warmup_requests(
            path, batches, model_name=served_name, extra_requests=image_requests
        )


def has_image_signature(model: Model, options: ExportOptions) -> bool:
    """Whether the export gets models/image_signature.py's signature (classifiers of digits)."""
    spec = model.input_specs()
    classifier = options.model_classifier_layer and model.num_classes == mnist_data.NUM_CLASSES
    return (
        isinstance(spec, InputSpec)
        and spec.dtype == np.float32
        and image_signature.applies_to(spec.shape, classifier)
    )


def image_signatures(model: Model, options: ExportOptions):
    """convert_and_save_model's extra_signatures for this export; None: no image signature."""
    if not has_image_signature(model, options):
        return None
    fixed = None if options.serving_batch_size == -1 else options.serving_batch_size
    return image_signature.extra_signatures(fixed)


def png_batch(pixels: np.ndarray) -> np.ndarray:
    """uint8 images (B, 28, 28, 1) as PNG files' bytes.

    A numpy bytes array drops trailing NULs, but a PNG always ends with IEND's CRC.
    """
    return np.array([tf.io.encode_png(image).numpy() for image in pixels], dtype=bytes)


def write_export_info(
    path: str, model_name: str, result: TrainResult, options: ExportOptions, mnist: bool = True
) -> None:
    """Records what was trained (or restored), how and how well: versions.EXPORT_INFO_FILE."""
    modules = dict.fromkeys(saved_model_lib.xla_call_modules(path))
    target = releases.target(options.tf_serving_version)
    info = {
        "model": model_name,
        "classifier_layer": options.model_classifier_layer,
        "serving_batch_size": options.serving_batch_size,
        "platforms": list(options.platforms),
        # The release it was made for ("2.20"), or "nightly": make serve and make compat read it.
        "tf_serving_version": target.release if target else releases.NIGHTLY,
        "xla_call_modules": [dataclasses.asdict(m) for m in modules],  # make inspect shows them.
        "data": ("mock" if options.mock_data else (options.data_dir or "tfds")) if mnist else None,
        "checkpoint": os.path.abspath(options.checkpoint) if options.checkpoint else None,
        "num_epochs": None if options.checkpoint else options.num_epochs,
        "train_accuracy": result.train_accuracy,
        "test_accuracy": result.test_accuracy,
        "jax": jax.__version__,
        "tensorflow": tf.__version__,
    }
    versions.write_export_info(path, info)


def serving_signature(path: str):
    """The `serving_default` signature of the SavedModel in `path`."""
    return tf.saved_model.load(path).signatures[tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY]


def fixed_batch_size(signature) -> int | None:
    """The batch size that the signature's inputs fix; None if they take any."""
    spec = next(iter(signature.structured_input_signature[1].values()))
    return spec.shape[0]


def predict(signature, inputs: Batch) -> np.ndarray:
    """The signature's output on a batch: scaled images, or any model's (named) inputs."""
    if not isinstance(inputs, dict):
        (name,) = signature.structured_input_signature[1]
        inputs = {name: inputs}
    (output,) = signature(**{k: tf.constant(v) for k, v in inputs.items()}).values()
    return output.numpy()


def test_batch(data: mnist_data.Split, batch_size: int) -> np.ndarray:
    """The first `batch_size` images of `data`, scaled; repeated if `data` has fewer."""
    return mnist_data.scale_images(data.images[np.arange(batch_size) % len(data)])


def accuracy(signature, data: mnist_data.Split, batch_size: int) -> float:
    """The fraction of `data` that a classifier's signature labels right.

    It runs on full batches of `batch_size`, or of the batch size the signature fixes.
    """
    batch_size = fixed_batch_size(signature) or batch_size
    correct = total = 0
    for images, labels in mnist_data.batches(data, batch_size):
        if len(images) == batch_size:
            predicted = np.argmax(predict(signature, mnist_data.scale_images(images)), axis=1)
            correct, total = correct + int(np.sum(predicted == labels)), total + len(labels)
    return correct / max(total, 1)


def check_existing(options: ExportOptions) -> str:
    """--nogenerate_model: logs the test accuracy of MODEL_VERSION (default: the newest)."""
    if options.model not in MODELS:
        raise ExportError(f"--nogenerate_model checks an MNIST model ({', '.join(MODELS)}).")
    base_dir = os.path.join(options.model_path, options.model)
    try:
        _, path = versions.find_version(base_dir, options.model_version)
    except LookupError as e:
        raise ExportError(f"{e}: export one first (make export).") from e
    serve, test_data = serving_signature(path), load_mnist("test", options)
    fraction = accuracy(serve, test_data, train.TEST_BATCH_SIZE)
    logging.info("%s: test accuracy %.2f%%", path, 100 * fraction)
    return path


def check_against_jax(path: str, jax_predict: Callable[[Batch], jax.Array], batch) -> None:
    """Compares the SavedModel in `path` with the JAX function on `batch(n)`, at its fixed
    batch size or at two; an ExportError (nothing is published) if they differ."""
    gpus = tf.config.list_logical_devices("GPU")
    device, tolerances = (gpus[0].name, GPU_TOLERANCES) if gpus else ("/CPU:0", CPU_TOLERANCES)
    with tf.device(device):
        serve = serving_signature(path)
        fixed = fixed_batch_size(serve)
        for batch_size in [fixed] if fixed else [train.TEST_BATCH_SIZE, 1]:
            examples = batch(batch_size)
            try:
                np.testing.assert_allclose(
                    predict(serve, examples), jax_predict(examples), **tolerances
                )
            except AssertionError as e:
                raise ExportError(
                    f"the SavedModel's outputs differ from the JAX function's at batch "
                    f"{batch_size}, so it was not published:\n{e}"
                ) from e
    logging.info("The SavedModel matches the JAX function on %s (%s)", device, tolerances)


def save_test_images(path: str, data: mnist_data.Split, classifier: bool) -> str:
    """Draws test digits, their labels and the predictions of the SavedModel in `path`.

    Writes `path`/IMAGES_FILE and returns its path; without the classifier, no predictions.
    """
    serve = serving_signature(path)
    images = test_batch(data, fixed_batch_size(serve) or show.GRID_SIZE)
    predictions = np.argmax(predict(serve, images), axis=1) if classifier else None
    return show.save_images(os.path.join(path, IMAGES_FILE), images, data.labels, predictions)
