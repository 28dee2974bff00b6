"""The local model server against TensorFlow Serving's API, and the request script."""

import json
import math
import os
import shutil
import threading
import time

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from conftest import copy_version, export_model, local_server, module, run
from half_plus_two import write_tf1
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from clients import serving_client
from models import mnist_data
from serving import model_config, versions

pytestmark = pytest.mark.slow  # Its exports and servers add up to most of a minute.

IMAGES = mnist_data.scale_images(mnist_data.synthetic(8, seed=3).images)


def grpc_predict(server, images, version=None, **spec):
    channel = grpc.insecure_channel(server.grpc_address)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = spec.pop("name", server.model_name)
    if version is not None:
        request.model_spec.version.value = version
    for key, value in spec.items():
        setattr(request.model_spec, key, value)
    if images is not None:
        request.inputs["inputs"].CopyFrom(tf.make_tensor_proto(images))
    response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
        request, timeout=30
    )
    return response


def in_process(path, images):
    serve = tf.saved_model.load(path).signatures["serving_default"]
    (output,) = serve(inputs=tf.constant(images)).values()
    return output.numpy()


@pytest.fixture(scope="module")
def exports(shared_export):
    """Each model, batch-polymorphic and fixed-batch (8), each under its own MODEL_PATH;
    untrained: the tests compare answers, not accuracy."""
    return {
        (model, batch): shared_export(model=model, serving_batch_size=batch, num_epochs=0)
        for model in ("mnist_pure_jax", "mnist_flax")
        for batch in (-1, 8)
    }


def served_name(model: str, batch: int) -> str:
    """The name `server` serves an export under: the model's, with _b8 for batch 8."""
    return model if batch == -1 else f"{model}_b{batch}"


@pytest.fixture(scope="module")
def server(exports, tmp_path_factory):
    """One server of the four exports (a model config file), each under served_name; its own
    model (server.model_name, server.rest_url) is the MLP at any batch size. The error cases
    below must leave it serving."""
    config = model_config.ModelServerConfig()
    for key, path in exports.items():
        config.model_config_list.config.add(
            name=served_name(*key),
            base_path=os.path.dirname(path),
            model_platform=model_config.PLATFORM,
        )
    config_file = tmp_path_factory.mktemp("config") / "models.config"
    model_config.write(config, str(config_file))
    mlp = os.path.dirname(exports["mnist_pure_jax", -1])  # Its config entry wins.
    with local_server("mnist_pure_jax", mlp, f"--model_config_file={config_file}") as server:
        for key in exports:
            server.wait_for(None, model=served_name(*key))
        yield server


@pytest.mark.parametrize("model", ["mnist_pure_jax", "mnist_flax"])
@pytest.mark.parametrize("batch", [-1, 8])
def test_grpc_and_rest_equal_in_process_savedmodel(exports, server, model, batch):
    path = exports[model, batch]
    expected = in_process(path, IMAGES)
    name = served_name(model, batch)
    rest_url = server.model_url(name)
    response = grpc_predict(server, IMAGES, name=name)
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["output_0"]), expected, rtol=1e-6)

    rows = requests.post(f"{rest_url}:predict", json={"instances": IMAGES.tolist()})
    np.testing.assert_allclose(rows.json()["predictions"], expected, rtol=1e-6)
    columns = requests.post(f"{rest_url}:predict", json={"inputs": IMAGES.tolist()})
    np.testing.assert_allclose(columns.json()["outputs"], expected, rtol=1e-6)

    metadata = requests.get(f"{rest_url}/metadata").json()
    assert metadata["model_spec"] == {"name": name, "version": "1", "signature_name": ""}
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    dims = [int(d["size"]) for d in signature["inputs"]["inputs"]["tensor_shape"]["dim"]]
    assert dims == [batch, 28, 28, 1]
    assert signature["method_name"] == "tensorflow/serving/predict"


@pytest.mark.parametrize("model, parameter", [("mnist_flax", 8), ("mnist_pure_jax", 6)])
def test_the_batch_mismatch_errors_that_the_readme_quotes(exports, server, model, parameter):
    path = exports[model, 8]
    sixteen = np.concatenate([IMAGES, IMAGES])
    with pytest.raises(tf.errors.InvalidArgumentError) as direct:
        in_process(path, sixteen)
    assert (
        f"Call parameter must match argument; got parameter {parameter} shape: "
        "f32[8,28,28,1], argument shape: f32[16,28,28,1]"
    ) in str(direct.value)
    local = "input 'inputs' has shape [16, 28, 28, 1], the signature takes [8, 28, 28, 1]"
    name = served_name(model, 8)
    rest_url = server.model_url(name)
    rest = requests.post(f"{rest_url}:predict", json={"instances": sixteen.tolist()})
    assert rest.status_code == 400 and local in rest.json()["error"]
    with pytest.raises(grpc.RpcError) as raw_grpc:
        grpc_predict(server, sixteen, name=name)
    assert raw_grpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert local in raw_grpc.value.details()


