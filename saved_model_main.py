r"""Train a JAX model (or restore it), convert it with jax2tf, publish it for TensorFlow Serving.

    python saved_model_main.py --model=mnist_flax --model_path=/tmp/jax2tf/saved_models \
        --serving_batch_size=-1 --compile_model --noshow_model
    python saved_model_main.py --model=examples.regressor:MODEL --checkpoint=DIR ...

publishes MODEL_PATH/NAME/VERSION (NAME: the model's name), checked against the JAX
function, where TensorFlow Serving (--model_base_path=MODEL_PATH/NAME) finds it. `make
export` runs it with env.sh's values; `train_and_export(ExportOptions(...))` without flags.
"""

import dataclasses
import functools
import logging as std_logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable

import jax
import orbax  # The namespace alone: orbax.checkpoint is imported only to restore.
import tensorflow as tf
from absl import app, flags, logging

import saved_model_lib
from models import MODELS, ModelError, checkpoint, export_lib, get_model, inputs, mnist_data, train
from models.export_lib import ExportError, ExportOptions
from serving import releases, signatures, versions

PLATFORMS = ("cpu", "cuda", "rocm", "tpu")
_DEFAULT = ExportOptions()  # The flags' defaults.

_MODEL = flags.DEFINE_string(
    "model",
    _DEFAULT.model,
    f"Which model to export: {', '.join(MODELS)}, or package.module:attribute naming a model "
    "of models/base.py's protocol (importable from the current directory or PYTHONPATH).",
)
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint",
    _DEFAULT.checkpoint,
    "An Orbax checkpoint directory to restore the parameters from, instead of training "
    "(--num_epochs is then ignored).",
)
_INPUTS = flags.DEFINE_string(
    "inputs",
    _DEFAULT.inputs,
    "A .npy (one input) or .npz (inputs by name) of real inputs to check the SavedModel on; "
    "empty: MNIST's test images, or for other models inputs made from their input specs.",
)
_MODEL_CLASSIFIER_LAYER = flags.DEFINE_boolean(
    "model_classifier_layer",
    _DEFAULT.model_classifier_layer,
    "Export the classifier (log-probabilities of the 10 digits). False exports the features "
    "of the last hidden layer instead, for reuse in a larger model, as MODEL_features.",
)
_MODEL_PATH = flags.DEFINE_string(
    "model_path", _DEFAULT.model_path, "The SavedModel goes to MODEL_PATH/MODEL/VERSION."
)
_MODEL_VERSION = flags.DEFINE_integer(
    "model_version", None, "The version to publish. Default: the next free one.", lower_bound=1
)
_SERVING_BATCH_SIZE = flags.DEFINE_integer(
    "serving_batch_size",
    _DEFAULT.serving_batch_size,
    "The serving signature's batch size; -1: any.",
)
_NUM_EPOCHS = flags.DEFINE_integer(
    "num_epochs", _DEFAULT.num_epochs, "Training epochs.", lower_bound=0
)
_GENERATE_MODEL = flags.DEFINE_boolean(
    "generate_model", True, "False: test MODEL_VERSION (default: the newest) on the test data."
)
_COMPILE_MODEL = flags.DEFINE_boolean(
    "compile_model", _DEFAULT.compile_model, "jit_compile it (XLA), as TensorFlow Serving needs."
)
_SHOW_MODEL = flags.DEFINE_boolean("show_model", True, "Print saved_model_cli show --all.")
_SHOW_IMAGES = flags.DEFINE_boolean(
    "show_images", _DEFAULT.show_images, "Draw test digits and the SavedModel's predictions (PNG)."
)
_TEST_SAVEDMODEL = flags.DEFINE_boolean(
    "test_savedmodel", _DEFAULT.test_savedmodel, "Check the SavedModel against JAX, then publish."
)
_PLATFORMS = flags.DEFINE_list(
    "platforms",
    list(_DEFAULT.platforms),
    f"Where the SavedModel runs, of {', '.join(PLATFORMS)}: --platforms=cpu,cuda serves on "
    "both CPU and GPU model servers.",
)
_WARMUP_BATCH_SIZES = flags.DEFINE_list(
    "warmup_batch_sizes",
    [str(n) for n in _DEFAULT.warmup_batch_sizes],
    "The batch sizes a batch-polymorphic export is warmed up at, compiled by XLA before the "
    "version takes traffic (a fixed-batch one, at its own). Empty: no warmup.",
)
_TF_SERVING_VERSION = flags.DEFINE_string(
    "tf_serving_version",
    _DEFAULT.tf_serving_version,
    "The oldest TensorFlow Serving release that must serve the export: one with an image in "
    "serving/releases.tsv, such as 2.16 or 2.19.1; empty: the default, the newest such "
    f"release. {releases.NIGHTLY}: JAX's newest format, for tensorflow/serving:nightly.",
)
_VERBOSE = flags.DEFINE_boolean("verbose", False, "Keep TensorFlow's and JAX's INFO lines.")
_OVERWRITE = flags.DEFINE_boolean("overwrite", _DEFAULT.overwrite, "Replace an existing version.")
_MOCK_DATA = flags.DEFINE_boolean("mock_data", _DEFAULT.mock_data, mnist_data.MOCK_DATA_HELP)
_DATA_DIR = flags.DEFINE_string("data_dir", _DEFAULT.data_dir, mnist_data.DATA_DIR_HELP)
flags.register_validator(
    "model",
    lambda name: ":" in name or name in MODELS,
    f"must be one of {', '.join(MODELS)}, or package.module:attribute",
)
flags.register_validator(
    "serving_batch_size", lambda n: n == -1 or n > 0, "must be -1 (any batch size) or > 0"
)
flags.register_validator(
    "warmup_batch_sizes",
    lambda sizes: all(n.isdigit() and int(n) > 0 for n in sizes),
    "must be a comma-separated list of batch sizes > 0",
)
flags.register_validator(
    "platforms",
    lambda names: names and set(names) <= set(PLATFORMS),
    f"must be a comma-separated list of {', '.join(PLATFORMS)}",
)


