"""serving.model_config against TensorFlow Serving's server_core_test.cc and its test configs.

The config texts are TensorFlow Serving's own (servables/tensorflow/testdata/
good_model_config.txt and bad_model_config.txt, with the paths filled in), and
each refused config gets the status code and message ServerCore gives it.
"""

import grpc
import pytest
from google.protobuf import text_format

from serving import model_config
from serving.status import ServingError

# good_model_config.txt, with ${TEST_HALF_PLUS_TWO_DIR} and ${TEST_HALF_PLUS_THREE_DIR} filled.
GOOD = """
model_config_list: {
  config: {
    name: "half_plus_two",
    base_path: "/models/half_plus_two",
    model_platform: "tensorflow"
  },
  config: {
    name: "half_plus_three",
    base_path: "/models/half_plus_three",
    model_platform: "tensorflow"
  }
}
"""
BAD = "improperly formatted file"  # bad_model_config.txt


def write(tmp_path, text: str) -> str:
    path = tmp_path / "models.config"
    path.write_text(text)
    return str(path)


def test_good_model_config_is_read(tmp_path):
    config = model_config.read(write(tmp_path, GOOD))
    names = [m.name for m in config.model_config_list.config]
    assert names == ["half_plus_two", "half_plus_three"]
    model_config.validate(config)


def test_bad_model_config_is_refused_with_tensorflow_servings_words(tmp_path):
    """testBadModelConfig: the message names the text format and the file."""
    path = write(tmp_path, BAD)
    with pytest.raises(ServingError) as error:
        model_config.read(path)
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert str(error.value).startswith(f"Invalid protobuf file: '{path}'")
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig" in str(error.value)


def test_a_missing_file_is_not_found(tmp_path):
    with pytest.raises(ServingError) as error:
        model_config.read(str(tmp_path / "nope.config"))
    assert error.value.code == grpc.StatusCode.NOT_FOUND


def config(*entries: str) -> model_config.ModelServerConfig:
    text = "model_config_list {" + "".join(f" config {{ {e} }}" for e in entries) + " }"
    return text_format.Parse(text, model_config.ModelServerConfig())


@pytest.mark.parametrize(
    "entries, message",
    [
        pytest.param(
            ['name: "m" base_path: "/a" model_platform: "tensorflow"'] * 2,
            "Illegal to list model m multiple times in config list",
            id="DuplicateModelNameInConfig",
        ),
        pytest.param(
            ['name: "m" base_path: "relative/m" model_platform: "tensorflow"'],
            "Expected model m to have an absolute path or URI; got base_path()=relative/m",
            id="RelativePathFails",
        ),
        pytest.param(
            ['name: "m" base_path: "/a" model_platform: "tensorflow" model_type: TENSORFLOW'],
            "Illegal setting both ModelServerConfig::model_type (deprecated) and "
            "ModelServerConfig::model_platform, model name is m",
            id="IllegalConfigModelTypeAndPlatformSet",
        ),
        pytest.param(
            ['name: "m" base_path: "/a"'],
            "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
            "ModelServerConfig::model_platform, model name is m",
            id="no platform",
        ),
        pytest.param(
            ['name: "m" base_path: "/a" model_platform: "tflite"'],
            "Model m requests unsupported platform tflite",
            id="UnknownModelPlatform",
        ),
    ],
)
def test_invalid_configs(entries, message):
    with pytest.raises(ServingError) as error:
        model_config.validate(config(*entries))
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert str(error.value) == message


def test_deprecated_model_type_config_is_the_tensorflow_platform():
    """DeprecatedModelTypeConfig."""
    model_config.validate(config('name: "m" base_path: "/a" model_type: TENSORFLOW'))


def test_a_uri_base_path_is_absolute():
    model_config.validate(
        config('name: "m" base_path: "gs://bucket/m" model_platform: "tensorflow"')
    )


def test_custom_model_config_is_refused():
    custom = model_config.ModelServerConfig()
    custom.custom_model_config.type_url = "type.googleapis.com/x"
    with pytest.raises(ServingError, match="Missing custom_model_config_loader"):
        model_config.validate(custom)


def test_single_model_is_what_the_model_name_and_base_path_flags_mean():
    single = model_config.single_model("mnist", "/models/mnist")
    (entry,) = single.model_config_list.config
    assert (entry.name, entry.base_path, entry.model_platform) == (
        "mnist",
        "/models/mnist",
        "tensorflow",
    )
    assert entry.model_version_policy.WhichOneof("policy_choice") is None  # latest 1
