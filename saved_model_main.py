"""Train an MNIST model in JAX, export it with jax2tf, and check the SavedModel.

    python saved_model_main.py --model=mnist_flax --model_path=/tmp/jax2tf/saved_models \
        --model_version=1 --serving_batch_size=-1 --compile_model --noshow_model

writes a SavedModel to MODEL_PATH/MODEL/MODEL_VERSION: the layout TensorFlow
Serving polls (--model_base_path=MODEL_PATH/MODEL). `make export` runs this
command with the variables of env.sh.

Why it is shaped this way:
- The version appears atomically (versions.staging_directory): it is
  written, reloaded and compared with the JAX function in a hidden staging
  directory, and renamed into place only when it passed, so a model server
  never loads a half-written or wrong version.
- An existing version is never overwritten unless --overwrite. Without
  --model_version the next free version is taken, so repeated exports add
  versions that a running server picks up.
- --serving_batch_size=-1 exports a batch-polymorphic signature (None, 28, 28,
  1); N > 0 fixes the batch at N, and also traces the training and test batch
  sizes, as the upstream example does.
- Each version carries assets.extra/export_info.json (what was trained, how,
  and how well); `make clean` deletes only directories that carry it.
- The flags are read once, in `main`, into ExportOptions, and the functions
  take those values: tests and other programs call train_and_export(options)
  without flags.
"""

import contextlib
import dataclasses
import datetime
import functools
import json
import logging as std_logging
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import tensorflow as tf
from absl import app, flags, logging

import saved_model_lib
from models import INPUT_SHAPE, MODELS, get_model, mnist_data, train
from serving import releases, versions

EXPORT_INFO_FILE = versions.EXPORT_INFO_FILE
PLATFORMS = ("cpu", "cuda", "rocm", "tpu")
# How close the SavedModel must come to the JAX function, on each kind of device.
CPU_TOLERANCES = dict(atol=1e-5, rtol=1e-5)
GPU_TOLERANCES = dict(atol=1e-6, rtol=1e-4)
# Examples in assets.extra/validation_batch.npz of a batch-polymorphic export.
VALIDATION_BATCH_SIZE = 8


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """What to train and how to export it: a field per flag of the same name.

    The flags below take their defaults from here; `main` reads the flags once
    and passes these values down, so the functions of this module can be
    called (and tested) without flags.
    """

    model: str = "mnist_flax"
    model_classifier_layer: bool = True
    model_path: str = "/tmp/jax2tf/saved_models"
    model_version: int | None = None  # None: the next free version, when publishing.
    serving_batch_size: int = -1
    num_epochs: int = 3
    compile_model: bool = True
    show_images: bool = False
    test_savedmodel: bool = True
    platforms: tuple[str, ...] = ("cpu",)
    warmup_batch_sizes: tuple[int, ...] = (1, 8, 16, 32, 64, 128)
    tf_serving_version: str = ""
    overwrite: bool = False
    mock_data: bool = False
    data_dir: str = ""

    def load(self, split: str) -> mnist_data.Split:
        return mnist_data.load(split, data_dir=self.data_dir or None, mock=self.mock_data)


_DEFAULT = ExportOptions()