def main(argv: list[str]) -> None:
    del argv
    if not _VERBOSE.value:
        logging.get_absl_handler().addFilter(without_info_of(tf, jax, orbax))
        tf.get_logger().setLevel(std_logging.WARNING)  # It also prints through its own handler.
    # SIGTERM (kill, a CI timeout) unwinds like SIGINT, through the clean-up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    # Each flag is named after the ExportOptions field it sets (as local_server's flags).
    values = {f.name: flags.FLAGS[f.name].value for f in dataclasses.fields(ExportOptions)}
    values["platforms"] = tuple(values["platforms"])
    values["warmup_batch_sizes"] = tuple(int(n) for n in values["warmup_batch_sizes"])
    options = ExportOptions(**values)
    export_or_check = train_and_export if _GENERATE_MODEL.value else export_lib.check_existing
    try:
        path = export_or_check(options)
    except (
        ExportError,
        releases.ReleaseError,
        saved_model_lib.ExportFormatError,
        mnist_data.DataError,
        ModelError,
        checkpoint.CheckpointError,
        signatures.InputsError,
    ) as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:  # The clean-up has run: say so, without a traceback.
        print("Interrupted: no version was published.", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
    if _SHOW_MODEL.value:  # saved_model_cli show --all --dir PATH
        print(f"saved_model_cli show --all --dir {path}", flush=True)
        cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
        subprocess.run([cli, "show", "--all", "--dir", path], check=False)


def without_info_of(*packages) -> Callable[[std_logging.LogRecord], bool]:
    """A logging filter that drops the INFO lines logged by `packages`' own modules."""
    paths = tuple(path for p in packages for path in p.__path__)  # orbax: a namespace.
    return lambda r: r.levelno >= std_logging.WARNING or not r.pathname.startswith(paths)


def train_and_export(options: ExportOptions) -> str:
    """Trains (or restores), converts, saves, checks against JAX, publishes; returns the path."""
    model = get_model(options.model)
    mnist = model.dataset == "mnist"
    serving_format = _serving_format(options.tf_serving_version)
    # The features answer something else than the classifier: a model of their own.
    name = model.name if options.model_classifier_layer else f"{model.name}_features"
    base_dir = os.path.join(options.model_path, name)
    # A bad model, --inputs or checkpoint fails here, before anything is written.
    batch, restored = export_lib.inputs_and_checkpoint(model, options)
    with export_lib.export_errors(base_dir):
        versions.check_can_publish(base_dir, options.model_version, overwrite=options.overwrite)

    test_data = export_lib.load_mnist("test", options) if mnist else None
    batch = batch or inputs.batches(model, "", test_data)
    result = export_lib.parameters(model, options, test_data, restored)
    predict_fn = model.apply if options.model_classifier_layer else model.features

    if options.serving_batch_size == -1 or not mnist:  # One signature, -1: any batch size.
        input_signatures, polymorphic_shapes = inputs.signatures(model, options.serving_batch_size)
    else:  # The serving signature first, then the training and test batch sizes.
        sizes = [options.serving_batch_size, train.TRAIN_BATCH_SIZE, train.TEST_BATCH_SIZE]
        input_signatures = [inputs.signatures(model, n)[0][0] for n in dict.fromkeys(sizes)]
        polymorphic_shapes = None
    with export_lib.export_errors(base_dir), versions.staging_directory(base_dir) as staging:
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
            platforms=options.platforms,
            serving_format=serving_format,
            extra_signatures=export_lib.image_signatures(model, options),
        )
        jax_predict = jax.jit(functools.partial(predict_fn, result.params))
        export_lib.write_assets(staging, model, name, jax_predict, batch, options)
        export_lib.write_export_info(staging, model.name, result, options, mnist)
        if options.test_savedmodel:
            export_lib.check_against_jax(staging, jax_predict, batch)
        if options.show_images and mnist:
            export_lib.save_test_images(staging, test_data, options.model_classifier_layer)
        version = versions.publish(
            staging, base_dir, options.model_version, overwrite=options.overwrite
        )
    path = os.path.join(base_dir, str(version))
    logging.info("Exported %s version %d to %s", name, version, path)
    if options.show_images and mnist:
        print(f"Test images with predictions: {os.path.join(path, export_lib.IMAGES_FILE)}")
    return path


def _serving_format(tf_serving_version: str) -> saved_model_lib.ServingFormat | None:
    """The format that TensorFlow Serving `tf_serving_version` reads; None (nightly): JAX's newest.

    Raises ReleaseError, before any training, for a release that no server runs (2.21).
    """
    r = releases.target(tf_serving_version)
    if r is None:
        return None
    return saved_model_lib.ServingFormat(r.calling_convention_version, r.stablehlo_version)


if __name__ == "__main__":
    app.run(main)
