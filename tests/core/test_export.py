"""The export: SavedModel layout, signature, numerics, versions, atomicity, the command line."""

import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from absl import logging as absl_logging
from conftest import ROOT, export_options
from tensorflow.python.tools import saved_model_utils

import saved_model_lib
import saved_model_main
from models import INPUT_SHAPE, export_lib, get_model, mnist_data
from serving import versions
from serving.signatures import InputsError

pytestmark = pytest.mark.slow  # Its exports add up to most of a minute.

ExportError = saved_model_main.ExportError


def signature_def(path: str):
    meta_graph = saved_model_utils.get_meta_graph_def(path, "serve")
    return meta_graph.signature_def["serving_default"]


def serve(path: str, images) -> np.ndarray:
    (outputs,) = (
        tf.saved_model.load(path)
        .signatures["serving_default"](inputs=tf.constant(images, tf.float32))
        .values()
    )
    return outputs.numpy()


def read_info(path: str) -> dict:
    with open(os.path.join(path, versions.EXPORT_INFO_FILE)) as f:
        return json.load(f)


def snapshot(path: str) -> dict[str, bytes]:
    files = {}
    for root, _, names in os.walk(path):
        for name in names:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                files[os.path.relpath(full, path)] = f.read()
    return files


def layout_export(shared_export, model: str, batch_size: int) -> str:
    """The shared export of `model` at `batch_size`; trained for an epoch if polymorphic."""
    epochs = 1 if batch_size == -1 else 0
    return shared_export(model=model, serving_batch_size=batch_size, num_epochs=epochs)


# ---- What an export writes (shared exports: read only) ------------------------------


@pytest.mark.parametrize("model_name", ["mnist_pure_jax", "mnist_flax"])
@pytest.mark.parametrize("batch_size", [-1, 8])
def test_export_layout_signature_and_numerics(shared_export, model_name, batch_size):
    path = layout_export(shared_export, model_name, batch_size)

    base_dir = os.path.dirname(path)
    assert os.path.basename(path) == "1" and os.path.basename(base_dir) == model_name
    assert os.listdir(base_dir) == ["1"]  # No staging left.
    for name in ("saved_model.pb", "variables", versions.EXPORT_INFO_FILE):
        assert os.path.exists(os.path.join(path, name)), name
    info = read_info(path)
    assert info["exported_by"] == versions.EXPORTED_BY
    assert info["model"] == model_name and info["serving_batch_size"] == batch_size

    sig = signature_def(path)
    assert sig.method_name == "tensorflow/serving/predict"
    assert list(sig.inputs) == ["inputs"]
    assert sig.inputs["inputs"].dtype == tf.float32.as_datatype_enum
    dims = [d.size for d in sig.inputs["inputs"].tensor_shape.dim]
    assert dims == [batch_size, *INPUT_SHAPE]

    # The SavedModel computes what the JAX function computes with the exported
    # parameters: the initial ones without training...
    model = get_model(model_name)
    initial = model.init(jax.random.PRNGKey(0))
    if info["num_epochs"] == 0:
        images = mnist_data.scale_images(mnist_data.synthetic(8, seed=5).images)
        outputs = serve(path, images)
        assert outputs.shape == (8, 10)
        np.testing.assert_allclose(outputs, model.apply(initial, images), atol=1e-5, rtol=1e-5)
    else:
        # ...and trained ones after training: the JAX outputs of the validation batch.
        batch = np.load(os.path.join(path, saved_model_lib.VALIDATION_FILE))
        outputs = serve(path, batch["inputs"])
        np.testing.assert_allclose(outputs, batch["outputs"], atol=1e-5, rtol=1e-5)
        assert np.max(np.abs(batch["outputs"] - model.apply(initial, batch["inputs"]))) > 1e-2
    # Log-probabilities: each row sums to 1 after exp.
    np.testing.assert_allclose(np.exp(outputs).sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    "model_name, accuracy",
    [
        pytest.param("mnist_pure_jax", 0.95, id="mlp"),
        # 8 steps an epoch on the 1,024 mock examples: the CNN gets further in more epochs.
        pytest.param("mnist_flax", 0.5, id="cnn"),
    ],
)
def test_training_learns_the_mock_data(shared_export, model_name, accuracy):
    info = read_info(layout_export(shared_export, model_name, -1))
    # Chance is 0.1: a broken loss, gradient or optimizer stays near it.
    assert info["num_epochs"] == 1 and info["test_accuracy"] >= accuracy, info


