"""CHECKPOINT (models/checkpoint.py): Orbax checkpoints restored into the model's own
structure; missing, empty, foreign and mismatching ones refused before any conversion,
leaving nothing; an MNIST model exported from a checkpoint without training."""

import json
import os

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from conftest import export_options

import saved_model_lib
import saved_model_main
from models import checkpoint, export_lib, get_model
from models.checkpoint import CheckpointError
from serving import versions


def save(params, directory) -> str:
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(os.path.abspath(directory), params)
    checkpointer.wait_until_finished()
    return str(directory)


def equal(a, b) -> bool:
    return jax.tree.all(jax.tree.map(lambda x, y: bool(np.array_equal(x, y)), a, b))


@pytest.fixture(scope="module")
def mlp():
    model = get_model("mnist_pure_jax")
    return model, model.init(jax.random.key(7))


def test_restores_the_saved_parameters_in_the_models_structure(mlp, tmp_path):
    model, params = mlp
    restored = checkpoint.restore(save(params, tmp_path / "ckpt"), model)
    assert jax.tree.structure(restored) == jax.tree.structure(params) and equal(restored, params)


def test_a_checkpoint_managers_newest_step_and_the_older_pytree_api(mlp, tmp_path):
    model, params = mlp
    with ocp.CheckpointManager(tmp_path / "manager") as manager:
        for step, scale in ((1, 0.0), (20, 1.0), (3, 2.0)):
            scaled = jax.tree.map(lambda x, s=scale: x * s, params)
            manager.save(step, args=ocp.args.StandardSave(scaled))
        manager.wait_until_finished()
    assert equal(checkpoint.restore(str(tmp_path / "manager"), model), params)  # Step 20.
    ocp.PyTreeCheckpointer().save(tmp_path / "pytree", params)
    assert equal(checkpoint.restore(str(tmp_path / "pytree"), model), params)


def test_missing_empty_and_foreign_directories_are_one_line(mlp, tmp_path):
    model, _ = mlp
    (tmp_path / "empty").mkdir()
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "weights.pkl").write_bytes(b"not orbax")
    for name, expected in [
        ("missing", "no such directory"),
        ("empty", "is empty: no checkpoint was written there"),
        ("foreign", "is not an Orbax checkpoint"),
    ]:
        with pytest.raises(CheckpointError) as error:
            checkpoint.restore(str(tmp_path / name), model)
        assert expected in str(error.value) and "\n" not in str(error.value)


def test_a_tree_that_differs_names_the_paths_and_shapes(mlp, tmp_path):
    model, params = mlp
    wrong = [*params[:2], (np.zeros((512, 12), np.float32), params[2][1]), np.zeros(3)]
    with pytest.raises(CheckpointError) as error:
        checkpoint.restore(save(wrong, tmp_path / "ckpt"), model)
    message = str(error.value)
    assert "[2][0] has shape (512, 12), the model (512, 10)" in message
    assert "[3] (3,) is not the model's" in message
    assert "[0][0]" not in message  # It matches.


def test_a_mismatch_is_refused_before_any_conversion_and_leaves_nothing(mlp, tmp_path, monkeypatch):
    _, params = mlp

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted before the checkpoint's check")

    monkeypatch.setattr(saved_model_lib, "convert_and_save_model", no_conversion)
    ckpt = save(params[:2], tmp_path / "ckpt")
    options = export_options(tmp_path / "models", model="mnist_pure_jax", checkpoint=ckpt)
    with pytest.raises(CheckpointError, match=r"\[2\]\[0\] is missing"):
        saved_model_main.train_and_export(options)
    assert not (tmp_path / "models").exists()


def test_an_mnist_model_from_a_checkpoint_skips_training(mlp, tmp_path, monkeypatch):
    """And it is checked on the images of INPUTS, not the test data."""
    model, params = mlp

    def no_training(*args, **kwargs):
        raise AssertionError("trained despite the checkpoint")

    monkeypatch.setattr(saved_model_main.train, "train", no_training)
    ckpt = save(params, tmp_path / "ckpt")
    own = np.random.default_rng(1).random((5, 28, 28, 1), np.float32)
    np.save(tmp_path / "own.npy", own)
    path = saved_model_main.train_and_export(
        export_options(
            tmp_path / "models",
            model="mnist_pure_jax",
            checkpoint=ckpt,
            inputs=str(tmp_path / "own.npy"),
        )
    )
    validation = np.load(os.path.join(path, saved_model_lib.VALIDATION_FILE))
    np.testing.assert_array_equal(validation["inputs"][:5], own)
    with open(os.path.join(path, versions.EXPORT_INFO_FILE)) as f:
        info = json.load(f)
    assert info["checkpoint"] == os.path.abspath(ckpt) and info["num_epochs"] is None
    assert info["train_accuracy"] is None and 0 <= info["test_accuracy"] <= 1
    images = np.random.default_rng(0).random((3, 28, 28, 1), np.float32)
    served = export_lib.predict(export_lib.serving_signature(path), images)
    np.testing.assert_allclose(served, model.apply(params, images), atol=1e-5, rtol=1e-5)
