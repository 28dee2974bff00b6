"""The local server's config flags, as tensorflow_model_server_test.py tests them.

testGoodModelConfig, testBadModelConfig, testModelConfigReload,
testModelConfigReloadWithZeroPollPeriod and testPrometheusEndpoint, through a
started server, on rebuilds of its half_plus_two and half_plus_three models.
"""

import time

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from conftest import local_server
from half_plus_two import write_tf1
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from local_server.harness import LocalServer


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    write_tf1(root / "half_plus_two" / "123")
    write_tf1(root / "half_plus_three" / "123", b=3.0)
    return root


def predict(server, name: str) -> float:
    """y for x = 2.0, as VerifyPredictRequest sends it."""
    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = name
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([2.0], np.float32)))
        return float(tf.make_ndarray(stub.Predict(request, timeout=10).outputs["y"])[0])


def config_file(tmp_path, models, *names: str):
    path = tmp_path / "model_config.txt"
    entries = "".join(
        f'config: {{ name: "{n}", base_path: "{models / n}", model_platform: "tensorflow" }}\n'
        for n in names
    )
    path.write_text(f"model_config_list: {{\n{entries}}}\n")
    return path


def test_good_model_config(tmp_path, models):
    path = config_file(tmp_path, models, "half_plus_two", "half_plus_three")
    with local_server("ignored", models / "none", f"--model_config_file={path}", version=None) as s:
        for name in ("half_plus_two", "half_plus_three"):
            s.wait_for(None, timeout=60, model=name)
        assert predict(s, "half_plus_two") == 3.0
        assert predict(s, "half_plus_three") == 4.0


def test_bad_model_config(tmp_path, models):
    path = tmp_path / "bad_model_config.txt"
    path.write_text("improperly formatted file")  # TensorFlow Serving's testdata file.
    log = tmp_path / "server.log"
    server = LocalServer("ignored", models, log, f"--model_config_file={path}")
    try:
        assert server.process.wait(timeout=60) != 0
    finally:
        server.stop()  # Only if it is still running, when the test has failed.
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig" in log.read_text()


@pytest.mark.parametrize(
    "poll_seconds, reloaded",
    [pytest.param(1, True, id="poll"), pytest.param(0, False, id="no poll")],
)
def test_model_config_reload(tmp_path, models, poll_seconds, reloaded):
    path = config_file(tmp_path, models, "half_plus_two")
    flags = (f"--model_config_file={path}", f"--model_config_file_poll_wait_seconds={poll_seconds}")
    with local_server("ignored", models / "none", *flags, version=None) as s:
        s.wait_for(None, timeout=60, model="half_plus_two")
        assert predict(s, "half_plus_two") == 3.0
        config_file(tmp_path, models, "half_plus_three")
        if reloaded:
            s.wait_for(None, timeout=60, model="half_plus_three")
            assert predict(s, "half_plus_three") == 4.0
            with pytest.raises(grpc.RpcError) as error:  # Left the config: unloaded.
                predict(s, "half_plus_two")
            assert error.value.code() == grpc.StatusCode.NOT_FOUND
        else:
            time.sleep(poll_seconds + 2)
            assert predict(s, "half_plus_two") == 3.0


def test_prometheus_endpoint(tmp_path, models):
    monitoring = tmp_path / "monitoring_config.txt"  # TensorFlow Serving's testdata file.
    monitoring.write_text(
        'prometheus_config: {\n  enable: true,\n  path: "/monitoring/prometheus/metrics"\n}\n'
    )
    flags = (f"--monitoring_config_file={monitoring}",)
    with local_server("half_plus_two", models / "half_plus_two", *flags, version=123) as s:
        predict(s, "half_plus_two")
        url = f"http://localhost:{s.rest_port}/monitoring/prometheus/metrics"
        answer = requests.get(url, timeout=10)
        assert answer.status_code == 200
        assert answer.headers["Content-Type"].startswith("text/plain")
        assert "# TYPE" in answer.text
        # The status polls that waited for the model count too, as REST requests.
        assert ':tensorflow:serving:request_count{model_name="half_plus_two",status="OK"} ' in (
            answer.text
        )
        assert (
            ':tensorflow:serving:request_latency_count{model_name="half_plus_two",API="Predict",'
            'entrypoint="GRPC"} 1' in answer.text
        )