GRPC_ERRORS = [
    pytest.param(dict(name="nope"), IMAGES, grpc.StatusCode.NOT_FOUND, "Latest(nope)",
                 id="unknown model"),
    pytest.param(dict(version=7), IMAGES, grpc.StatusCode.NOT_FOUND,
                 "Specific(mnist_pure_jax, 7)", id="unknown version"),
    pytest.param({}, IMAGES.astype(np.float64), grpc.StatusCode.INVALID_ARGUMENT, "dtype",
                 id="float64 for a float32 input"),
    pytest.param({}, IMAGES[:, :20], grpc.StatusCode.INVALID_ARGUMENT, "shape",
                 id="images of the wrong shape"),
    pytest.param({}, None, grpc.StatusCode.INVALID_ARGUMENT, "Missing but required: {inputs}",
                 id="no input"),
    pytest.param(dict(signature_name="nope"), IMAGES, grpc.StatusCode.FAILED_PRECONDITION, "nope",
                 id="unknown signature"),
]  # fmt: skip


@pytest.mark.parametrize("spec, images, code, message", GRPC_ERRORS)
def test_grpc_predict_errors_have_tensorflow_servings_codes(server, spec, images, code, message):
    with pytest.raises(grpc.RpcError) as error:
        grpc_predict(server, images, **spec)
    assert error.value.code() == code, spec
    assert message in error.value.details()


def test_grpc_metadata_needs_a_field(server):
    channel = grpc.insecure_channel(server.grpc_address)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "mnist_pure_jax"
    with pytest.raises(grpc.RpcError) as error:
        stub.GetModelMetadata(request)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    request.metadata_field.append("signature_def")
    response = stub.GetModelMetadata(request)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    assert list(signatures.signature_def["serving_default"].inputs) == ["inputs"]


def test_grpc_status_of_a_version_and_of_an_unknown_one(server):
    channel = grpc.insecure_channel(server.grpc_address)
    status_stub = model_service_pb2_grpc.ModelServiceStub(channel)
    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "mnist_pure_jax"
    (status,) = status_stub.GetModelStatus(status_request).model_version_status
    assert status.version == 1 and status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    status_request.model_spec.version.value = 9
    with pytest.raises(grpc.RpcError) as error:
        status_stub.GetModelStatus(status_request)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


MALFORMED_BODIES = [
    pytest.param(b"", id="empty body"),
    pytest.param(b"{", id="JSON cut short"),
    pytest.param(b"[1, 2]", id="a list, not an object"),
    pytest.param(b'"instances"', id="a string, not an object"),
    pytest.param(b"{}", id="neither instances nor inputs"),
    pytest.param(b'{"instances": []}', id="no instances"),
    pytest.param(b'{"instances": [[1.0]], "inputs": [[1.0]]}', id="instances and inputs"),
    pytest.param(b'{"instances": "abc"}', id="instances not a list"),
    pytest.param(b'{"instances": [[[[true]]]]}', id="booleans for floats"),
    pytest.param(b'{"instances": [null]}', id="null"),
    pytest.param(b'{"inputs": {"images": [1.0]}}', id="unknown input name"),
    pytest.param(b'{"instances": [{"inputs": [0.0], "extra": 1}]}', id="extra input"),
    pytest.param(b'{"instances": [[1.0, 2.0], [1.0]]}', id="ragged instances"),
    pytest.param(b'{"inputs": [1.0, 2.0]}', id="wrong shape"),
    pytest.param(b'{"signature_name": 7, "inputs": [1.0]}', id="signature_name not a string"),
    pytest.param(b'{"inputs": ' + b"[" * 5000 + b"]" * 5000 + b"}", id="5000 levels deep"),
]


@pytest.mark.parametrize("body", MALFORMED_BODIES)
def test_malformed_rest_body_gets_400(server, body):
    response = requests.post(f"{server.rest_url}:predict", data=body, timeout=10)
    assert response.status_code == 400, (body[:60], response.text)
    assert isinstance(response.json()["error"], str) and response.json()["error"]


MLP = "/v1/models/mnist_pure_jax"
WRONG_REQUESTS = [
    pytest.param("GET", f"{MLP}:predict", 400, id="GET on predict"),
    pytest.param("PATCH", MLP, 400, id="PATCH"),
    pytest.param("POST", f"{MLP}:classify", 400, id="classify on a predict signature"),
    pytest.param("GET", f"{MLP}/versions/2", 404, id="status of an unknown version"),
    pytest.param("GET", f"{MLP}/versions/x", 400, id="version not a number"),
    pytest.param("POST", f"{MLP}/versions/3:predict", 404, id="predict on an unknown version"),
    pytest.param("GET", "/v1/models/other", 404, id="another model"),
    pytest.param("GET", "/nothing/here", 404, id="outside the API"),
]


