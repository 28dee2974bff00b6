"""TensorFlow Serving's inference and model API on protos, independent of the transport.

gRPC calls these with the request protos as they arrive; REST builds the same
protos (or, for Predict, numpy arrays) from its JSON. Which version answers a
ModelSpec, and the errors for one that does not exist, are decided here once.
"""

import grpc
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)

from local_server import inference
from local_server.errors import ServingError, invalid
from local_server.servable import Servable
from local_server.versions import VersionManager


class ModelServer:
    """The API of one model's versions."""

    def __init__(self, manager: VersionManager, max_batch_size: int = 0):
        self.manager = manager
        self.max_batch_size = max_batch_size

    def servable(self, model_spec: model_pb2.ModelSpec) -> Servable:
        """The loaded version that `model_spec` asks for, or TensorFlow Serving's error."""
        if model_spec.WhichOneof("version_choice") == "version_label":
            # No labels are configured here, so none is recognized.
            raise invalid(f"Unrecognized servable version label: {model_spec.version_label}")
        version = model_spec.version.value if model_spec.HasField("version") else None
        if model_spec.name != self.manager.model_name:
            spec = (
                f"Specific({model_spec.name}, {version})"
                if version
                else f"Latest({model_spec.name})"
            )
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {spec}")
        return self.manager.servable(version)

    def predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        servable = self.servable(request.model_spec)
        return inference.predict(servable, request, self.max_batch_size)

    def classify(
        self, request: classification_pb2.ClassificationRequest
    ) -> classification_pb2.ClassificationResponse:
        return inference.classify(self.servable(request.model_spec), request)

    def regress(
        self, request: regression_pb2.RegressionRequest
    ) -> regression_pb2.RegressionResponse:
        return inference.regress(self.servable(request.model_spec), request)

    def multi_inference(
        self, request: inference_pb2.MultiInferenceRequest
    ) -> inference_pb2.MultiInferenceResponse:
        spec = request.tasks[0].model_spec if request.tasks else model_pb2.ModelSpec()
        return inference.multi_inference(self.servable(spec), request)

    def metadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        if not request.metadata_field:
            raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != "signature_def":
                raise invalid(f"Metadata field {field} is not supported")
        servable = self.servable(request.model_spec)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = servable.version
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, signature in servable.signature_defs.items():
            signature_map.signature_def[name].CopyFrom(signature)
        response.metadata["signature_def"].Pack(signature_map)
        return response

    def status(
        self, request: get_model_status_pb2.GetModelStatusRequest
    ) -> get_model_status_pb2.GetModelStatusResponse:
        spec = request.model_spec
        if spec.WhichOneof("version_choice") == "version_label":
            raise invalid(f"Unrecognized servable version label: {spec.version_label}")
        if spec.name != self.manager.model_name:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {spec.name}"
            )
        version = spec.version.value if spec.HasField("version") else None
        response = get_model_status_pb2.GetModelStatusResponse()
        for number, status in sorted(self.manager.status(version).items(), reverse=True):
            entry = response.model_version_status.add(version=number, state=status.state)
            entry.status.SetInParent()  # Present even when OK, as TensorFlow Serving's.
            entry.status.error_code = status.error_code
            entry.status.error_message = status.error_message
        return response
