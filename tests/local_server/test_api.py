"""local_server.api: models, version policies and labels, as server_core_test.cc tests them.

In process, on rebuilds of TensorFlow Serving's half_plus_two model with two
versions (123 and 124), like its saved_model_half_plus_two_2_versions.
"""

import grpc
import pytest
from google.protobuf import text_format
from half_plus_two import write_tf1
from tensorflow_serving.apis import get_model_status_pb2, model_management_pb2, model_pb2

from local_server.api import ModelServer
from serving import model_config
from serving.status import ServingError

MODEL = "half_plus_two"
OLD, NEW, BOGUS = 123, 124, 999


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / MODEL
    for version in (OLD, NEW):
        write_tf1(path / str(version))
    return str(path)


def config(base: str, policy: str = "", labels: dict | None = None, name: str = MODEL):
    text = f'name: "{name}" base_path: "{base}" model_platform: "tensorflow" '
    text += f"model_version_policy {{ {policy} }} " if policy else ""
    text += "".join(
        f'version_labels {{ key: "{k}" value: {v} }} ' for k, v in (labels or {}).items()
    )
    return text_format.Parse(
        f"model_config_list {{ config {{ {text} }} }}", model_config.ModelServerConfig()
    )


def spec(name=MODEL, version=None, label=None) -> model_pb2.ModelSpec:
    model_spec = model_pb2.ModelSpec(name=name)
    if version is not None:
        model_spec.version.value = version
    if label is not None:
        model_spec.version_label = label
    return model_spec


def served(server: ModelServer, **kwargs) -> int:
    return server.servable(spec(**kwargs)).version


def states(server: ModelServer, name=MODEL) -> dict[int, str]:
    request = get_model_status_pb2.GetModelStatusRequest(model_spec=spec(name))
    state = get_model_status_pb2.ModelVersionStatus.State
    return {s.version: state.Name(s.state) for s in server.status(request).model_version_status}


def started(cfg, **kwargs) -> ModelServer:
    server = ModelServer(cfg, **kwargs)
    server.poll()
    return server


@pytest.mark.parametrize(
    "policy, available",
    [
        pytest.param("", [NEW], id="default: latest 1"),
        pytest.param("latest { num_versions: 2 }", [OLD, NEW], id="latest 2"),
        pytest.param("all {}", [OLD, NEW], id="all"),
        pytest.param(f"specific {{ versions: {OLD} }}", [OLD], id="specific"),
        pytest.param(f"specific {{ versions: {BOGUS} }}", [], id="specific, not on disk"),
    ],
)
def test_version_policies(base, policy, available):
    server = started(config(base, policy))
    assert sorted(v for v, s in states_or_empty(server).items() if s == "AVAILABLE") == available
    if available:
        assert served(server) == max(available)  # No version asked: the latest loaded.


def states_or_empty(server) -> dict[int, str]:
    try:
        return states(server)
    except ServingError:
        return {}


def test_model_spec_multiple_versions_available(base):
    """ModelSpecMultipleVersionsAvailable: latest, a version, labels, a nonexistent label."""
    server = started(config(base, "all {}"))
    assert served(server) == NEW
    assert served(server, version=OLD) == OLD
    server.reload_config(config(base, "all {}", {"A": OLD, "B": NEW}))
    assert served(server, label="A") == OLD
    assert served(server, label="B") == NEW
    with pytest.raises(ServingError, match="Unrecognized servable version label") as error:
        served(server, label="nonexistent label")
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_assign_label_to_unavailable_version(base):
    server = started(config(base, "all {}"))
    with pytest.raises(ServingError) as error:
        server.reload_config(config(base, "all {}", {"nice try": BOGUS}))
    assert error.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert str(error.value) == (
        f"Request to assign label to version {BOGUS} of model {MODEL}, which is not currently "
        "available for inference"
    )
    assert served(server) == NEW  # The running config stays.


def test_assign_label_to_unavailable_version_allowed(base):
    server = started(config(base, "all {}"), allow_version_labels_for_unavailable_models=True)
    server.reload_config(config(base, "all {}", {"nice try": BOGUS}))
    with pytest.raises(ServingError, match=rf"Specific\({MODEL}, {BOGUS}\)"):
        served(server, label="nice try")