flags.DEFINE_enum("model", _DEFAULT.model, list(MODELS), "Which model to train and export.")
flags.DEFINE_boolean(
    "model_classifier_layer",
    _DEFAULT.model_classifier_layer,
    "Export the whole classifier (log-probabilities of the 10 digits). False exports "
    "the features of the last hidden layer instead, to reuse the model in a larger one, "
    "under its own name, MODEL_features.",
)
flags.DEFINE_string(
    "model_path",
    _DEFAULT.model_path,
    "Directory of the exported models: the SavedModel goes to MODEL_PATH/MODEL/MODEL_VERSION.",
)
flags.DEFINE_integer(
    "model_version",
    _DEFAULT.model_version,
    "Version number of the SavedModel; a model server serves the highest. "
    "Default: 1 + the highest existing version when the export is published.",
    lower_bound=1,
)
_SERVING_BATCH_SIZE = flags.DEFINE_integer(
    "serving_batch_size",
    _DEFAULT.serving_batch_size,
    "Batch size of the serving signature: -1 for any batch size (batch-polymorphic), "
    "or N > 0 for exactly N.",
)
flags.DEFINE_integer("num_epochs", _DEFAULT.num_epochs, "Training epochs.", lower_bound=0)
_GENERATE_MODEL = flags.DEFINE_boolean(
    "generate_model",
    True,
    "Train and export a new model. False checks the existing MODEL_VERSION on test data instead.",
)
flags.DEFINE_boolean(
    "compile_model",
    _DEFAULT.compile_model,
    "jit_compile the SavedModel's function (XLA). TensorFlow Serving needs it to run "
    "the converted ops (with --xla_cpu_compilation_enabled=true).",
)
_SHOW_MODEL = flags.DEFINE_boolean(
    "show_model", True, "Print the SavedModel's signatures (saved_model_cli show --all)."
)
flags.DEFINE_boolean(
    "show_images",
    _DEFAULT.show_images,
    "Write a PNG grid of test digits with their labels and the SavedModel's predictions "
    "into the version's assets.extra/ and print its path.",
)
flags.DEFINE_boolean(
    "test_savedmodel",
    _DEFAULT.test_savedmodel,
    "Reload the SavedModel and compare it with the JAX function on real test images "
    "before the version is published.",
)
flags.DEFINE_multi_enum(
    "platforms",
    list(_DEFAULT.platforms),
    PLATFORMS,
    "Platforms the SavedModel runs on (jax2tf native serialization); repeat or use "
    "commas: --platforms=cpu,cuda serves on both CPU and GPU model servers.",
)
_WARMUP_BATCH_SIZES = flags.DEFINE_list(
    "warmup_batch_sizes",
    [str(n) for n in _DEFAULT.warmup_batch_sizes],
    "Batch sizes of the warmup requests written for a batch-polymorphic export: the model "
    "server runs them before the version takes traffic, so XLA compiles these shapes then. "
    "A fixed-batch export is warmed up at its batch size. Empty: no warmup file.",
)
flags.DEFINE_string(
    "tf_serving_version",
    _DEFAULT.tf_serving_version,
    "The oldest TensorFlow Serving release that must serve the export, such as 2.16 or "
    "2.19.1: the export writes the format that release's TensorFlow reads (see "
    "serving/releases.tsv). Empty: JAX's newest format.",
)
_VERBOSE = flags.DEFINE_boolean(
    "verbose", False, "Keep the INFO lines of TensorFlow's and JAX's own modules (make VERBOSE=1)."
)
flags.DEFINE_boolean(
    "overwrite",
    _DEFAULT.overwrite,
    "Replace MODEL_VERSION if it exists (otherwise that is an error).",
)
flags.DEFINE_boolean("mock_data", _DEFAULT.mock_data, mnist_data.MOCK_DATA_HELP)
flags.DEFINE_string("data_dir", _DEFAULT.data_dir, mnist_data.DATA_DIR_HELP)


def options_from_flags() -> ExportOptions:
    """The ExportOptions that the command line gives (in main only)."""
    values = {f.name: flags.FLAGS[f.name].value for f in dataclasses.fields(ExportOptions)}
    values["platforms"] = tuple(values["platforms"])
    values["warmup_batch_sizes"] = tuple(int(n) for n in values["warmup_batch_sizes"])
    return ExportOptions(**values)


class ExportError(Exception):
    """The export cannot go on; the message says why and what to do."""


