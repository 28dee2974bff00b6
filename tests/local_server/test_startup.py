"""local_server.startup: the options with the files they name, read and checked before the
server imports TensorFlow."""

import os
import sys

import pytest
from conftest import ROOT, run

from local_server import startup
from local_server.options import ServerOptions


def test_the_model_config_file_wins_over_the_single_model(tmp_path):
    config = tmp_path / "models.config"
    config.write_text(
        'model_config_list { config { name: "a" base_path: "/models/a" '
        'model_platform: "tensorflow" } }\n'
    )
    single = startup.read(ServerOptions(model_name="b", model_base_path="models/b"))
    (model,) = single.config.model_config_list.config
    assert (model.name, model.base_path) == ("b", os.path.abspath("models/b"))
    both = startup.read(
        ServerOptions(model_name="b", model_base_path="models/b", model_config_file=str(config))
    )
    assert [m.name for m in both.config.model_config_list.config] == ["a"]


def test_the_batching_and_monitoring_files_of_serving(tmp_path):
    served = startup.read(
        ServerOptions(
            model_base_path=str(tmp_path),
            enable_batching=True,
            batching_parameters_file=str(ROOT / "serving" / "batching.config"),
            monitoring_config_file=str(ROOT / "serving" / "monitoring.config"),
        )
    )
    assert served.batching.allowed_batch_sizes == (1, 8, 16, 32, 64, 128)
    assert served.metrics_path == "/monitoring/prometheus/metrics"
    assert served.credentials is None
    plain = startup.read(ServerOptions(model_base_path=str(tmp_path)))
    assert (plain.batching, plain.metrics_path) == (None, "")


@pytest.mark.parametrize(
    "options, message",
    [
        (
            {},
            "Both server_options.model_base_path and server_options.model_config_file are empty!",
        ),
        (
            {"model_base_path": ".", "batching_parameters_file": "serving/batching.config"},
            "server_options.batching_parameters_file is set without setting "
            "server_options.enable_batching to true.",
        ),
        ({"model_config_file": "missing.config"}, "missing.config; No such file or directory"),
        (
            {"model_base_path": ".", "monitoring_config_file": "missing.config"},
            "missing.config; No such file or directory",
        ),
        (
            {"model_base_path": ".", "ssl_config_file": "missing.config"},
            "missing.config; No such file or directory",
        ),
    ],
    ids=["no model", "batching file without batching", "model config", "monitoring", "ssl"],
)
def test_options_that_cannot_start_a_server(options, message):
    with pytest.raises(startup.StartupError) as error:
        startup.read(ServerOptions(**options))
    assert message in str(error.value)


def test_a_bad_file_stops_the_server_before_it_imports_tensorflow(tmp_path):
    bad = tmp_path / "models.config"
    bad.write_text("improperly formatted file")
    # The server's command line, then whether it had imported TensorFlow when it stopped.
    code = (
        "import runpy, sys\n"
        "try:\n"
        "    runpy.run_module('local_server', run_name='__main__')\n"
        "finally:\n"
        "    print('tensorflow imported:', 'tensorflow' in sys.modules)\n"
    )
    result = run([sys.executable, "-c", code, f"--model_config_file={bad}"])
    assert result.returncode == 1
    assert f"error: Invalid protobuf file: '{bad}'" in result.stderr
    assert "tensorflow imported: False" in result.stdout
