"""local_server.warmup: every kind of warmup record TensorFlow Serving replays, and its limits."""

import pytest
import tensorflow as tf
from half_plus_two import write_tf1
from tensorflow_serving.apis import prediction_log_pb2

from local_server.servable import Servable
from local_server.warmup import warm_up
from serving import versions


def write_records(version_dir, logs) -> None:
    path = version_dir / versions.WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())


def example_log(kind: str, signature_name: str) -> prediction_log_pb2.PredictionLog:
    """A classify_log or regress_log of one example, x = 1."""
    log = prediction_log_pb2.PredictionLog()
    request = getattr(log, kind).request
    request.model_spec.name, request.model_spec.signature_name = "m", signature_name
    request.input.example_list.examples.add().features.feature["x"].float_list.value.append(1.0)
    return log


def regress_log() -> prediction_log_pb2.PredictionLog:
    return example_log("regress_log", "regress_x_to_y")


def predict_log() -> prediction_log_pb2.PredictionLog:
    log = prediction_log_pb2.PredictionLog()
    log.predict_log.request.model_spec.name = "m"
    log.predict_log.request.inputs["x"].CopyFrom(tf.make_tensor_proto([[1.0]], tf.float32))
    return log


def multi_log() -> prediction_log_pb2.PredictionLog:
    log = prediction_log_pb2.PredictionLog()
    request = log.multi_inference_log.request
    task = request.tasks.add(method_name="tensorflow/serving/regress")
    task.model_spec.name, task.model_spec.signature_name = "m", "regress_x_to_y"
    request.input.example_list.examples.add().features.feature["x"].float_list.value.append(1.0)
    return log


@pytest.fixture(scope="module")
def version(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "1"
    write_tf1(path)
    return path


def test_predict_classify_regress_and_multi_inference_records_are_replayed(version):
    classify_log = example_log("classify_log", "classify_x_to_y")
    write_records(version, [predict_log(), classify_log, regress_log(), multi_log()])
    assert warm_up(Servable(str(version), 1)) == 4


def test_a_record_that_fails_fails_the_load(version):
    bad = regress_log()
    bad.regress_log.request.model_spec.signature_name = "nope"
    write_records(version, [bad])
    with pytest.raises(Exception, match="No signature was found with the name: nope"):
        warm_up(Servable(str(version), 1))


def test_an_unsupported_kind_and_too_many_records_fail_the_load(version):
    session_run = prediction_log_pb2.PredictionLog()
    session_run.session_run_log.SetInParent()
    write_records(version, [session_run])
    with pytest.raises(ValueError, match="Unsupported log_type for warmup: session_run_log"):
        warm_up(Servable(str(version), 1))
    write_records(version, [regress_log()] * 1001)
    with pytest.raises(ValueError, match=r"exceeds the maximum \(1000\)"):
        warm_up(Servable(str(version), 1))