@pytest.mark.parametrize("model_name, features", [("mnist_pure_jax", 512), ("mnist_flax", 256)])
def test_features_only_export(shared_export, model_name, features):
    path = shared_export(model=model_name, model_classifier_layer=False, num_epochs=0)
    # A model of its own: never the classifier's next version, which a server would switch to.
    assert os.listdir(os.path.dirname(os.path.dirname(path))) == [f"{model_name}_features"]
    assert os.path.basename(path) == "1"
    assert serve(path, np.zeros((3, *INPUT_SHAPE))).shape == (3, features)


@pytest.mark.parametrize("batch_size", [-1, 8])
def test_in_process_call_of_the_readme_gives_what_the_signature_gives(shared_export, batch_size):
    # bench/README.md's cheapest in-process call: the concrete function of the
    # module's __call__, at the signature's input shape.
    path = layout_export(shared_export, "mnist_pure_jax", batch_size)
    loaded = tf.saved_model.load(path)
    batch = None if batch_size == -1 else batch_size
    predict = loaded.__call__.get_concrete_function(
        tf.TensorSpec((batch, *INPUT_SHAPE), tf.float32)
    )
    images = tf.constant(mnist_data.scale_images(mnist_data.synthetic(8, seed=3).images))
    (expected,) = loaded.signatures["serving_default"](inputs=images).values()
    np.testing.assert_array_equal(predict(images).numpy(), expected.numpy())


def test_check_existing_version(shared_export):
    path = layout_export(shared_export, "mnist_pure_jax", 8)
    model_path = os.path.dirname(os.path.dirname(path))
    options = export_options(model_path, model="mnist_pure_jax")
    assert export_lib.check_existing(options) == path
    with pytest.raises(ExportError, match="make export"):
        export_lib.check_existing(export_options(model_path, model="mnist_flax"))


# ---- Versions: the next free one, never overwritten unless asked, atomic -------------


@pytest.fixture
def published(shared_export, tmp_path):
    """published(*names) -> copies of a shared export as these versions, under tmp_path."""

    def publish(*names: str) -> list[str]:
        source = layout_export(shared_export, "mnist_pure_jax", -1)
        copies = [str(tmp_path / "mnist_pure_jax" / name) for name in names]
        for copy in copies:
            shutil.copytree(source, copy)
        return copies

    return publish


def test_versions_increment(export, tmp_path, published):
    # The first is version 1 (test_export_layout_signature_and_numerics); then the next free.
    published("1", "2")
    assert export(model="mnist_pure_jax", num_epochs=0) == str(tmp_path / "mnist_pure_jax" / "3")
    assert versions.versions(str(tmp_path / "mnist_pure_jax")) == [1, 2, 3]


def test_existing_version_is_not_overwritten(export, tmp_path, published):
    (path,) = published("4")
    before = snapshot(path)
    with pytest.raises(ExportError, match=r"version 4 .* exists.*next: 5.*OVERWRITE=1"):
        export(model="mnist_pure_jax", model_version=4, num_epochs=0)
    assert snapshot(path) == before
    assert os.listdir(tmp_path / "mnist_pure_jax") == ["4"]

    export(model="mnist_pure_jax", model_version=4, num_epochs=0, overwrite=True)
    assert snapshot(path) != before
    assert os.listdir(tmp_path / "mnist_pure_jax") == ["4"]


def test_overwrite_never_leaves_the_version_missing(
    export, tmp_path, published, monkeypatch, caplog
):
    (path,) = published("4")
    before = snapshot(path)
    real_rename = os.rename

    def rename_seen_by_a_server(src, dst):
        # A model server polling the directory at any moment finds version 4.
        assert os.path.exists(os.path.join(path, "saved_model.pb")), "version 4 is missing"
        real_rename(src, dst)
        assert os.path.exists(os.path.join(path, "saved_model.pb")), "version 4 is missing"

    monkeypatch.setattr(os, "rename", rename_seen_by_a_server)
    with caplog.at_level("WARNING"):
        export(model="mnist_pure_jax", model_version=4, num_epochs=0, overwrite=True)
    assert snapshot(path) != before
    assert os.listdir(tmp_path / "mnist_pure_jax") == ["4"]  # The old one and staging are gone.
    assert "Replaced version 4. A model server that already serves version 4 keeps its old " in (
        caplog.text
    )