def main(argv: list[str]) -> None:
    del argv
    # TensorFlow's saver and JAX's backend probe log at INFO what no user acts
    # on; --verbose (make export VERBOSE=1) keeps it. Warnings always pass.
    if not _VERBOSE.value:
        libraries = tuple(os.path.dirname(m.__file__) for m in (tf, jax))
        logging.get_absl_handler().addFilter(
            lambda r: r.levelno >= std_logging.WARNING or not r.pathname.startswith(libraries)
        )
        tf.get_logger().setLevel(std_logging.WARNING)  # It also prints through its own handler.
    # SIGTERM (kill, a CI timeout) unwinds like SIGINT, through the clean-up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    options = options_from_flags()
    try:
        path = train_and_export(options) if _GENERATE_MODEL.value else check_existing(options)
    except (
        ExportError,
        releases.ReleaseError,
        saved_model_lib.ExportFormatError,
        mnist_data.DataError,
    ) as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:
        # The clean-up has run: say so, without a traceback through TensorFlow.
        print("Interrupted: no version was published.", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
    if _SHOW_MODEL.value:
        show_model(path)


def train_and_export(options: ExportOptions) -> str:
    """Trains, converts, checks and publishes a version; returns its path."""
    model = get_model(options.model)
    serving_format = _serving_format(options.tf_serving_version)  # Fails before training.
    # A features-only model answers something else than the classifier: as its
    # next version, a server of the classifier would switch to it unnoticed.
    name = model.name if options.model_classifier_layer else f"{model.name}_features"
    base_dir = os.path.join(options.model_path, name)
    version = options.model_version or versions.next_version(base_dir)
    # Checked again when publishing; these early checks save the training time.
    if version in versions.versions(base_dir) and not options.overwrite:
        raise _version_exists(base_dir, version)
    with _writing(base_dir), versions.staging_directory(base_dir):
        pass  # MODEL_PATH can be created and written to.
    test_data, train_data = options.load("test"), options.load("train")
    logging.info(
        "Training %s for %d epochs on %d examples", model.name, options.num_epochs, len(train_data)
    )
    result = train.train(model, train_data, test_data, num_epochs=options.num_epochs)
    predict_fn = functools.partial(model.apply, with_classifier=options.model_classifier_layer)

    batch_size = options.serving_batch_size
    if batch_size == -1:
        input_signatures = [tf.TensorSpec((None, *INPUT_SHAPE), tf.float32)]
        polymorphic_shapes = "(b, ...)"
        fixed_batch = None
        warmup_sizes = list(options.warmup_batch_sizes)
    else:
        # The serving signature first; then the batch sizes of training and
        # evaluation, so that the reloaded model takes those without retracing.
        sizes = dict.fromkeys([batch_size, train.TRAIN_BATCH_SIZE, train.TEST_BATCH_SIZE])
        input_signatures = [tf.TensorSpec((n, *INPUT_SHAPE), tf.float32) for n in sizes]
        polymorphic_shapes = None
        fixed_batch = batch_size
        warmup_sizes = [batch_size]

    with _writing(base_dir), versions.staging_directory(base_dir) as staging:
        logging.info(
            "Converting with jax2tf and saving (platforms: %s)", ",".join(options.platforms)
        )
        saved_model_lib.convert_and_save_model(
            predict_fn,
            result.params,
            staging,
            input_signatures=input_signatures,
            polymorphic_shapes=polymorphic_shapes,
            compile_model=options.compile_model,
            platforms=list(options.platforms),
            serving_format=serving_format,
        )
        _write_export_info(staging, model.name, result, options)
        validation_inputs = _test_batch(test_data, fixed_batch or VALIDATION_BATCH_SIZE)
        saved_model_lib.write_validation_batch(
            staging,
            validation_inputs,
            np.asarray(predict_fn(result.params, validation_inputs)),
            **CPU_TOLERANCES,
        )
        if warmup_sizes:
            saved_model_lib.write_warmup_requests(
                staging, [_test_batch(test_data, n) for n in warmup_sizes], model_name=name
            )
        if options.test_savedmodel:
            test_savedmodel(staging, lambda x: predict_fn(result.params, x), test_data)
        if options.show_images:
            images_file = save_images(staging, test_data, options.model_classifier_layer)
        version = _publish(staging, base_dir, version, options)
    path = os.path.join(base_dir, str(version))
    logging.info("Exported %s version %d to %s", name, version, path)
    if options.show_images:
        print(f"Test images with predictions: {images_file.replace(staging, path)}")
    return path


def check_existing(options: ExportOptions) -> str:
    """--nogenerate_model: run MODEL_VERSION (default: the newest) on test data."""
    base_dir = os.path.join(options.model_path, options.model)
    try:
        _, path = versions.find_version(base_dir, options.model_version)
    except LookupError as e:
        raise ExportError(f"{e}: export one first (make export).") from e
    serve = _serving_signature(path)
    test_data = options.load("test")
    correct = 0
    for images, labels in _signature_batches(serve, test_data):
        predicted = np.argmax(_call(serve, mnist_data.scale_images(images)), axis=1)
        correct += int(np.sum(predicted == labels))
    logging.info("%s: test accuracy %.2f%%", path, 100 * correct / len(test_data))
    return path


def test_savedmodel(path: str, jax_predict, test_data: mnist_data.Split) -> None:
    """Compares the SavedModel with the JAX function on test images."""
    device, tolerances = _device_and_tolerances()
    with tf.device(device):
        serve = _serving_signature(path)
        fixed = _batch_size(serve)
        # A batch-polymorphic model is checked at two batch sizes.
        for batch_size in [fixed] if fixed else [train.TEST_BATCH_SIZE, 1]:
            images = _test_batch(test_data, batch_size)
            try:
                np.testing.assert_allclose(
                    _call(serve, images), np.asarray(jax_predict(images)), **tolerances
                )
            except AssertionError as e:
                raise ExportError(
                    f"the SavedModel's outputs differ from the JAX function's at batch "
                    f"{batch_size}, so it was not published:\n{e}"
                ) from e
    logging.info("The SavedModel matches the JAX function on %s (%s)", device, tolerances)


def save_images(
    path: str, test_data: mnist_data.Split, classifier: bool, rows: int = 2, cols: int = 8
) -> str:
    """A PNG of test digits titled with label and the SavedModel's prediction."""
    import matplotlib

    matplotlib.use("Agg")  # Headless: write a file, open no window.
    from matplotlib import pyplot as plt

    serve = _serving_signature(path)
    count = _batch_size(serve) or rows * cols
    images = test_data.images[np.arange(count) % len(test_data)]
    outputs = _call(serve, mnist_data.scale_images(images))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.5))
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(images):
            continue
        ax.imshow(images[i, :, :, 0], cmap="gray")
        title = f"label {test_data.labels[i]}"
        if classifier:
            title += f"\npred {np.argmax(outputs[i])}"
        ax.set_title(title, fontsize=8)
    image_file = os.path.join(path, "assets.extra", "test_images.png")
    os.makedirs(os.path.dirname(image_file), exist_ok=True)
    fig.savefig(image_file, dpi=100)
    plt.close(fig)
    return image_file


