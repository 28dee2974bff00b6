"""TensorFlow Serving's model config (--model_config_file), read and checked as ServerCore does.

The file is a ModelServerConfig in protobuf text format, the message of
tensorflow-serving-api; the checks and their messages are those of
model_servers/server_core.cc (ValidateModelConfigList, GetPlatform,
UpdateModelVersionLabelMap), so that a file this server refuses is one
TensorFlow Serving refuses, with the same words.
"""

import os

import grpc
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving.status import ServingError, invalid

PLATFORM = "tensorflow"
# Where TensorFlow Serving's Docker image and this project's deploy/ mount the
# models; serving/models.config's base paths start with it.
CONTAINER_MODEL_PATH = "/models"
ModelServerConfig = model_server_config_pb2.ModelServerConfig


def single_model(name: str, base_path: str) -> ModelServerConfig:
    """The config that --model_name and --model_base_path stand for (BuildSingleModelConfig)."""
    config = ModelServerConfig()
    config.model_config_list.config.add(name=name, base_path=base_path, model_platform=PLATFORM)
    return config


def rebase(config: ModelServerConfig, root: str) -> ModelServerConfig:
    """A copy whose base paths under /models are under `root` instead (a path or a URI).

    The files in serving/ name the container's paths; the binary and the local
    server read the host's MODEL_PATH, a cluster may read gs://bucket/models.
    """
    config = ModelServerConfig.FromString(config.SerializeToString())
    prefix = CONTAINER_MODEL_PATH + "/"
    for entry in config.model_config_list.config:
        if entry.base_path.startswith(prefix):
            entry.base_path = root.rstrip("/") + "/" + entry.base_path.removeprefix(prefix)
    return config


def write(config: ModelServerConfig, path: str, header: str = "") -> None:
    """Writes the config's text format, atomically (replace_atomically)."""
    replace_atomically(path, (header + text_format.MessageToString(config)).encode())


def replace_atomically(path: str, data: bytes) -> None:
    """Writes `data` to a temporary file renamed into place: a poller never reads half a file."""
    temporary = f"{path}.tmp{os.getpid()}"
    with open(temporary, "wb") as f:
        f.write(data)
    os.replace(temporary, path)


def read(path: str) -> ModelServerConfig:
    return read_text_proto(path, ModelServerConfig())


def read_text_proto(path: str, message):
    """ParseProtoTextFile: `message` filled from a text-format file, or its errors.

    The parser's complaint follows TensorFlow Serving's message, with the
    words protobuf's C++ parser logs there ("Error parsing text-format ...").
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ServingError(grpc.StatusCode.NOT_FOUND, f"{path}; {e.strerror}") from e
    try:
        return text_format.Parse(text, message)
    except (text_format.ParseError, UnicodeDecodeError) as e:
        raise invalid(
            f"Invalid protobuf file: '{path}' (Error parsing text-format "
            f"{message.DESCRIPTOR.full_name}: {e})"
        ) from e


def validate(config: ModelServerConfig, old: ModelServerConfig | None = None) -> None:
    """ServerCore::ReloadConfig's checks of a new config, before anything changes."""
    kind = config.WhichOneof("config")
    if kind == "custom_model_config":
        raise invalid("Missing custom_model_config_loader in ServerCore Options")
    if kind is None:
        return  # Nothing to load: TensorFlow Serving takes no action.
    names = set()
    for model in config.model_config_list.config:
        if model.name in names:
            raise invalid(f"Illegal to list model {model.name} multiple times in config list")
        names.add(model.name)
    for model in config.model_config_list.config:
        if _is_relative(model.base_path):
            raise invalid(
                f"Expected model {model.name} to have an absolute path or URI; got "
                f"base_path()={model.base_path}"
            )
    for model in config.model_config_list.config:
        platform = _platform(model)
        if platform != PLATFORM:
            raise invalid(f"Model {model.name} requests unsupported platform {platform}")
    if old is not None:
        before = {m.name: _platform(m) for m in old.model_config_list.config}
        for model in config.model_config_list.config:
            if model.name in before and before[model.name] != _platform(model):
                raise invalid(
                    f"Illegal to change a model's platform. For model {model.name} platform "
                    f"was {before[model.name]} and new platform requested is {_platform(model)}"
                )


def _platform(model) -> str:
    if model.model_type:  # Deprecated, but TensorFlow Serving still reads it.
        if model.model_platform:
            raise invalid(
                "Illegal setting both ModelServerConfig::model_type (deprecated) and "
                f"ModelServerConfig::model_platform, model name is {model.name}"
            )
        if model.model_type != model_server_config_pb2.TENSORFLOW:
            raise invalid(f"ModelServerConfig::model_type choice {model.model_type} not supported.")
        return PLATFORM
    if not model.model_platform:
        raise invalid(
            "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
            f"ModelServerConfig::model_platform, model name is {model.name}"
        )
    return model.model_platform


def _is_relative(path: str) -> bool:
    """UriIsRelativePath: neither a URI (scheme://) nor an absolute path."""
    return "://" not in path and not path.startswith("/")
