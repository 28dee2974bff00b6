"""The export: SavedModel layout, signature, numerics, versions, atomicity."""

import json
import os
import re
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, export_options
from tensorflow.python.tools import saved_model_utils

import saved_model_lib
import saved_model_main
from models import INPUT_SHAPE, get_model, mnist_data
from serving import versions


def signature_def(path: str):
    meta_graph = saved_model_utils.get_meta_graph_def(path, "serve")
    return meta_graph.signature_def["serving_default"]


@pytest.fixture
def trained(monkeypatch) -> list:
    """The TrainResults of the exports that follow, as training returned them."""
    results = []
    real_train = saved_model_main.train.train

    def recording_train(*args, **kwargs):
        results.append(real_train(*args, **kwargs))
        return results[-1]

    monkeypatch.setattr(saved_model_main.train, "train", recording_train)
    return results


@pytest.mark.parametrize("model_name", ["mnist_pure_jax", "mnist_flax"])
@pytest.mark.parametrize("batch_size", [-1, 8])
def test_export_layout_signature_and_numerics(export, tmp_path, trained, model_name, batch_size):
    path = export(model=model_name, serving_batch_size=batch_size)
    (result,) = trained

    assert path == str(tmp_path / model_name / "1")
    assert sorted(os.listdir(tmp_path / model_name)) == ["1"]  # No staging left.
    for name in ("saved_model.pb", "variables", saved_model_main.EXPORT_INFO_FILE):
        assert os.path.exists(os.path.join(path, name)), name
    info = read_info(path)
    assert info["model"] == model_name and info["serving_batch_size"] == batch_size

    sig = signature_def(path)
    assert sig.method_name == "tensorflow/serving/predict"
    assert list(sig.inputs) == ["inputs"]
    assert sig.inputs["inputs"].dtype == tf.float32.as_datatype_enum
    dims = [d.size for d in sig.inputs["inputs"].tensor_shape.dim]
    assert dims == [batch_size, *INPUT_SHAPE]

    # The SavedModel computes what the JAX function computes with the trained
    # parameters, which are not the initial ones.
    model = get_model(model_name)
    images = mnist_data.scale_images(mnist_data.synthetic(8, seed=5).images)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    (outputs,) = serve(inputs=tf.constant(images)).values()
    assert outputs.shape == (8, 10)
    expected = model.apply(result.params, images)
    np.testing.assert_allclose(outputs.numpy(), expected, atol=1e-5, rtol=1e-5)
    initial = model.apply(model.init(jax.random.PRNGKey(0)), images)
    assert np.max(np.abs(expected - initial)) > 1e-2
    # Log-probabilities: each row sums to 1 after exp.
    np.testing.assert_allclose(np.exp(outputs.numpy()).sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    "model_name, num_epochs",
    [
        pytest.param("mnist_pure_jax", 1, id="mlp"),
        # 8 steps an epoch on the 1,024 mock examples: the CNN needs 2 (0.68 after 1).
        pytest.param("mnist_flax", 2, id="cnn"),
    ],
)
def test_training_learns_the_mock_data(export, model_name, num_epochs):
    path = export(model=model_name, num_epochs=num_epochs)
    info = read_info(path)
    # Chance is 0.1: a broken loss, gradient or optimizer stays near it.
    assert info["test_accuracy"] >= 0.95, info
    assert info["num_epochs"] == num_epochs


@pytest.mark.parametrize("model_name, features", [("mnist_pure_jax", 512), ("mnist_flax", 256)])
def test_features_only_export(export, tmp_path, model_name, features):
    classifier = export(model=model_name, num_epochs=0)
    path = export(model=model_name, model_classifier_layer=False, num_epochs=0)
    # Its own model, not the classifier's next version, which a server would switch to.
    assert path == str(tmp_path / f"{model_name}_features" / "1")
    assert os.listdir(os.path.dirname(classifier)) == ["1"]
    serve = tf.saved_model.load(path).signatures["serving_default"]
    (outputs,) = serve(inputs=tf.zeros((3, *INPUT_SHAPE))).values()
    assert outputs.shape == (3, features)


def test_cpu_and_cuda_export_runs_on_cpu(export):
    path = export(model="mnist_pure_jax", platforms=["cpu", "cuda"], num_epochs=0)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    (outputs,) = serve(inputs=tf.zeros((2, *INPUT_SHAPE))).values()
    assert outputs.shape == (2, 10)
    info = read_info(path)
    assert info["platforms"] == ["cpu", "cuda"]


def test_versions_increment(export, tmp_path):
    paths = [export(model="mnist_pure_jax", num_epochs=0) for _ in range(3)]
    assert paths == [str(tmp_path / "mnist_pure_jax" / v) for v in ("1", "2", "3")]
    assert versions.versions(str(tmp_path / "mnist_pure_jax")) == [1, 2, 3]