def show_model(path: str) -> None:
    """Prints the SavedModel as `saved_model_cli show --all --dir PATH` does."""
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    print(f"saved_model_cli show --all --dir {path}", flush=True)
    subprocess.run([cli, "show", "--all", "--dir", path], check=False)


def _test_batch(test_data: mnist_data.Split, batch_size: int) -> np.ndarray:
    """The first `batch_size` test images, scaled; repeated if the split is smaller."""
    return mnist_data.scale_images(test_data.images[np.arange(batch_size) % len(test_data)])


def _serving_signature(path: str):
    return tf.saved_model.load(path).signatures[tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY]


def _batch_size(signature) -> int | None:
    """The fixed batch size of the signature's input, None if polymorphic."""
    (spec,) = signature.structured_input_signature[1].values()
    return spec.shape[0]


def _call(signature, images: np.ndarray) -> np.ndarray:
    (output,) = signature(**{saved_model_lib.INPUT_NAME: tf.constant(images)}).values()
    return output.numpy()


def _signature_batches(signature, data: mnist_data.Split):
    """Batches that a signature of fixed batch size takes (dropping the rest)."""
    fixed = _batch_size(signature)
    for images, labels in mnist_data.batches(data, fixed or train.TEST_BATCH_SIZE):
        if fixed is None or len(images) == fixed:
            yield images, labels