@pytest.mark.parametrize("method, path, code", WRONG_REQUESTS)
def test_wrong_rest_requests_get_tensorflow_servings_codes(server, method, path, code):
    url = f"http://localhost:{server.rest_port}{path}"
    response = requests.request(method, url, data=b"{}", timeout=10)
    assert response.status_code == code, (method, url, response.text)
    assert "error" in response.json()


def test_the_server_still_serves_after_errors(server):
    # Its own errors first, so that the test holds whichever tests ran before it.
    for body in (b"{", b'{"instances": [[1.0]]}', b"\xff"):
        bad = requests.post(f"{server.rest_url}:predict", data=body, timeout=10)
        assert bad.status_code == 400, bad.text
    bad_grpc = predict_pb2.PredictRequest()
    bad_grpc.model_spec.name = server.model_name
    with pytest.raises(grpc.RpcError), grpc.insecure_channel(server.grpc_address) as channel:
        prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(bad_grpc, timeout=10)
    good = requests.post(f"{server.rest_url}:predict", json={"instances": IMAGES.tolist()})
    assert good.status_code == 200 and len(good.json()["predictions"]) == len(IMAGES)


def write_two_io_model(path):
    """A plain TensorFlow SavedModel (no jax2tf): inputs a, b; outputs sum, scaled."""

    class TwoInTwoOut(tf.Module):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 2], tf.float32, name="a"),
                tf.TensorSpec([None], tf.int32, name="b"),
            ]
        )
        def __call__(self, a, b):
            return {"sum": tf.reduce_sum(a, axis=1) + tf.cast(b, tf.float32), "scaled": a * 2.0}

    module = TwoInTwoOut()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.__call__})


def test_plain_tensorflow_model_with_named_inputs_and_outputs(tmp_path):
    write_two_io_model(tmp_path / "two_io" / "1")
    with local_server("two_io", tmp_path / "two_io") as server:
        rows = requests.post(
            f"{server.rest_url}:predict",
            json={"instances": [{"a": [1.0, 2.0], "b": 10}, {"a": [3.0, 4.0], "b": 20}]},
        ).json()
        assert rows == {
            "predictions": [
                {"sum": 13.0, "scaled": [2.0, 4.0]},
                {"sum": 27.0, "scaled": [6.0, 8.0]},
            ]
        }
        columns = requests.post(
            f"{server.rest_url}:predict", json={"inputs": {"a": [[1.0, 2.0]], "b": [5]}}
        ).json()
        assert columns == {"outputs": {"sum": [8.0], "scaled": [[2.0, 4.0]]}}
        bad = requests.post(
            f"{server.rest_url}:predict", json={"inputs": {"a": [[1.0, 2.0]], "b": [0.5]}}
        )
        assert bad.status_code == 400
        assert "JSON Value: 0.5 Type: Number is not of expected type: int32" in bad.json()["error"]

        channel = grpc.insecure_channel(server.grpc_address)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "two_io"
        request.inputs["a"].CopyFrom(tf.make_tensor_proto(np.ones((3, 2), np.float32)))
        request.inputs["b"].CopyFrom(tf.make_tensor_proto(np.arange(3, dtype=np.int32)))
        request.output_filter.append("sum")
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request)
        assert list(response.outputs) == ["sum"]
        np.testing.assert_array_equal(tf.make_ndarray(response.outputs["sum"]), [2.0, 3.0, 4.0])