def test_overwrite_where_the_system_cannot_exchange(export, tmp_path, published, monkeypatch):
    (path,) = published("2")
    before = snapshot(path)
    monkeypatch.setattr(versions, "_exchange", lambda path, other: False)
    export(model="mnist_pure_jax", model_version=2, num_epochs=0, overwrite=True)
    after = snapshot(path)
    assert after != before and "saved_model.pb" in after
    assert os.listdir(tmp_path / "mnist_pure_jax") == ["2"]


def test_zero_padded_version_counts_as_existing(export, tmp_path, published):
    published("00000007")
    assert export(model="mnist_pure_jax", num_epochs=0).endswith(os.sep + "8")
    with pytest.raises(ExportError, match="version 7"):
        export(model="mnist_pure_jax", num_epochs=0, model_version=7)
    options = export_options(tmp_path, model="mnist_pure_jax", model_version=7)
    assert export_lib.check_existing(options).endswith("00000007")


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_interrupted_export_leaves_nothing(export, tmp_path, monkeypatch, interrupt):
    real_save = saved_model_lib.convert_and_save_model

    def save_then_interrupt(*args, **kwargs):
        real_save(*args, **kwargs)  # A complete SavedModel in the staging directory...
        raise interrupt()  # ...and then Ctrl-C (or SIGTERM) before publishing.

    monkeypatch.setattr(saved_model_lib, "convert_and_save_model", save_then_interrupt)
    with pytest.raises(interrupt):
        export(model="mnist_pure_jax", num_epochs=0)
    assert not (tmp_path / "mnist_pure_jax").exists()  # No version, no staging, no folder.


def test_mismatching_savedmodel_is_not_published(export, tmp_path, monkeypatch):
    # A SavedModel that disagrees with the JAX function must never be served.
    real_save = saved_model_lib.convert_and_save_model

    def save_wrong(jax_fn, *args, **kwargs):
        real_save(lambda p, x: jax_fn(p, x) + 1.0, *args, **kwargs)

    monkeypatch.setattr(saved_model_lib, "convert_and_save_model", save_wrong)
    with pytest.raises(ExportError, match="differ from the JAX function"):
        export(model="mnist_pure_jax", num_epochs=0)
    assert not (tmp_path / "mnist_pure_jax").exists()  # No version, no staging, no folder.


def test_unwritable_model_path_fails_before_training(export, tmp_path, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained before the checks")

    monkeypatch.setattr(saved_model_main.train, "train", no_training)
    (tmp_path / "a_file").write_text("not a directory")
    with pytest.raises(ExportError, match="Check that MODEL_PATH is a writable directory"):
        saved_model_main.train_and_export(export_options(tmp_path / "a_file" / "models"))
    # A file where the model's directory belongs.
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mnist_flax").write_text("not a directory")
    with pytest.raises(ExportError, match="Check that MODEL_PATH is a writable directory"):
        saved_model_main.train_and_export(export_options(tmp_path / "models", model="mnist_flax"))


# ---- The command line, in this process ------------------------------------------------


@contextlib.contextmanager
def command_line(*args: str):
    """Parses `python saved_model_main.py ARGS`'s flags; undoes what main changes on exit."""
    handler, tf_logger = absl_logging.get_absl_handler(), tf.get_logger()
    filters, level = list(handler.filters), tf_logger.level
    sigterm = signal.getsignal(signal.SIGTERM)
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["saved_model_main.py", "--noshow_model", *args])
    try:
        yield
    finally:
        flags.FLAGS.unparse_flags()
        handler.filters[:] = filters
        tf_logger.setLevel(level)
        signal.signal(signal.SIGTERM, sigterm)


@pytest.fixture(scope="module")
def main_export(tmp_path_factory) -> tuple[str, str]:
    """(version path, stdout) of main's export with --platforms=cpu,cuda --show_images."""
    model_path = tmp_path_factory.mktemp("main")
    stdout = io.StringIO()
    args = ["--mock_data", "--num_epochs=0", "--model=mnist_pure_jax", f"--model_path={model_path}"]
    with (
        command_line(*args, "--platforms=cpu,cuda", "--show_images"),
        contextlib.redirect_stdout(stdout),
    ):
        saved_model_main.main([])
    return str(model_path / "mnist_pure_jax" / "1"), stdout.getvalue()


