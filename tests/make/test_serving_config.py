"""The production config files of serving/ with `make`: the command lines of every server
kind, and a canary promoted under load with zero failed requests on the local server
(docs/production.md's commands themselves run in tests/docs).
"""

import shlex
import shutil
import threading

import numpy as np
import pytest
import requests
from conftest import ROOT, answering_version, copy_version, run
from test_make import dry_run, make, server_vars, walkthrough_args

import saved_model_main
from clients import mnist_client, serving_client
from serving import model_config
from tools import model_config_files

CONFIG = ROOT / "serving" / "models.config"


@pytest.mark.parametrize(
    "kind, program", [("binary", "tensorflow_model_server"), ("local", "-m local_server")]
)
def test_config_files_reach_the_binary_and_the_local_server(tmp_path, kind, program):
    variables = server_vars(tmp_path, server=kind)
    lines = dry_run("serve", f"MODEL_CONFIG={CONFIG}", "BATCHING=1", "MONITORING=1", *variables)
    (command,) = [line for line in lines if line.startswith("nohup") and program in line]
    args = shlex.split(command.split(" > ")[0])
    serving = ROOT / "serving"
    assert args[args.index(f"--rest_api_port={variables[3].split('=')[1]}") + 1 :] == [
        "--xla_cpu_compilation_enabled=true",
        f"--model_config_file={tmp_path}/run/models.config",
        "--model_config_file_poll_wait_seconds=10",
        "--allow_version_labels_for_unavailable_models=true",
        "--enable_batching=true",
        f"--batching_parameters_file={serving}/batching.config",
        f"--monitoring_config_file={serving}/monitoring.config",
    ]
    # The host's copy of the config is written before the server starts.
    host_copy = f"-m tools.model_config_files host_copy --model_config_file={CONFIG}"
    assert any(host_copy in line for line in lines)


def test_config_files_reach_the_docker_container_read_only(tmp_path):
    variables = server_vars(tmp_path, server="docker")
    lines = dry_run("serve", f"MODEL_CONFIG={CONFIG}", "BATCHING=1", "MONITORING=1", *variables)
    (command,) = [line for line in lines if line.startswith("docker run")]
    args = shlex.split(command)
    mounts = [args[i + 1] for i, a in enumerate(args) if a == "--mount"]
    assert mounts == [
        f"type=bind,source={tmp_path}/models,target=/models,readonly",
        f"type=bind,source={ROOT}/serving,target=/model_config,readonly",
        f"type=bind,source={ROOT}/serving,target=/serving,readonly",
    ]
    assert args[args.index("--xla_cpu_compilation_enabled=true") + 1 :] == [
        "--model_config_file=/model_config/models.config",
        "--model_config_file_poll_wait_seconds=10",
        "--allow_version_labels_for_unavailable_models=true",
        "--enable_batching=true",
        "--batching_parameters_file=/serving/batching.config",
        "--monitoring_config_file=/serving/monitoring.config",
    ]


def test_request_passes_the_label():
    (command,) = [c for c in dry_run("request", "LABEL=canary") if "model_server_request" in c]
    assert "--model_version_label=canary" in command


def test_reload_needs_a_model_config():
    result = run(["make", "--no-print-directory", "reload"])
    assert result.returncode != 0 and "make reload needs MODEL_CONFIG" in result.stderr


def test_shipped_config_files_parse_and_the_host_copy_points_at_model_path(tmp_path):
    config = model_config.read(str(CONFIG))
    model_config.validate(config)
    models = {m.name: m for m in config.model_config_list.config}
    assert set(models) == {"mnist_flax", "mnist_pure_jax"}
    assert dict(models["mnist_flax"].version_labels) == {"stable": 1, "canary": 2}
    assert models["mnist_pure_jax"].model_version_policy.WhichOneof("policy_choice") == "latest"
    host = model_config.rebase(config, str(tmp_path))
    assert [m.base_path for m in host.model_config_list.config] == [
        f"{tmp_path}/mnist_flax",
        f"{tmp_path}/mnist_pure_jax",
    ]
    from local_server.batching import BatchingParameters, options_from_parameters
    from local_server.protos import monitoring_config_pb2

    batching = model_config.read_text_proto(
        str(ROOT / "serving" / "batching.config"), BatchingParameters()
    )
    # A warmup request larger than max_batch_size would fail every load, and a
    # batch size warmup did not compile would compile while requests wait.
    warmup = saved_model_main.ExportOptions().warmup_batch_sizes
    options = options_from_parameters(batching)
    assert options.max_batch_size >= max(warmup)
    assert options.allowed_batch_sizes == warmup
    monitoring = model_config.read_text_proto(
        str(ROOT / "serving" / "monitoring.config"), monitoring_config_pb2.MonitoringConfig()
    )
    assert monitoring.prometheus_config.enable


