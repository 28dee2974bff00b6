"""The local server over gRPC against TensorFlow Serving's tensorflow_model_server_test.py.

Its Classify, Regress, MultiInference, GetModelStatus and GetModelMetadata
cases, on rebuilds of its half_plus_two model in both forms it tests (a TF1
graph, and a TF2 module: the *Tf2 cases), through a started server.
"""

import grpc
import pytest
from conftest import local_server
from half_plus_two import write_tf1, write_tf2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
    regression_pb2,
)

CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"


@pytest.fixture(scope="module", params=[write_tf1, write_tf2], ids=["tf1", "tf2"])
def stub(request, tmp_path_factory):
    base = tmp_path_factory.mktemp("models") / "default"
    request.param(base / "123")
    with local_server("default", base, version=123) as server:
        channel = grpc.insecure_channel(server.grpc_address)
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel), channel
        channel.close()


def with_x(request, *values: float):
    for value in values:
        example = request.input.example_list.examples.add()
        example.features.feature["x"].float_list.value.append(value)
    return request


def assert_spec(spec, name: str, signature_name: str) -> None:
    assert (spec.name, spec.signature_name, spec.version.value) == (name, signature_name, 123)


def test_classify(stub):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name, request.model_spec.signature_name = "default", "classify_x_to_y"
    result = stub[0].Classify(with_x(request, 2.0), timeout=10)
    (classification,) = result.result.classifications
    (cls,) = classification.classes
    assert cls.score == 3.0 and cls.label == ""
    assert_spec(result.model_spec, "default", "classify_x_to_y")


def test_regress(stub):
    request = regression_pb2.RegressionRequest()
    request.model_spec.name, request.model_spec.signature_name = "default", "regress_x_to_y"
    result = stub[0].Regress(with_x(request, 2.0, 80.0), timeout=10)
    assert [r.value for r in result.result.regressions] == [3.0, 42.0]
    assert_spec(result.model_spec, "default", "regress_x_to_y")


def test_multi_inference(stub):
    request = inference_pb2.MultiInferenceRequest()
    for signature, method in (("regress_x_to_y", REGRESS), ("classify_x_to_y", CLASSIFY)):
        task = request.tasks.add(method_name=method)
        task.model_spec.name, task.model_spec.signature_name = "default", signature
    result = stub[0].MultiInference(with_x(request, 2.0), timeout=10)
    regression, classification = result.results
    assert regression.regression_result.regressions[0].value == 3.0
    assert classification.classification_result.classifications[0].classes[0].score == 3.0
    assert_spec(regression.model_spec, "default", "regress_x_to_y")
    assert_spec(classification.model_spec, "default", "classify_x_to_y")


def multi(*tasks: tuple[str, str, str]) -> inference_pb2.MultiInferenceRequest:
    request = inference_pb2.MultiInferenceRequest()
    for name, signature, method in tasks:
        task = request.tasks.add(method_name=method)
        task.model_spec.name, task.model_spec.signature_name = name, signature
    return with_x(request, 1.0)


@pytest.mark.parametrize(
    "request_, code, message",
    [
        pytest.param(
            multi(("default", "regress_x_to_y", REGRESS), ("other", "classify_x_to_y", CLASSIFY)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "All ModelSpecs in a MultiInferenceRequest must access the same model name.",
            id="two models",
        ),
        pytest.param(
            multi(("default", "regress_x_to_y", REGRESS), ("default", "regress_x_to_y", REGRESS)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "Duplicate evaluation of signature: regress_x_to_y",
            id="duplicate",
        ),
        pytest.param(
            multi(("default", "nope", REGRESS)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "Requested signature not found in model graph: nope",
            id="unknown signature",
        ),
        pytest.param(
            multi(("default", "serving_default", "tensorflow/serving/predict")),
            grpc.StatusCode.UNIMPLEMENTED,
            "Unsupported signature method_name: tensorflow/serving/predict",
            id="predict task",
        ),
        pytest.param(
            multi(("", "regress_x_to_y", REGRESS)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "ModelSpec has no name specified.",  # ServerCore's servable lookup, first.
            id="empty model name",
        ),
    ],
)
def test_multi_inference_errors(stub, request_, code, message):
    with pytest.raises(grpc.RpcError) as error:
        stub[0].MultiInference(request_, timeout=10)
    assert error.value.code() == code
    assert message in error.value.details()


def test_classify_and_regress_errors(stub):
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = "regress_x_to_y"
    with pytest.raises(grpc.RpcError) as error:
        stub[0].Regress(request, timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == "Input is empty."
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "default"
    request.model_spec.version_label = "stable"
    with pytest.raises(grpc.RpcError) as error:
        stub[0].Classify(with_x(request, 1.0), timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == "Unrecognized servable version label: stable"


def test_get_model_status(stub):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "default"
    result = model_service_pb2_grpc.ModelServiceStub(stub[1]).GetModelStatus(request, timeout=10)
    (status,) = result.model_version_status
    assert status.version == 123 and status.status.error_code == 0


def test_get_model_metadata(stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "default"
    request.metadata_field.append("signature_def")
    result = stub[0].GetModelMetadata(request, timeout=10)
    assert result.model_spec.name == "default" and result.model_spec.version.value == 123
    assert list(result.metadata) == ["signature_def"]
