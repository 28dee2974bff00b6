"""saved_model_lib: conversion, the format for a TensorFlow Serving release, assets.

Copy it with saved_model_lib.py: it needs only pytest, jax, numpy and
tensorflow (and tensorflow-serving-api for the warmup test), no other file.
"""

import contextlib
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf
from jax._src.export import _export

import saved_model_lib
from saved_model_lib import ExportFormatError, ServingFormat, XlaCallModuleInfo


def affine(params, inputs):
    """A small JAX function of (params, inputs), as convert_and_save_model takes."""
    return jnp.tanh(inputs @ params["w"] + params["b"])


PARAMS = {"w": np.arange(6, dtype=np.float32).reshape(3, 2) / 10, "b": np.ones(2, np.float32)}
INPUTS = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)


def save(model_dir, **kwargs):
    kwargs.setdefault("input_signatures", [tf.TensorSpec((None, 3), tf.float32)])
    kwargs.setdefault("polymorphic_shapes", "(b, ...)")
    saved_model_lib.convert_and_save_model(affine, PARAMS, str(model_dir), **kwargs)
    return tf.saved_model.load(str(model_dir))


# ---- Conversion ---------------------------------------------------------------------


def test_saved_model_computes_the_jax_function_at_any_batch(tmp_path):
    loaded = save(tmp_path / "m")
    serve = loaded.signatures["serving_default"]
    for batch in (1, 4):
        (outputs,) = serve(inputs=tf.constant(INPUTS[:batch])).values()
        np.testing.assert_allclose(outputs.numpy(), affine(PARAMS, INPUTS[:batch]), atol=1e-6)


def test_fixed_batch_signatures(tmp_path):
    signatures = [tf.TensorSpec((4, 3), tf.float32), tf.TensorSpec((1, 3), tf.float32)]
    loaded = save(tmp_path / "m", input_signatures=signatures, polymorphic_shapes=None)
    (spec,) = loaded.signatures["serving_default"].structured_input_signature[1].values()
    assert spec.shape.as_list() == [4, 3]
    # The other traced shape is callable without retracing.
    predict = loaded.__call__.get_concrete_function(tf.TensorSpec((1, 3), tf.float32))
    np.testing.assert_allclose(predict(INPUTS[:1]).numpy(), affine(PARAMS, INPUTS[:1]), atol=1e-6)


def test_reusable_saved_model_interface(tmp_path):
    loaded = save(tmp_path / "m")
    assert sorted(v.name for v in loaded.variables) == ["b:0", "w:0"]
    assert list(loaded.trainable_variables) == [] and list(loaded.regularization_losses) == []
    np.testing.assert_array_equal(loaded.params["w"].numpy(), PARAMS["w"])
    np.testing.assert_allclose(loaded(INPUTS).numpy(), affine(PARAMS, INPUTS), atol=1e-6)
    trainable = save(tmp_path / "t", with_gradient=True)
    assert len(trainable.trainable_variables) == 2


def test_bad_signatures_are_refused(tmp_path):
    with pytest.raises(ValueError, match="at least one input signature"):
        save(tmp_path / "m", input_signatures=[])
    with pytest.raises(ValueError, match="exactly one input signature"):
        save(tmp_path / "m", input_signatures=[tf.TensorSpec((None, 3))] * 2)


# ---- The format for a TensorFlow Serving release ----------------------------------


def test_stablehlo_producer_reads_the_bytecode_header():
    header = b"ML\xefR\rStableHLO_v1.9.1\x00\x01?\x05"
    assert saved_model_lib.stablehlo_producer(header) == "1.9.1"
    # A bytecode version of two varint bytes.
    assert saved_model_lib.stablehlo_producer(b"ML\xefR\x02\x05StableHLO_v0.17.7\x00") == "0.17.7"
    assert saved_model_lib.stablehlo_producer(b"not bytecode") == "unknown"
    assert saved_model_lib.stablehlo_producer(b"ML\xefR\rMLIR20.0.0\x00") == "unknown"


