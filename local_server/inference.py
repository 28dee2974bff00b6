"""The inference calls on one loaded version, request proto in, response proto out.

The same for gRPC, REST (whose JSON becomes these protos' contents) and the
warmup replay; which version answers is the caller's business (api.ModelServer).
"""

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)

from local_server import tf_example
from local_server.servable import DEFAULT_SIGNATURE, Servable
from serving.status import first_line, invalid


def _fill_spec(spec: model_pb2.ModelSpec, name: str, version: int, signature_name: str) -> None:
    spec.name = name
    spec.version.value = version
    spec.signature_name = signature_name


def predict(
    servable: Servable, request: predict_pb2.PredictRequest, max_batch_size: int = 0
) -> predict_pb2.PredictResponse:
    try:
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
    except (TypeError, ValueError) as e:
        raise invalid(f"cannot read the input tensors: {first_line(e)}") from e
    outputs = predict_arrays(servable, request, inputs, max_batch_size)
    response = predict_pb2.PredictResponse()
    _fill_spec(
        response.model_spec,
        request.model_spec.name,
        servable.version,
        request.model_spec.signature_name or DEFAULT_SIGNATURE,
    )
    for name, array in outputs.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(array))
    return response


def predict_arrays(
    servable: Servable,
    request: predict_pb2.PredictRequest,
    inputs: dict[str, np.ndarray],
    max_batch_size: int = 0,
) -> dict[str, np.ndarray]:
    """Predict on numpy inputs (REST decodes JSON straight to arrays, not to protos)."""
    return servable.predict(
        request.model_spec.signature_name,
        inputs,
        tuple(request.output_filter),
        max_batch_size,
    )


def classify(
    servable: Servable, request: classification_pb2.ClassificationRequest
) -> classification_pb2.ClassificationResponse:
    response = classification_pb2.ClassificationResponse()
    return _answer(response, tf_example.classify(servable, request), servable, request)


def regress(
    servable: Servable, request: regression_pb2.RegressionRequest
) -> regression_pb2.RegressionResponse:
    response = regression_pb2.RegressionResponse()
    return _answer(response, tf_example.regress(servable, request), servable, request)


def _answer(response, result, servable: Servable, request):
    response.result.CopyFrom(result)
    spec = request.model_spec
    _fill_spec(
        response.model_spec, spec.name, servable.version, spec.signature_name or DEFAULT_SIGNATURE
    )
    return response


def multi_inference(
    servable: Servable, request: inference_pb2.MultiInferenceRequest
) -> inference_pb2.MultiInferenceResponse:
    response = inference_pb2.MultiInferenceResponse()
    for task, result in tf_example.multi_inference(servable, request):
        entry = response.results.add()
        _fill_spec(
            entry.model_spec, task.model_spec.name, servable.version, task.model_spec.signature_name
        )
        if isinstance(result, classification_pb2.ClassificationResult):
            entry.classification_result.CopyFrom(result)
        else:
            entry.regression_result.CopyFrom(result)
    return response