@pytest.fixture(scope="module")
def exports(tmp_path_factory, shared_export):
    """mnist_flax versions 1 and 2, mnist_pure_jax version 1: what the README exports."""
    models = tmp_path_factory.mktemp("exports")
    for model, version in (("mnist_flax", 1), ("mnist_flax", 2), ("mnist_pure_jax", 1)):
        copy_version(shared_export(model=model, num_epochs=0), models / model, version)
    return models


def reload(*variables: str) -> None:
    """`make reload`'s command, run in this process: its ReloadConfig protos import
    TensorFlow, which this process has loaded already. SystemExit with the message if the
    server refuses."""
    (command,) = [line for line in dry_run("reload", *variables) if "model_config_files" in line]
    args = walkthrough_args(command)
    model_config_files.main(args[args.index("tools.model_config_files") + 1 :])


class Load:
    """Requests to one label from a thread until stopped; counts answers and failures."""

    def __init__(self, address: str, label: str):
        self.client = serving_client.GrpcClient(address, "mnist_flax", 10, label)
        self.images = np.zeros((1, 28, 28, 1), np.float32)
        self.input_name = mnist_client.check_model(self.client, len(self.images))
        self.ok, self.failures, self._stop = 0, [], threading.Event()
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.client.predict({self.input_name: self.images})
                self.ok += 1
            except serving_client.RequestError as e:
                self.failures.append(str(e))

    def stop(self):
        self._stop.set()
        self._thread.join(30)


@pytest.mark.slow
def test_a_canary_promoted_under_load_fails_no_request(tmp_path, exports, capsys):
    """docs/production.md's workflows run as written in tests/docs; here what a page cannot
    show: stable moves to the canary's version while requests flow, with none failed."""
    config = tmp_path / "models.config"
    shutil.copy(CONFIG, config)
    variables = server_vars(tmp_path, server="local")[1:]  # Not MODEL_PATH: the exports'.
    variables += [f"MODEL_PATH={exports}", f"MODEL_CONFIG={config}", "BATCHING=1", "MONITORING=1"]
    grpc_port, rest_port = variables[1].split("=")[1], variables[2].split("=")[1]
    output = make("serve", *variables)
    assert f"Serving the models of {config} with the local server" in output
    try:
        # The canary label answers from version 2, stable from version 1.
        stable = serving_client.GrpcClient(f"localhost:{grpc_port}", "mnist_flax", 10, "stable")
        canary = serving_client.GrpcClient(f"localhost:{grpc_port}", "mnist_flax", 10, "canary")
        images = np.zeros((2, 28, 28, 1), np.float32)
        name = mnist_client.check_model(stable, len(images))
        assert (
            answering_version(stable, name, images),
            answering_version(canary, name, images),
        ) == (1, 2)
        # Promote under load: move stable to version 2 while requests flow.
        load = Load(f"localhost:{grpc_port}", "stable")
        try:
            config.write_text(
                config.read_text().replace('key: "stable" value: 1', 'key: "stable" value: 2')
            )
            reload(*variables)
            assert "labels mnist_flax: canary=2, stable=2" in capsys.readouterr().out
            assert answering_version(stable, name, images) == 2
        finally:
            load.stop()
        assert load.failures == [] and load.ok > 0
        # A label moved to a version that is not loaded is refused with TensorFlow Serving's words.
        config.write_text(
            config.read_text().replace('key: "canary" value: 2', 'key: "canary" value: 3')
        )
        with pytest.raises(SystemExit, match="not currently available for inference") as refused:
            reload(*variables)
        assert "A label moves only to a loaded version" in str(refused.value)
        assert answering_version(canary, name, images) == 2  # The running config stays,
        polled = model_config.read(str(tmp_path / "run" / "models.config"))  # and the copy
        assert polled.model_config_list.config[0].version_labels["canary"] == 2  # it polls.
        # Metrics, with TensorFlow Serving's names (batching was on for all of the above).
        page = requests.get(
            f"http://localhost:{rest_port}/monitoring/prometheus/metrics", timeout=10
        ).text
        assert ':tensorflow:serving:request_count{model_name="mnist_flax",status="OK"}' in page
        assert ":tensorflow:serving:batching_session:wrapped_run_count{} " in page
    finally:
        make("stop", *variables)