def test_main_maps_the_flags_onto_the_options(main_export):
    path, _ = main_export
    info = read_info(path)
    assert info["data"] == "mock" and info["num_epochs"] == 0 and info["model"] == "mnist_pure_jax"
    # And the defaults: any batch size, the newest release with an image (2.20) and its
    # format, warmed up at six batch sizes, and with one image request.
    assert info["serving_batch_size"] == -1 and info["tf_serving_version"] == "2.20"
    assert {(m["calling_convention_version"], m["stablehlo_version"])
            for m in info["xla_call_modules"]} == {(10, "1.12.1")}  # fmt: skip
    warmup = tf.data.TFRecordDataset(os.path.join(path, saved_model_lib.WARMUP_FILE))
    assert sum(1 for _ in warmup) == len(saved_model_main.ExportOptions().warmup_batch_sizes) + 1


def test_main_names_a_bad_data_file_and_exits_without_a_traceback(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03garbage")
    args = f"--data_dir={tmp_path}", f"--model_path={tmp_path / 'models'}"
    with command_line(*args), pytest.raises(SystemExit) as exit_:
        saved_model_main.main([])
    message = str(exit_.value.code)
    assert message.startswith("error: ") and "t10k-images-idx3-ubyte" in message
    assert not (tmp_path / "models").exists()  # Nor the MODEL_PATH it made.


def test_cpu_and_cuda_export_runs_on_cpu(main_export):
    path, _ = main_export
    assert serve(path, np.zeros((2, *INPUT_SHAPE))).shape == (2, 10)
    assert read_info(path)["platforms"] == ["cpu", "cuda"]
    assert {m.platforms for m in saved_model_lib.xla_call_modules(path)} == {("CPU", "CUDA")}


def test_show_images_writes_png(main_export):
    path, stdout = main_export
    png = os.path.join(path, "assets.extra", "test_images.png")
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert f"Test images with predictions: {png}" in stdout


def test_main_turns_errors_into_one_line(tmp_path):
    with (
        command_line(f"--model_path={tmp_path}", "--tf_serving_version=2.14"),
        pytest.raises(SystemExit) as exit_,
    ):
        saved_model_main.main([])
    assert str(exit_.value.code).startswith("error: TensorFlow Serving 2.14 cannot run this export")
    assert os.listdir(tmp_path) == []  # Refused before training.


def test_flags_refuse_platforms_they_do_not_know():
    try:
        with pytest.raises(flags.IllegalFlagValueError, match="comma-separated list of cpu, cu"):
            flags.FLAGS(["saved_model_main.py", "--platforms=cpu,gpu"])
    finally:
        flags.FLAGS.unparse_flags()


# ---- saved_model_lib.py is copied alone -----------------------------------------------


def test_saved_model_lib_and_its_test_run_copied_alone(tmp_path):
    # What a user copies into their project: the library and its test, nothing else.
    for name in ("saved_model_lib.py", "tests/core/test_saved_model_lib.py"):
        shutil.copy(ROOT / name, tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_saved_model_lib.py"],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(r"\d+ passed", result.stdout) and "skipped" not in result.stdout


def test_without_verbose_the_libraries_info_lines_are_dropped():
    """--noverbose's filter; `make export VERBOSE=1` passes --verbose: tests/make/test_make.py."""
    keep = saved_model_main.without_info_of(tf, jax)

    def record(path: str, level: int) -> absl_logging.logging.LogRecord:
        return absl_logging.logging.LogRecord("x", level, path, 1, "message", None, None)

    in_tf = os.path.join(os.path.dirname(tf.__file__), "python", "saved_model", "save.py")
    in_jax = os.path.join(os.path.dirname(jax.__file__), "_src", "compiler.py")
    assert not keep(record(in_tf, absl_logging.logging.INFO))
    assert not keep(record(in_jax, absl_logging.logging.INFO))
    assert keep(record(in_tf, absl_logging.logging.WARNING))
    assert keep(record(saved_model_main.__file__, absl_logging.logging.INFO))


def test_the_exports_inputs_are_checked_against_the_models_specs(tmp_path):
    np.savez(tmp_path / "bad.npz", numeric=np.zeros((2, 6), np.float32))
    options = export_options(
        tmp_path / "models",
        model="examples.regressor:MODEL",
        checkpoint=str(tmp_path / "unused"),
        inputs=str(tmp_path / "bad.npz"),
    )
    with pytest.raises(
        InputsError, match="arrays numeric, but the signature's inputs are numeric, onehot"
    ):
        saved_model_main.train_and_export(options)
    assert not (tmp_path / "models").exists()