def _device_and_tolerances() -> tuple[str, dict[str, float]]:
    """The TF device that runs the check, and tolerances fit for it."""
    for kind, tolerances in (("GPU", GPU_TOLERANCES), ("CPU", CPU_TOLERANCES)):
        devices = tf.config.list_logical_devices(kind)
        if devices:
            return devices[0].name, tolerances
    raise ExportError("TensorFlow sees no CPU or GPU device")


def _write_export_info(
    path: str, model_name: str, result: train.TrainResult, options: ExportOptions
) -> None:
    info = {
        "exported_by": versions.EXPORTED_BY,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": model_name,
        "classifier_layer": options.model_classifier_layer,
        "serving_batch_size": options.serving_batch_size,
        "platforms": list(options.platforms),
        "tf_serving_version": options.tf_serving_version or None,
        # What the saved XlaCallModule ops need from TensorFlow (make inspect shows them).
        "xla_call_modules": [
            dataclasses.asdict(m) for m in dict.fromkeys(saved_model_lib.xla_call_modules(path))
        ],
        "data": "mock" if options.mock_data else (options.data_dir or "tfds"),
        "num_epochs": options.num_epochs,
        "train_accuracy": result.train_accuracy,
        "test_accuracy": result.test_accuracy,
        "jax": jax.__version__,
        "tensorflow": tf.__version__,
    }
    info_file = os.path.join(path, EXPORT_INFO_FILE)
    os.makedirs(os.path.dirname(info_file), exist_ok=True)
    with open(info_file, "w") as f:
        json.dump(info, f, indent=2)


def _publish(staging: str, base_dir: str, version: int, options: ExportOptions) -> int:
    """Publishes `staging` as `version`, or, without --model_version, the next free one.

    Another export may take a version between our choice and the rename; an
    explicit version is then an error, an automatic one moves on to the next.
    """
    while True:
        replaces = versions.version_dir(base_dir, version) is not None
        try:
            versions.publish_version(staging, base_dir, version, overwrite=options.overwrite)
            if replaces:
                logging.warning(
                    "Replaced version %d. A model server that already serves version %d keeps "
                    "its old weights: TensorFlow Serving never reloads a version it serves. "
                    "Restart the server, or export a new version instead (no MODEL_VERSION).",
                    version,
                    version,
                )
            return version
        except FileExistsError as e:
            if options.model_version:
                raise _version_exists(base_dir, version) from e
            logging.info("Version %d was taken meanwhile; trying the next one", version)
            version = versions.next_version(base_dir)


@contextlib.contextmanager
def _writing(base_dir: str):
    """Turns a failure to write under MODEL_PATH into an actionable error."""
    try:
        yield
    except (OSError, tf.errors.OpError) as e:
        raise ExportError(
            f"writing the SavedModel under {base_dir} failed ({_first_line(e)}). "
            "Check that MODEL_PATH is a writable directory with free space, or choose "
            "another one (make export MODEL_PATH=...). Nothing was published."
        ) from e


def _serving_format(tf_serving_version: str) -> saved_model_lib.ServingFormat | None:
    """The format that TensorFlow Serving `tf_serving_version` reads; None: JAX's newest."""
    if not tf_serving_version:
        return None
    release = releases.find(tf_serving_version)
    return saved_model_lib.ServingFormat(
        release.calling_convention_version, release.stablehlo_version
    )


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _version_exists(base_dir: str, version: int) -> ExportError:
    return ExportError(
        f"version {version} of {base_dir} exists; nothing was changed. Export to the next "
        f"free version by leaving MODEL_VERSION unset (next: "
        f"{versions.next_version(base_dir)}), or replace it with OVERWRITE=1 "
        "(--overwrite)."
    )


def _validate_batch_size(value: int) -> bool:
    return value == -1 or value > 0


flags.register_validator(
    _SERVING_BATCH_SIZE.name, _validate_batch_size, "must be -1 (any batch size) or > 0"
)
flags.register_validator(
    _WARMUP_BATCH_SIZES.name,
    lambda sizes: all(n.isdigit() and int(n) > 0 for n in sizes),
    "must be a comma-separated list of batch sizes > 0",
)

if __name__ == "__main__":
    app.run(main)