def test_format_problems_name_each_excess():
    runtime = ServingFormat(9, "1.9.1")
    fits = XlaCallModuleInfo(9, ("CPU",), "1.9.1")
    assert saved_model_lib.format_problems([fits], runtime) == []
    too_new = XlaCallModuleInfo(10, ("CPU",), "1.15.0")
    assert saved_model_lib.format_problems([fits, too_new], runtime) == [
        "StableHLO 1.15.0 > 1.9.1",
        "calling convention 10 > 9",
    ]
    unknown = XlaCallModuleInfo(9, ("CPU",), "unknown")
    assert saved_model_lib.format_problems([unknown], runtime) == ["StableHLO unknown > 1.9.1"]


def test_writing_format_restores_jax_even_when_the_export_fails():

    pick = _export.hlo.get_version_from_compatibility_requirement
    convention = jax.config.jax_export_calling_convention_version
    requirement = _export.hlo.StablehloCompatibilityRequirement.WEEK_4
    with (
        pytest.raises(RuntimeError, match="boom"),
        saved_model_lib.writing_format(ServingFormat(9, "1.1.1")),
    ):
        assert jax.config.jax_export_calling_convention_version == 9
        assert _export.hlo.get_version_from_compatibility_requirement(requirement) == "1.1.1"
        raise RuntimeError("boom")
    assert _export.hlo.get_version_from_compatibility_requirement is pick
    assert jax.config.jax_export_calling_convention_version == convention


def test_writing_format_fails_clearly_if_jax_moved_its_private_function(monkeypatch):
    monkeypatch.setattr(_export, "hlo", types.SimpleNamespace())
    with (
        pytest.raises(ExportFormatError, match="no longer chooses its StableHLO version"),
        saved_model_lib.writing_format(ServingFormat(9, "1.9.1")),
    ):
        pass


def test_convert_for_a_release_writes_its_format(tmp_path):
    save(tmp_path / "m", serving_format=ServingFormat(9, "1.9.1"))
    modules = saved_model_lib.xla_call_modules(str(tmp_path / "m"))
    assert modules and {m.calling_convention_version for m in modules} == {9}
    assert all(saved_model_lib._version_key(m.stablehlo_version) <= (1, 9, 1) for m in modules)


def test_convert_never_claims_a_release_it_does_not_fit(tmp_path, monkeypatch):
    # As if a JAX upgrade stopped honouring writing_format.
    monkeypatch.setattr(saved_model_lib, "writing_format", lambda fmt: contextlib.nullcontext())
    with pytest.raises(ExportFormatError, match="writing_format no longer controls JAX's format"):
        save(tmp_path / "m", serving_format=ServingFormat(9, "0.17.7"))


# ---- What travels with a version ------------------------------------------------------


def test_warmup_requests_round_trip(tmp_path):
    prediction_log_pb2 = pytest.importorskip(
        "tensorflow_serving.apis.prediction_log_pb2", reason="needs tensorflow-serving-api"
    )
    batches = [INPUTS[:1], INPUTS]
    path = saved_model_lib.write_warmup_requests(str(tmp_path), batches, model_name="affine")
    assert path == str(tmp_path / saved_model_lib.WARMUP_FILE)
    logs = [
        prediction_log_pb2.PredictionLog.FromString(record.numpy())
        for record in tf.data.TFRecordDataset(path)
    ]
    assert [log.predict_log.request.model_spec.name for log in logs] == ["affine", "affine"]
    shapes = [tf.make_ndarray(log.predict_log.request.inputs["inputs"]).shape for log in logs]
    assert shapes == [(1, 3), (4, 3)]


def test_validation_batch_round_trip(tmp_path):
    outputs = np.asarray(affine(PARAMS, INPUTS))
    path = saved_model_lib.write_validation_batch(
        str(tmp_path), INPUTS, outputs, atol=1e-5, rtol=1e-6
    )
    batch = np.load(path)
    np.testing.assert_array_equal(batch["outputs"], outputs)
    assert float(batch["atol"]) == 1e-5 and float(batch["rtol"]) == 1e-6