def test_labels_at_start_need_the_allow_flag(base):
    """Labels are checked before anything loads, so a config with labels cannot start without it."""
    with pytest.raises(ServingError, match="not currently available for inference"):
        ModelServer(config(base, "all {}", {"stable": OLD}))
    server = started(
        config(base, "all {}", {"stable": OLD}), allow_version_labels_for_unavailable_models=True
    )
    assert served(server, label="stable") == OLD


def test_assign_existing_label_to_unavailable_version_disallowed(base):
    server = started(config(base, "all {}"), allow_version_labels_for_unavailable_models=True)
    server.reload_config(config(base, "all {}", {"A": OLD, "B": NEW}))
    with pytest.raises(ServingError, match="not currently available for inference"):
        server.reload_config(config(base, "all {}", {"A": BOGUS, "B": NEW}))
    assert served(server, label="A") == OLD  # Unchanged.


def test_canary_promotion_moves_a_label_between_available_versions(base):
    server = started(config(base, f"specific {{ versions: {OLD} }}", {}))
    server.reload_config(config(base, f"specific {{ versions: {OLD} }}", {"stable": OLD}))
    # Step 1: load the new version, labels unchanged (moving a label needs it AVAILABLE).
    server.reload_config(
        config(base, f"specific {{ versions: {OLD} versions: {NEW} }}", {"stable": OLD})
    )
    assert states(server)[NEW] == "AVAILABLE"
    # Step 2: canary on it; step 3: promote.
    both = f"specific {{ versions: {OLD} versions: {NEW} }}"
    server.reload_config(config(base, both, {"stable": OLD, "canary": NEW}))
    assert (served(server, label="stable"), served(server, label="canary")) == (OLD, NEW)
    server.reload_config(config(base, both, {"stable": NEW, "canary": NEW}))
    assert served(server, label="stable") == NEW


def test_reload_config_unloads_models_and_loads_them_again(base):
    """ReloadConfigUnloadsModels, ReloadConfigHandlesLoadingAPreviouslyUnloadedModel."""
    server = started(config(base))
    other = config(base, name="other")
    server.reload_config(other)
    assert served(server, name="other") == NEW
    with pytest.raises(
        ServingError, match=r"Servable not found for request: Latest\(half_plus_two\)"
    ):
        served(server)
    server.reload_config(config(base))
    assert served(server) == NEW


def test_reload_config_change_model_base_path(base, tmp_path):
    write_tf1(tmp_path / "elsewhere" / "7")
    server = started(config(base))
    server.reload_config(config(str(tmp_path / "elsewhere")))
    assert served(server) == 7


def test_illegal_to_change_model_platform(base):
    server = started(config(base))
    changed = config(base)
    changed.model_config_list.config[0].model_platform = "other"
    with pytest.raises(ServingError, match=f"Model {MODEL} requests unsupported platform other"):
        server.reload_config(changed)
    assert served(server) == NEW


def test_handle_reload_config_request_takes_only_a_model_config_list(base):
    server = started(config(base))
    request = model_management_pb2.ReloadConfigRequest()
    request.config.custom_model_config.type_url = "x"
    with pytest.raises(ServingError, match="Only ModelConfigList is currently supported"):
        server.handle_reload_config(request)
    request.config.CopyFrom(config(base, name="renamed"))
    assert server.handle_reload_config(request).status.error_code == 0
    assert served(server, name="renamed") == NEW


def test_model_spec_without_a_name_is_invalid(base):
    server = started(config(base))
    with pytest.raises(ServingError, match=r"ModelSpec has no name specified\.") as error:
        server.servable(model_pb2.ModelSpec())
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_status_ignores_a_label_as_tensorflow_serving_does(base):
    server = started(config(base, "all {}"))
    request = get_model_status_pb2.GetModelStatusRequest(model_spec=spec(label="whatever"))
    assert [s.version for s in server.status(request).model_version_status] == [NEW, OLD]
