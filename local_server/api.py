"""TensorFlow Serving's inference and model API on protos, independent of the transport.

gRPC calls these with the request protos as they arrive; REST builds the same
protos (or, for Predict, numpy arrays) from its JSON. The models and their
labels come from a ModelServerConfig (one model for --model_name and
--model_base_path, or --model_config_file), applied as ServerCore::ReloadConfig
applies it. Which version answers a ModelSpec, and the errors for one that does
not exist, are decided here once.
"""

import threading
import time

import grpc
from absl import logging
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)

from local_server import inference
from local_server.batching import BatchScheduler
from local_server.errors import servable_not_found
from local_server.metrics import Metrics
from local_server.servable import Servable
from local_server.versions import State, VersionManager
from serving import model_config
from serving.status import ServingError, invalid


class ModelServer:
    """The API of the configured models' versions."""

    def __init__(
        self,
        config: model_config.ModelServerConfig,
        *,
        allow_version_labels_for_unavailable_models: bool = False,
        max_batch_size: int = 0,
        batching: BatchScheduler | None = None,
        metrics: Metrics | None = None,
    ):
        self.max_batch_size = max_batch_size
        self.metrics = metrics or Metrics()
        self._allow_unavailable_labels = allow_version_labels_for_unavailable_models
        self._batching = batching
        self._config = model_config.ModelServerConfig()
        self._models: dict[str, VersionManager] = {}
        self._labels: dict[str, dict[str, int]] = {}
        self._reload_lock = threading.Lock()
        self.reload_config(config, wait=False)

    # ---- Models, versions and labels -------------------------------------------

    @property
    def config(self) -> model_config.ModelServerConfig:
        return self._config

    def managers(self) -> list[VersionManager]:
        return list(self._models.values())

    def poll(self) -> None:
        """One look at every model's base path (the file-system source's poll)."""
        for manager in self.managers():
            manager.poll()

    def reload_config(self, config: model_config.ModelServerConfig, wait: bool = True) -> None:
        """Applies a new config, or raises TensorFlow Serving's error and changes nothing.

        Models are added and removed, version policies and labels replaced. As in
        TensorFlow Serving, labels are checked against the versions AVAILABLE
        now, before the new config loads anything; wait=True then loads the
        versions it wants before returning, as ReloadConfig waits for them.
        """
        with self._reload_lock:
            model_config.validate(config, self._config if self._models else None)
            models = {}
            for entry in config.model_config_list.config:
                manager = self._models.get(entry.name)
                if manager is None or manager.base_path != entry.base_path:
                    manager = VersionManager(
                        entry.name,
                        entry.base_path,
                        servable_factory=self._new_servable,
                        on_load=self.metrics.record_load,
                    )
                models[entry.name] = manager
            labels = self._check_labels(config, models)
            removed = [m for name, m in self._models.items() if models.get(name) is not m]
            for entry in config.model_config_list.config:
                models[entry.name].policy = entry.model_version_policy
            self._models, self._labels, self._config = models, labels, config
            for manager in removed:
                logging.info("Model %s left the config; unloading it", manager.model_name)
                manager.unload_all()
            if wait:
                self.poll()

    def handle_reload_config(
        self, request: model_management_pb2.ReloadConfigRequest
    ) -> model_management_pb2.ReloadConfigResponse:
        """ModelService.HandleReloadConfigRequest: only a ModelConfigList is accepted."""
        if request.config.WhichOneof("config") != "model_config_list":
            raise invalid(
                "ServerModelConfig type not supported by HandleReloadConfigRequest. Only "
                "ModelConfigList is currently supported"
            )
        self.reload_config(request.config)
        response = model_management_pb2.ReloadConfigResponse()
        response.status.SetInParent()  # error_code OK
        return response

    def _check_labels(self, config, models: dict[str, VersionManager]) -> dict[str, dict[str, int]]:
        """UpdateModelVersionLabelMap: a label moves only to an AVAILABLE version."""
        labels: dict[str, dict[str, int]] = {}
        for entry in config.model_config_list.config:
            for label, version in entry.version_labels.items():
                allow = False
                if self._allow_unavailable_labels:
                    existing = self._labels.get(entry.name, {}).get(label)
                    allow = existing is None or existing == version
                if not allow and models[entry.name].state(version) != State.AVAILABLE:
                    raise ServingError(
                        grpc.StatusCode.FAILED_PRECONDITION,
                        f"Request to assign label to version {version} of model {entry.name}, "
                        "which is not currently available for inference",
                    )
                labels.setdefault(entry.name, {})[label] = version
        return labels

    def _new_servable(self, path: str, version: int) -> Servable:
        return Servable(path, version, batching=self._batching)

    def servable(self, model_spec: model_pb2.ModelSpec) -> Servable:
        """The loaded version that `model_spec` asks for, or TensorFlow Serving's error."""
        name = model_spec.name
        if not name:
            raise invalid("ModelSpec has no name specified.")
        version = model_spec.version.value if model_spec.HasField("version") else None
        if model_spec.WhichOneof("version_choice") == "version_label":
            version = self._labels.get(name, {}).get(model_spec.version_label)
            if version is None:
                raise invalid(f"Unrecognized servable version label: {model_spec.version_label}")
        manager = self._models.get(name)
        if manager is None:
            spec = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
            raise servable_not_found(spec)
        return manager.servable(version)

    # ---- Inference ---------------------------------------------------------------

    def _run(self, api: str, name: str, call, *args):
        start = time.perf_counter()
        result = call(*args)
        self.metrics.record_runtime(name, api, time.perf_counter() - start)
        return result

    def predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        servable = self.servable(request.model_spec)
        return self._run(
            "Predict",
            request.model_spec.name,
            inference.predict,
            servable,
            request,
            self.max_batch_size,
        )

    def predict_arrays(self, servable: Servable, request: predict_pb2.PredictRequest, inputs):
        """Predict on numpy inputs, for REST, which decodes JSON straight to arrays."""
        return self._run(
            "Predict",
            request.model_spec.name,
            inference.predict_arrays,
            servable,
            request,
            inputs,
            self.max_batch_size,
        )

    def classify(
        self, request: classification_pb2.ClassificationRequest
    ) -> classification_pb2.ClassificationResponse:
        servable = self.servable(request.model_spec)
        return self._run("Classify", request.model_spec.name, inference.classify, servable, request)

    def regress(
        self, request: regression_pb2.RegressionRequest
    ) -> regression_pb2.RegressionResponse:
        servable = self.servable(request.model_spec)
        return self._run("Regress", request.model_spec.name, inference.regress, servable, request)

    def multi_inference(
        self, request: inference_pb2.MultiInferenceRequest
    ) -> inference_pb2.MultiInferenceResponse:
        spec = request.tasks[0].model_spec if request.tasks else model_pb2.ModelSpec()
        response = inference.multi_inference(self.servable(spec), request)
        self.metrics.record_examples(spec.name, _example_count(request.input))
        return response

    # ---- Model API ---------------------------------------------------------------

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
        """GetModelStatusImpl: a version if one is given, else all; a label is not resolved."""
        spec = request.model_spec
        manager = self._models.get(spec.name)
        if manager is None:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {spec.name}"
            )
        version = spec.version.value if spec.HasField("version") else None
        response = get_model_status_pb2.GetModelStatusResponse()
        for number, status in sorted(manager.status(version).items(), reverse=True):
            entry = response.model_version_status.add(version=number, state=status.state)
            entry.status.SetInParent()  # Present even when OK, as TensorFlow Serving's.
            entry.status.error_code = status.error_code
            entry.status.error_message = status.error_message
        return response


def _example_count(model_input) -> int:
    kind = model_input.WhichOneof("kind")
    return len(getattr(model_input, kind).examples) if kind else 0