def test_half_plus_two_answers_as_the_rest_documentation_shows(tmp_path):
    write_tf1(tmp_path / "half_plus_two" / "00000123")
    with local_server("half_plus_two", tmp_path / "half_plus_two", version=123) as server:
        response = requests.post(
            f"{server.rest_url}:predict", data='{"instances": [1.0, 2.0, 5.0]}'
        )
        assert response.json() == {"predictions": [2.5, 3.0, 4.5]}
        # NaN and Infinity, which JSON lacks but TF Serving's parser takes.
        response = requests.post(
            f"{server.rest_url}:predict", data='{"instances": [NaN, -Infinity, 1e3]}'
        )
        assert response.status_code == 200, response.text
        # (json.loads: requests' response.json() uses simplejson, which refuses NaN.)
        nan, minus_inf, number = json.loads(response.text)["predictions"]
        assert math.isnan(nan) and minus_inf == -math.inf and number == 502.0
        # The client's JSON carries float32 values exactly, however many digits they need
        # (read back as float64, JSON having no dtype, then as the signature's float32).
        values = np.random.default_rng(0).random(64, dtype=np.float32)
        client = serving_client.RestClient(f"localhost:{server.rest_port}", "half_plus_two", 10)
        answer = client.predict({"x": values}).astype(np.float32)
        np.testing.assert_array_equal(answer, values * 0.5 + 2)
        assert requests.get(server.rest_url).json() == {
            "model_version_status": [
                {
                    "version": "123",
                    "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                }
            ]
        }
        response = requests.post(f"{server.model_url('half')}:predict", data="{}")
        assert response.status_code == 404
        assert response.json() == {"error": "Servable not found for request: Latest(half)"}


def test_hot_reload_while_requests_stream_and_broken_version_is_skipped(
    tmp_path, caplog, untrained_mlp
):
    """In a thread of this process (test_stress.py's stress under change: in a process)."""
    base = tmp_path / "mnist_pure_jax"
    copy_version(untrained_mlp, base)
    # Version 2, published while requests stream, as an export publishes (a rename into
    # place); an export under the streams would compete with them for this process's GIL.
    coming = copy_version(untrained_mlp, tmp_path / "next")
    with local_server("mnist_pure_jax", base) as server:
        versions_seen, errors, stop = [], [], threading.Event()

        def stream():
            while not stop.is_set():
                try:
                    versions_seen.append(grpc_predict(server, IMAGES).model_spec.version.value)
                except Exception as e:  # Any failure is a finding, not a hung worker.
                    errors.append(e)

        workers = [threading.Thread(target=stream) for _ in range(2)]
        for worker in workers:
            worker.start()
        try:
            assert versions.publish(str(coming), str(base), None) == 2
            server.wait_for(2)
            server.wait_for(1, state="END")
            (base / "3").mkdir()
            (base / "3" / "saved_model.pb").write_bytes(b"\x08\x01truncated")
            entry = server.wait_for(3, state="END")
            assert "Failed to load version 3" in entry["status"]["error_message"]
            assert entry["status"]["error_code"] != "OK"
            before = len(versions_seen)
            server.wait_for(2)  # Still the served one.
            deadline = time.monotonic() + 60
            while len(versions_seen) < before + 10 and not errors:
                assert time.monotonic() < deadline, "no answers from version 2 for 60 s"
                time.sleep(0.01)
        finally:
            stop.set()
            for worker in workers:
                worker.join()
        assert errors == []
        assert versions_seen[0] == 1 and versions_seen[-1] == 2
        assert sorted(set(versions_seen)) == [1, 2]
        assert "Failed to load version 3" in caplog.text

        # A removed version is unloaded; the newest remaining one is served again.
        shutil.rmtree(base / "2")
        server.wait_for(1)
        assert grpc_predict(server, IMAGES).model_spec.version.value == 1


def test_server_refuses_a_busy_port(tmp_path, untrained_mlp):
    copy_version(untrained_mlp, tmp_path / "mnist_pure_jax")
    with local_server("mnist_pure_jax", tmp_path / "mnist_pure_jax") as server:
        result = run(
            module("local_server", f"--port={server.grpc_port}", "--rest_api_port=0",
                   "--model_name=x", f"--model_base_path={tmp_path}"),
            timeout=60,
        )  # fmt: skip
        assert result.returncode == 1
        assert "cannot listen" in result.stderr and "make stop" in result.stderr


@pytest.mark.parametrize("batch, sizes", [(-1, [1, 8, 16, 32, 64, 128]), (8, [8])])
def test_export_writes_warmup_requests_that_the_server_replays(tmp_path, caplog, batch, sizes):
    from tensorflow_serving.apis import prediction_log_pb2

    from models.export_lib import ExportOptions

    default = ExportOptions().warmup_batch_sizes  # The sizes a batch -1 gets.
    path = export_model(
        tmp_path, model="mnist_pure_jax", num_epochs=0, serving_batch_size=batch,
        warmup_batch_sizes=default,
    )  # fmt: skip
    warmup = os.path.join(path, "assets.extra", "tf_serving_warmup_requests")
    logs = [
        prediction_log_pb2.PredictionLog.FromString(r.numpy())
        for r in tf.data.TFRecordDataset(warmup)
    ]
    *requests_, image_request = [log.predict_log.request for log in logs]
    assert [r.inputs["inputs"].tensor_shape.dim[0].size for r in requests_] == sizes
    assert {r.model_spec.signature_name for r in requests_} == {"serving_default"}
    # And one request of the image signature, at its batch size (the smallest: 1).
    assert image_request.model_spec.signature_name == "predict_images"
    assert image_request.inputs["images"].tensor_shape.dim[0].size == min(sizes)
    with (
        caplog.at_level("INFO", "absl"),
        local_server("mnist_pure_jax", tmp_path / "mnist_pure_jax"),
    ):
        assert f"{len(sizes) + 1} warmup requests" in caplog.text