def test_existing_version_is_not_overwritten(export, tmp_path):
    path = export(model="mnist_pure_jax", model_version=4, num_epochs=0)
    before = snapshot(path)
    with pytest.raises(saved_model_main.ExportError, match=r"version 4 .* exists.*OVERWRITE=1"):
        export(model="mnist_pure_jax", model_version=4, num_epochs=0)
    assert snapshot(path) == before
    assert os.listdir(tmp_path / "mnist_pure_jax") == ["4"]

    export(model="mnist_pure_jax", model_version=4, num_epochs=0, overwrite=True)
    assert snapshot(path) != before
    assert os.listdir(tmp_path / "mnist_pure_jax") == ["4"]


def test_overwrite_never_leaves_the_version_missing(export, tmp_path, monkeypatch, caplog):
    path = export(model="mnist_pure_jax", model_version=4, num_epochs=0)
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


def test_overwrite_where_the_system_cannot_exchange(export, tmp_path, monkeypatch):
    path = export(model="mnist_pure_jax", model_version=2, num_epochs=0)
    before = snapshot(path)
    monkeypatch.setattr(versions, "_exchange", lambda path, other: False)
    export(model="mnist_pure_jax", model_version=2, num_epochs=0, overwrite=True)
    after = snapshot(path)
    assert after != before and "saved_model.pb" in after
    assert os.listdir(tmp_path / "mnist_pure_jax") == ["2"]


def test_zero_padded_version_counts_as_existing(export, tmp_path):
    first = export(model="mnist_pure_jax", num_epochs=0)
    os.rename(first, tmp_path / "mnist_pure_jax" / "00000007")
    assert export(model="mnist_pure_jax", num_epochs=0).endswith(os.sep + "8")
    with pytest.raises(saved_model_main.ExportError, match="version 7"):
        export(model="mnist_pure_jax", num_epochs=0, model_version=7)
    options = export_options(tmp_path, model="mnist_pure_jax", model_version=7)
    assert saved_model_main.check_existing(options).endswith("00000007")


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_interrupted_export_leaves_nothing(export, tmp_path, monkeypatch, interrupt):
    real_save = saved_model_lib.convert_and_save_model

    def save_then_interrupt(*args, **kwargs):
        real_save(*args, **kwargs)  # A complete SavedModel in the staging directory...
        raise interrupt()  # ...and then Ctrl-C (or SIGTERM) before publishing.

    monkeypatch.setattr(saved_model_lib, "convert_and_save_model", save_then_interrupt)
    with pytest.raises(interrupt):
        export(model="mnist_pure_jax", num_epochs=0)
    assert os.listdir(tmp_path / "mnist_pure_jax") == []


def test_mismatching_savedmodel_is_not_published(export, tmp_path, monkeypatch):
    # A SavedModel that disagrees with the JAX function must never be served.
    real_save = saved_model_lib.convert_and_save_model

    def save_wrong(jax_fn, *args, **kwargs):
        real_save(lambda p, x: jax_fn(p, x) + 1.0, *args, **kwargs)

    monkeypatch.setattr(saved_model_lib, "convert_and_save_model", save_wrong)
    with pytest.raises(saved_model_main.ExportError, match="differ from the JAX function"):
        export(model="mnist_pure_jax", num_epochs=0)
    assert os.listdir(tmp_path / "mnist_pure_jax") == []


def test_check_existing_version(export, tmp_path):
    export(model="mnist_pure_jax", serving_batch_size=16)
    options = export_options(tmp_path, model="mnist_pure_jax")
    assert saved_model_main.check_existing(options) == str(tmp_path / "mnist_pure_jax" / "1")
    with pytest.raises(saved_model_main.ExportError, match="make export"):
        saved_model_main.check_existing(export_options(tmp_path, model="mnist_flax"))


def test_show_images_writes_png(export, capsys):
    path = export(model="mnist_pure_jax", num_epochs=0, show_images=True)
    png = os.path.join(path, "assets.extra", "test_images.png")
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert png in capsys.readouterr().out


def snapshot(path: str) -> dict[str, bytes]:
    files = {}
    for root, _, names in os.walk(path):
        for name in names:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                files[os.path.relpath(full, path)] = f.read()
    return files


def read_info(path: str) -> dict:
    with open(os.path.join(path, saved_model_main.EXPORT_INFO_FILE)) as f:
        return json.load(f)


@pytest.mark.parametrize("batch_size", [-1, 8])
def test_in_process_call_of_the_readme_gives_what_the_signature_gives(export, batch_size):
    # The README's cheapest in-process call: the concrete function of the
    # module's __call__, at the signature's input shape.
    path = export(model="mnist_pure_jax", serving_batch_size=batch_size, num_epochs=0)
    loaded = tf.saved_model.load(path)
    batch = None if batch_size == -1 else batch_size
    predict = loaded.__call__.get_concrete_function(
        tf.TensorSpec((batch, *INPUT_SHAPE), tf.float32)
    )
    images = tf.constant(mnist_data.scale_images(mnist_data.synthetic(8, seed=3).images))
    (expected,) = loaded.signatures["serving_default"](inputs=images).values()
    np.testing.assert_array_equal(predict(images).numpy(), expected.numpy())


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
