"""The Makefile and env.sh: defaults, overrides, the walkthrough's commands, clean."""

import glob
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys

import pytest
from absl import flags
from conftest import ROOT, export_cli, export_model, free_port, module, run, script

import saved_model_main
from local_server.options import ServerOptions
from serving import versions


def make(*args: str, env: dict | None = None) -> str:
    result = run(["make", "--no-print-directory", *args], env=env or {})
    assert result.returncode == 0, result.stderr
    return result.stdout


def dry_run(*args: str, env: dict | None = None) -> list[str]:
    """The commands `make -n` would run, continuation lines joined."""
    return make("-n", *args, env=env).replace("\\\n", " ").splitlines()


# What the walkthrough's targets append: stderr through the start-up filter.
QUIET = " 2> >(tools/quiet_startup.sh >&2)"


def walkthrough_args(command: str) -> list[str]:
    """The words of a command `make -n` printed, without the start-up filter."""
    words = " ".join(command.split())
    assert words.endswith(QUIET), command
    return shlex.split(words.removesuffix(QUIET))


def make_env(*args: str, env: dict | None = None) -> dict[str, str]:
    return dict(line.split("=", 1) for line in make("env", *args, env=env).splitlines())


def env_sh(script: str = "", env: dict | None = None, shell: str = "bash") -> dict[str, str]:
    """The variables that `make env` lists, as `. ./env.sh` sets them in `shell`."""
    printer = "; ".join(f'echo "{v}=${v}"' for v in make_env())
    result = run([shell, "-c", f". ./env.sh; {script} {printer}"], env=env or {})
    assert result.returncode == 0, result.stderr
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


@pytest.mark.parametrize("shell", ["bash", "dash"])
def test_env_sh_and_make_env_agree(tmp_path, shell):
    """env.sh is plain POSIX sh: bash and dash source it alike."""
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    fresh = {"MODEL_PATH": str(tmp_path)}
    assert env_sh(env=fresh, shell=shell) == make_env(env=fresh)
    assert make_env(env=fresh)["MODEL"] == "mnist_flax"


def test_model_version_is_empty_unless_set_so_the_export_picks_the_next(tmp_path):
    """env.sh holds no copy of the version rule: serving.versions picks the next version."""
    (tmp_path / "mnist_flax" / "41").mkdir(parents=True)
    fresh = {"MODEL_PATH": str(tmp_path)}
    assert env_sh(env=fresh)["MODEL_VERSION"] == make_env(env=fresh)["MODEL_VERSION"] == ""
    assert env_sh(env={**fresh, "MODEL_VERSION": "7"})["MODEL_VERSION"] == "7"
    assert make_env("MODEL_VERSION=7", env=fresh)["MODEL_VERSION"] == "7"


def test_make_help_lists_every_target_and_variable(tmp_path):
    text = make("help", f"MODEL_PATH={tmp_path}")
    targets = re.findall(r"^([a-z-]+):.*## ", (ROOT / "Makefile").read_text(), re.M)
    assert len(targets) > 10
    for target in targets:
        assert re.search(rf"^  {target} +\S", text, re.M), target
    for name, value in make_env(f"MODEL_PATH={tmp_path}").items():
        assert re.search(rf"^  {name} +{re.escape(value or '(empty)')}$", text, re.M), name


def test_overrides_win_from_command_line_and_environment(tmp_path):
    from_cli = make_env("MODEL=mnist_pure_jax", f"MODEL_PATH={tmp_path}", "GRPC_PORT=9000")
    from_env = make_env(
        env={"MODEL": "mnist_pure_jax", "MODEL_PATH": str(tmp_path), "GRPC_PORT": "9000"}
    )
    assert from_cli == from_env
    assert from_cli["MODEL"] == "mnist_pure_jax" and from_cli["GRPC_PORT"] == "9000"
    sourced = env_sh(
        env={"MODEL": "mnist_pure_jax", "MODEL_PATH": str(tmp_path), "GRPC_PORT": "9000"}
    )
    assert sourced == from_cli


def test_make_n_export_shows_the_walkthrough_command(tmp_path):
    (command,) = [
        c
        for c in dry_run(
            "export", "MODEL=mnist_pure_jax", "SERVING_BATCH_SIZE_SAVE=16", f"MODEL_PATH={tmp_path}"
        )
        if "saved_model_main.py" in c
    ]
    args = walkthrough_args(command)
    assert args[0].endswith(".venv/bin/python") and args[1] == "saved_model_main.py"
    assert args[2:] == [
        "--model=mnist_pure_jax",
        f"--model_path={tmp_path}",
        "--serving_batch_size=16",
        "--compile_model",
        "--noshow_model",
    ]


def test_make_n_export_passes_the_options():
    (command,) = [
        c
        for c in dry_run(
            "export",
            "MOCK_DATA=1",
            "NUM_EPOCHS=1",
            "DATA_DIR=/data",
            "OVERWRITE=1",
            "PLATFORMS=cpu,cuda",
            "MODEL_VERSION=5",
            "TF_SERVING_VERSION=2.16",
        )
        if "saved_model_main.py" in c
    ]
    for flag in (
        "--mock_data",
        "--num_epochs=1",
        "--data_dir=/data",
        "--overwrite",
        "--platforms=cpu,cuda",
        "--model_version=5",
        "--tf_serving_version=2.16",
    ):
        assert flag in shlex.split(command)


def test_make_export_passes_model_version_only_when_the_user_chose_it(tmp_path):
    def version_flags(*args, env=None):
        (command,) = [c for c in dry_run("export", *args, env=env) if "saved_model_main" in c]
        return [a for a in shlex.split(command) if a.startswith("--model_version")]

    fresh = {"MODEL_PATH": str(tmp_path)}
    assert version_flags(env=fresh) == []
    assert version_flags("MODEL_VERSION=4", env=fresh) == ["--model_version=4"]
    assert version_flags(env={**fresh, "MODEL_VERSION": "4"}) == ["--model_version=4"]
    # What `source env.sh` exports leaves the choice to the export.
    assert version_flags(env=env_sh(env=fresh)) == []


def test_model_version_zero_is_refused():
    result = export_cli("--model_version=0")
    assert result.returncode == 1
    assert "flag --model_version=0: 0 is not a positive integer" in result.stderr


def test_python_flag_defaults_mirror_env_sh():
    defaults, export = env_sh(), saved_model_main.ExportOptions()
    assert export.model == defaults["MODEL"]
    assert export.model_path == defaults["MODEL_PATH"]
    assert str(export.serving_batch_size) == defaults["SERVING_BATCH_SIZE_SAVE"]
    assert export.tf_serving_version == defaults["TF_SERVING_VERSION"] == ""
    # The flags take their defaults from the options.
    assert flags.FLAGS["model"].default == export.model
    assert flags.FLAGS["serving_batch_size"].default == export.serving_batch_size
    server = ServerOptions(model_name="", model_base_path="")
    assert str(server.port) == defaults["GRPC_PORT"]
    assert str(server.rest_api_port) == defaults["REST_PORT"]


def flag_defaults(command: list[str]) -> dict[str, str]:
    """--flag -> its default, from the program's --helpshort (scripts' flags clash in-process)."""
    result = run([*command, "--helpshort"])
    return dict(re.findall(r"--(\w+):.*?\(default: '([^']*)'\)", result.stdout, re.S))


def test_request_and_server_flag_defaults_mirror_env_sh():
    defaults = env_sh()
    request = flag_defaults(script("model_server_request.py"))
    assert request["model_spec_name"] == defaults["MODEL"]
    assert request["serving_batch_size"] == defaults["SERVING_BATCH_SIZE"]
    assert request["count_images"] == defaults["COUNT_IMAGES"]
    assert request["prediction_service_addr"] == f"localhost:{defaults['GRPC_PORT']}"
    server = flag_defaults(module("local_server"))
    assert server["port"] == defaults["GRPC_PORT"]
    assert server["rest_api_port"] == defaults["REST_PORT"]


def test_unknown_model_lists_the_valid_ones():
    result = export_cli("--model=mnist_resnet")
    assert result.returncode != 0
    assert "mnist_pure_jax" in result.stderr and "mnist_flax" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["0", "-2"])
def test_invalid_serving_batch_size_is_refused(value):
    result = export_cli(f"--serving_batch_size={value}")
    assert result.returncode != 0 and "must be -1 (any batch size) or > 0" in result.stderr


def fake_export(version_dir, exported_by=versions.EXPORTED_BY) -> None:
    """A version as `make export` leaves it, as far as `make clean` looks."""
    (version_dir / "assets.extra").mkdir(parents=True)
    (version_dir / "saved_model.pb").write_bytes(b"")
    info = {"exported_by": exported_by} if exported_by else {}
    (version_dir / "assets.extra" / "export_info.json").write_text(json.dumps(info))


def test_clean_deletes_only_exports(tmp_path):
    models = tmp_path / "models"
    fake_export(models / "mnist_flax" / "3")
    fake_export(models / "mnist_flax" / "5", exported_by=None)  # Someone else's record.
    theirs = models / "mnist_flax" / "4"  # A SavedModel not written by `make export`.
    theirs.mkdir()
    stale = models / "mnist_flax" / ".staging-abc"  # Left by a killed export.
    stale.mkdir()
    (models / "notes.txt").write_text("keep me")
    make("clean", f"MODEL_PATH={models}")
    assert not (models / "mnist_flax" / "3").exists() and not stale.exists()
    assert (models / "mnist_flax" / "5").exists() and theirs.exists()
    assert (models / "notes.txt").exists()


def test_clean_removes_only_the_directories_it_emptied(tmp_path):
    models = tmp_path / "models"
    fake_export(models / "mnist_flax" / "1")
    (models / "empty_of_yours").mkdir()
    (models / "mnist_pure_jax").mkdir()  # Empty before `make clean`: not its own.
    make("clean", f"MODEL_PATH={models}")
    assert not (models / "mnist_flax").exists()
    assert sorted(os.listdir(models)) == ["empty_of_yours", "mnist_pure_jax"]
    # A MODEL_PATH that only held exports goes with them.
    only_exports = tmp_path / "only"
    fake_export(only_exports / "mnist_flax" / "1")
    make("clean", f"MODEL_PATH={only_exports}")
    assert not only_exports.exists()
    # One that was empty stays.
    (tmp_path / "empty").mkdir()
    make("clean", f"MODEL_PATH={tmp_path / 'empty'}")
    assert (tmp_path / "empty").exists()


def export_until_converting(model_path) -> subprocess.Popen:
    """An export process that has begun to convert (its staging directory exists)."""
    export = subprocess.Popen(
        script("saved_model_main.py", "--mock_data", "--noshow_model",
               f"--model_path={model_path}", "--model=mnist_flax", "--num_epochs=0"),
        cwd=ROOT, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    for line in export.stderr:
        if "Converting with jax2tf and saving" in line:
            break
    return export


def test_clean_leaves_a_running_export_alone(tmp_path):
    export = export_until_converting(tmp_path)
    try:
        export.send_signal(signal.SIGSTOP)  # Mid-export, for as long as `make clean` runs.
        (staging,) = (tmp_path / "mnist_flax").glob(".staging-*")
        output = make("clean", f"MODEL_PATH={tmp_path}")
        assert staging.exists()
        assert f"Left {staging}: an export that is still running writes it." in output
    finally:
        export.send_signal(signal.SIGCONT)
    export.communicate(timeout=300)
    assert export.returncode == 0
    assert os.listdir(tmp_path / "mnist_flax") == ["1"]


def test_clean_removes_what_a_killed_export_left(tmp_path):
    export = export_until_converting(tmp_path)
    export.kill()  # No clean-up runs.
    export.communicate(timeout=60)
    (staging,) = (tmp_path / "mnist_flax").glob(".staging-*")
    make("clean", f"MODEL_PATH={tmp_path}")
    assert not staging.exists()


def test_clean_refuses_an_empty_model_path_from_the_environment(tmp_path):
    default = make_env()["MODEL_PATH"]
    result = run(["make", "clean"], env={"MODEL_PATH": ""})
    assert result.returncode != 0
    assert "refusing to clean MODEL_PATH=''" in result.stderr
    assert default not in result.stdout  # It did not go on to clean the default.


@pytest.mark.parametrize("path", ["/", "~", "", "/tmp/.."])
def test_clean_refuses_dangerous_paths(path):
    home = os.path.expanduser("~")
    result = run(["make", "clean", f"MODEL_PATH={path.replace('~', home)}"])
    assert result.returncode != 0 and "refusing" in result.stderr


def server_vars(tmp_path, server: str = "local") -> list[str]:
    """Variables for a server of its own: ports, paths and kind (not this machine's default)."""
    return [
        f"MODEL_PATH={tmp_path / 'models'}",
        f"RUN_DIR={tmp_path / 'run'}",
        f"GRPC_PORT={free_port()}",
        f"REST_PORT={free_port()}",
        f"SERVER={server}",
    ]


def test_make_n_serve_docker_prints_the_walkthrough_command(tmp_path):
    variables = server_vars(tmp_path, server="docker")
    (tmp_path / "models" / "mnist_flax" / "1").mkdir(parents=True)
    lines = dry_run("serve", "DOCKER_IMAGE=tensorflow/serving:2.18.0", *variables)
    grpc_port, rest_port = variables[2].split("=")[1], variables[3].split("=")[1]
    assert "Serving mnist_flax with the docker server (SERVER=docker)." in lines
    args = [line for line in lines if line.startswith("docker run")]
    assert shlex.split(args[0]) == [
        "docker", "run", "-d", "-p", f"{grpc_port}:8500", "-p", f"{rest_port}:8501",
        "--mount", f"type=bind,source={tmp_path}/models/mnist_flax/,target=/models/mnist_flax",
        "-e", "MODEL_NAME=mnist_flax", "-t", "--rm", "--name=serving",
        "tensorflow/serving:2.18.0", "--xla_cpu_compilation_enabled=true",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "kind, program", [("binary", "tensorflow_model_server"), ("local", ".venv/bin/python")]
)
def test_make_n_serve_binary_and_local_print_tensorflow_model_server_flags(tmp_path, kind, program):
    variables = server_vars(tmp_path, server=kind)
    lines = dry_run("serve", "MODEL=mnist_pure_jax", *variables)
    grpc_port, rest_port = variables[2].split("=")[1], variables[3].split("=")[1]
    (command,) = [line for line in lines if line.startswith(f"nohup {program}")]
    args = shlex.split(command.split(" > ")[0])[1:]
    if kind == "local":
        assert args[1:3] == ["-m", "local_server"]
        args = args[2:]
    assert args[1:] == [
        f"--port={grpc_port}",
        f"--rest_api_port={rest_port}",
        "--model_name=mnist_pure_jax",
        f"--model_base_path={tmp_path}/models/mnist_pure_jax",
        "--xla_cpu_compilation_enabled=true",
    ]


def test_make_n_request_commands():
    (grpc_cmd,) = [
        c
        for c in dry_run("request", "SERVING_BATCH_SIZE=8", "COUNT_IMAGES=64")
        if "model_server_request.py" in c
    ]
    assert walkthrough_args(grpc_cmd)[2:] == [
        "--model_spec_name=mnist_flax", "--use_grpc", "--prediction_service_addr=localhost:8500",
        "--serving_batch_size=8", "--count_images=64",
    ]  # fmt: skip
    (rest_cmd,) = [
        c
        for c in dry_run("request", "PROTOCOL=rest", "CONCURRENCY=4")
        if "model_server_request.py" in c
    ]
    assert "--nouse_grpc" in rest_cmd and "--prediction_service_addr=localhost:8501" in rest_cmd
    assert "--concurrency=4" in rest_cmd


def docker_engine_answers() -> bool:
    return run(["sh", "-c", "docker info"]).returncode == 0


@pytest.mark.skipif(not docker_engine_answers(), reason="no Docker engine answers on this machine")
def test_serve_with_docker_end_to_end(tmp_path):  # pragma: no cover - needs a Docker engine
    variables = server_vars(tmp_path, server="docker")
    make("export", "MOCK_DATA=1", "NUM_EPOCHS=1", *variables)
    try:
        make("serve", *variables)
        assert "AVAILABLE" in make("status", *variables)
        make("request", "MOCK_DATA=1", *variables)
    finally:
        make("stop", *variables)


def test_serve_errors_are_clear_and_change_nothing(tmp_path):
    variables = server_vars(tmp_path)
    result = run(["make", "serve", *variables])
    assert result.returncode != 0 and "does not exist. Export a model first" in result.stderr
    (tmp_path / "models" / "mnist_flax").mkdir(parents=True)
    (tmp_path / "models" / "mnist_flax" / "1").write_text("a file, not a version")
    result = run(["make", "serve", *variables])
    assert result.returncode != 0 and "holds no version directory" in result.stderr
    result = run(["make", "serve", *server_vars(tmp_path, server="kubernetes")])
    assert result.returncode != 0 and "choose auto, docker, binary or local" in result.stderr
    assert "No model server started by 'make serve' is running." in make("stop", *variables)
    result = run(["make", "status", *variables])
    assert result.returncode != 0 and "no model server answers" in result.stderr


def test_serve_status_stop_and_process_faults(tmp_path):
    variables = server_vars(tmp_path)
    export_model(tmp_path / "models", model="mnist_pure_jax", num_epochs=0)
    variables.append("MODEL=mnist_pure_jax")
    run_dir = tmp_path / "run"
    out = make("serve", *variables)
    assert "with the local server (SERVER=local)" in out
    assert "version 1 is AVAILABLE" in out
    try:
        assert "version 1: AVAILABLE" in make("status", *variables)
        # A second server is refused, and the first one keeps running.
        second = run(["make", "serve", *variables])
        assert second.returncode != 0 and "already running" in second.stderr
        pid = int((run_dir / "server.pid").read_text())
        os.kill(pid, 0)
        # kill -9 leaves a stale pid file; the next serve cleans it up and starts.
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)
        out = make("serve", *variables)
        assert f"Removing the stale {run_dir}/server.pid (process {pid} is gone" in out
        assert "AVAILABLE" in out
    finally:
        out = make("stop", *variables)
    assert "Stopped the local server" in out
    assert not (run_dir / "server.pid").exists()


def test_stop_and_serve_never_signal_a_process_that_reused_the_pid(tmp_path):
    variables = [*server_vars(tmp_path), "MODEL=mnist_pure_jax"]
    export_model(tmp_path / "models", model="mnist_pure_jax", num_epochs=0)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    bystander = subprocess.Popen(["sleep", "300"])  # Holds the pid a dead server had.
    try:
        (run_dir / "server.pid").write_text(f"{bystander.pid}\n")
        (run_dir / "server.kind").write_text("local\n")
        out = make("stop", *variables)
        assert f"Process {bystander.pid} is not a model server" in out
        assert bystander.poll() is None and not (run_dir / "server.pid").exists()

        (run_dir / "server.pid").write_text(f"{bystander.pid}\n")
        out = make("serve", *variables)  # Not "already running": it starts.
        assert f"process {bystander.pid} is gone, or is no model server" in out
        assert "AVAILABLE" in out
        out = make("stop", *variables)
        assert "Stopped the local server" in out and bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_busy_port_is_reported_before_starting(tmp_path):
    variables = server_vars(tmp_path)
    export_model(tmp_path / "models", model="mnist_pure_jax", num_epochs=0)
    busy = int(variables[3].split("=")[1])
    with socket.socket() as s:
        s.bind(("localhost", busy))
        s.listen()
        result = run(["make", "serve", "MODEL=mnist_pure_jax", *variables])
    assert result.returncode != 0 and f"port {busy} is in use" in result.stderr
    assert not (tmp_path / "run" / "server.pid").exists()


def test_demo_end_to_end(tmp_path):
    variables = server_vars(tmp_path)
    result = run(["make", "demo", "MOCK_DATA=1", "NUM_EPOCHS=1", "COUNT_IMAGES=64", *variables])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Exported mnist_flax version 1" in result.stderr
    assert "gRPC: 64 images in 4 requests (0 failed)" in result.stdout
    assert "REST: 64 images in 4 requests (0 failed)" in result.stdout
    assert "Stopped the local server" in result.stdout
    assert not (tmp_path / "run" / "server.pid").exists()
    # A quiet terminal: no line that looks like an error, and a screenful in all.
    output = result.stdout + result.stderr
    if not glob.glob("/dev/nvidia[0-9]*"):
        assert not re.search(r"^E\d{4} |failed call to cuInit|Traceback", output, re.MULTILINE)
    assert len(output.splitlines()) <= 40, output


def test_quiet_startup_drops_only_the_harmless_start_up_lines():
    harmless = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1.1 9370 port.cc:153] oneDNN custom operations are on. You may see",
        "I0000 00:00:1.2 9370 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
        "GPU will not be used.",
        "I0000 00:00:1.3 9370 cpu_feature_guard.cc:227] This TensorFlow binary is optimized",
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild",
    ]
    real = [
        "E0000 00:00:1.4 9370 graph_compiler.cc:153] Executor failed to create kernel.",
        "error: the export failed",
        "Traceback (most recent call last):",
        "I1125 14:37:19.14 saved_model_main.py:175] Training mnist_flax for 1 epochs",
    ]
    cuinit = "E0000 00:00:1.5 9370 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error"
    result = run(["tools/quiet_startup.sh"], input="\n".join([*harmless, *real, cuinit]) + "\n")
    kept = result.stdout.splitlines()
    gpu = bool(glob.glob("/dev/nvidia[0-9]*"))
    assert kept == real + ([cuinit] if gpu else [])


def test_verbose_brings_every_line_back(tmp_path):
    quiet = " ".join(dry_run("export", "request", f"MODEL_PATH={tmp_path}"))
    assert " ".join(quiet.split()).count(QUIET) == 2 and "--verbose" not in quiet
    verbose = " ".join(dry_run("export", "request", "VERBOSE=1", f"MODEL_PATH={tmp_path}"))
    assert "quiet_startup" not in verbose and verbose.count("--verbose") == 2
    result = run(["make", "export", "MOCK_DATA=1", "NUM_EPOCHS=0", f"MODEL_PATH={tmp_path}",
                  "VERBOSE=1"])  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "oneDNN custom operations are on" in result.stderr  # TensorFlow's own start-up line.
    assert "functional_saver.py" in result.stderr  # TensorFlow's own INFO line.


def wait_gone(pid: int) -> None:
    import time

    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still alive")


@pytest.mark.parametrize("answers", [True, False], ids=["engine", "no-engine"])
def test_setup_pulls_the_image_only_when_docker_answers(tmp_path, answers):
    """A `docker` on PATH that logs its calls and answers `docker info` or not."""
    log = tmp_path / "docker.log"
    docker = tmp_path / "bin" / "docker"
    docker.parent.mkdir()
    info_status = 0 if answers else 1
    docker.write_text(f'#!/bin/sh\necho "$*" >> {log}\n[ "$1" != info ] || exit {info_status}\n')
    docker.chmod(0o755)
    path = f"{docker.parent}{os.pathsep}{os.environ['PATH']}"
    output = make("setup", "DOCKER_IMAGE=tensorflow/serving:2.18.0", env={"PATH": path})
    calls = log.read_text().splitlines()
    if answers:
        assert calls == ["info", "pull tensorflow/serving:2.18.0"]
    else:
        assert calls == ["info"]
        assert "No Docker engine answers: skipped 'docker pull tensorflow/serving:2.18.0'" in output


def test_setup_explains_a_missing_or_old_python_and_a_missing_venv_module(tmp_path):
    venv = f"VENV={tmp_path / 'venv'}"
    result = run(["make", "setup", "PYTHON3=/nonexistent/python3", venv])
    assert result.returncode != 0 and "missing or older than Python 3.10" in result.stderr
    old = tmp_path / "python3.8"
    old.write_text("#!/bin/sh\nexit 1  # What Python 3.8 answers to the version check.\n")
    old.chmod(0o755)
    result = run(["make", "setup", f"PYTHON3={old}", venv])
    assert result.returncode != 0 and "missing or older than Python 3.10" in result.stderr
    no_venv = tmp_path / "python3-without-venv"
    no_venv.write_text(
        f'#!/bin/sh\ncase "$*" in *"import venv"*) exit 1;; esac\nexec {sys.executable} "$@"\n'
    )
    no_venv.chmod(0o755)
    result = run(["make", "setup", f"PYTHON3={no_venv}", venv])
    assert result.returncode != 0 and "apt-get install python3-venv" in result.stderr
    assert not (tmp_path / "venv").exists()


def test_inspect_without_a_version_says_to_export(tmp_path):
    result = run(["make", "inspect", f"MODEL_PATH={tmp_path}"])
    assert result.returncode != 0
    assert f"no version under {tmp_path}/mnist_flax. Run 'make export' first." in result.stderr
    result = run(["make", "inspect", f"MODEL_PATH={tmp_path}", "MODEL_VERSION=3"])
    assert result.returncode != 0 and f"no SavedModel at {tmp_path}/mnist_flax/3" in result.stderr


# ---- TF_SERVING_VERSION and GPU ----------------------------------------------------


@pytest.mark.parametrize(
    "variables, image",
    [
        pytest.param([], "tensorflow/serving:nightly", id="default"),
        pytest.param(["TF_SERVING_VERSION=2.19"], "tensorflow/serving:2.19.1", id="release"),
        pytest.param(["TF_SERVING_VERSION=2.18.0"], "tensorflow/serving:2.18.0", id="full-number"),
        pytest.param(["TF_SERVING_VERSION=2.21"], "tensorflow/serving:nightly", id="no-image-yet"),
        pytest.param(["GPU=1"], "tensorflow/serving:nightly-gpu", id="gpu"),
        pytest.param(
            ["TF_SERVING_VERSION=2.16", "GPU=1"], "tensorflow/serving:2.16.1-gpu", id="both"
        ),
        pytest.param(
            ["TF_SERVING_VERSION=2.16", "DOCKER_IMAGE=my/serving:1"], "my/serving:1", id="given"
        ),
    ],
)
def test_docker_image_follows_tf_serving_version_and_gpu(variables, image):
    assert make_env(*variables)["DOCKER_IMAGE"] == image
    sourced = env_sh(env=dict(v.split("=", 1) for v in variables))
    assert sourced["DOCKER_IMAGE"] == image


def test_docker_image_and_pinned_release_come_from_the_release_table(tmp_path):
    # env.sh reads serving/releases.tsv: a changed table changes the image.
    (tmp_path / "serving").mkdir()
    (tmp_path / "env.sh").write_text((ROOT / "env.sh").read_text())
    (tmp_path / "serving" / "releases.tsv").write_text(
        "# release\tcalling_convention\tstablehlo\timage\n"
        "2.19\t9\t1.9.1\t2.19.7\n2.20\t10\t1.12.1\t2.20.3\n2.21\t10\t1.13.7\t-\n"
    )

    def sourced(version):
        return subprocess.run(
            ["sh", "-c", '. ./env.sh && echo "$DOCKER_IMAGE $(tf_serving_pinned_release)"'],
            cwd=tmp_path,
            env={"PATH": os.environ["PATH"], "TF_SERVING_VERSION": version},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()

    assert sourced("2.19") == ["tensorflow/serving:2.19.7", "2.19"]
    assert sourced("2.21") == ["tensorflow/serving:nightly", "2.21"]
    assert sourced("") == ["tensorflow/serving:nightly", "2.20"]


def test_make_n_serve_docker_on_a_gpu(tmp_path):
    variables = server_vars(tmp_path, server="docker")
    (tmp_path / "models" / "mnist_flax" / "1").mkdir(parents=True)
    lines = dry_run("serve", "GPU=1", "TF_SERVING_VERSION=2.19", *variables)
    (command,) = [line for line in lines if line.startswith("docker run")]
    args = shlex.split(command)
    assert args[args.index("--gpus") + 1] == "all"
    assert args[-3:] == [
        "tensorflow/serving:2.19.1-gpu",
        "--xla_cpu_compilation_enabled=true",
        "--xla_gpu_compilation_enabled=true",
    ]
    (check,) = [line for line in lines if " check " in line]
    assert "--serving_release=2.19" in shlex.split(check) and "--gpu" in shlex.split(check)


@pytest.mark.parametrize("kind", ["binary", "local"])
def test_make_n_serve_binary_and_local_on_a_gpu(tmp_path, kind):
    lines = dry_run("serve", "GPU=1", *server_vars(tmp_path, server=kind))
    (command,) = [line for line in lines if line.startswith("nohup")]
    assert shlex.split(command.split(" > ")[0])[-2:] == [
        "--xla_cpu_compilation_enabled=true",
        "--xla_gpu_compilation_enabled=true",
    ]


def test_local_server_takes_the_gpu_flag():
    result = run(module("local_server", "--helpshort"))
    assert "--[no]xla_gpu_compilation_enabled" in result.stdout


def write_export_info(version_dir, **info) -> None:
    (version_dir / "assets.extra").mkdir(parents=True)
    (version_dir / "assets.extra" / "export_info.json").write_text(json.dumps(info))


def serve_check(base_path, *flags_: str):
    return run(
        [
            ".venv/bin/python",
            "-m",
            "tools.server_ctl",
            "check",
            "--model_name=m",
            f"--model_base_path={base_path}",
            *flags_,
        ]
    )


def test_serve_check_refuses_a_gpu_server_for_a_cpu_export(tmp_path):
    write_export_info(tmp_path / "1", platforms=["cpu", "cuda"])
    write_export_info(tmp_path / "2", platforms=["cpu"])
    result = serve_check(tmp_path, "--gpu")
    assert result.returncode == 1
    assert (
        "error: version 2 was exported for cpu only, and a GPU server answers each request with "
        "'The current platform CUDA is not among the platforms required by the module: [CPU]'. "
        "Export for both: make export PLATFORMS=cpu,cuda"
    ) in result.stderr
    assert serve_check(tmp_path).returncode == 0  # A CPU server runs it.
    write_export_info(tmp_path / "3", platforms=["cpu", "cuda"])
    assert serve_check(tmp_path, "--gpu").returncode == 0


@pytest.mark.parametrize(
    "exported_for, serving, warns",
    [
        pytest.param("2.16", "2.19", False, id="older-export"),
        pytest.param("2.19", "2.19.1", False, id="same-release"),
        pytest.param("2.19", "2.16", True, id="newer-export"),
        pytest.param(None, "2.19", True, id="jax-newest-format"),
        pytest.param(None, "", False, id="release-not-given"),
    ],
)
def test_serve_check_warns_when_the_release_may_not_run_the_export(
    tmp_path, exported_for, serving, warns
):
    write_export_info(tmp_path / "1", platforms=["cpu"], tf_serving_version=exported_for)
    result = serve_check(tmp_path, f"--serving_release={serving}")
    assert result.returncode == 0, result.stderr
    assert ("warning: version 1 was exported for" in result.stderr) == warns
    if warns:
        assert f"make compat TF_SERVING_VERSION={serving}" in result.stderr


def test_serve_check_explains_a_release_that_is_no_number(tmp_path):
    write_export_info(tmp_path / "1", platforms=["cpu"], tf_serving_version="2.19")
    result = serve_check(tmp_path, "--serving_release=latest")
    assert result.returncode == 1
    assert "error: TF_SERVING_VERSION='latest' is not a release number" in result.stderr


def test_make_n_compat_passes_the_variables():
    (command,) = dry_run(
        "compat", "COMPAT_VERSIONS=2.16  2.21", "TF_SERVING_VERSION=2.16", "MODEL_VERSION=3"
    )
    args = shlex.split(command)
    assert args[:3] == [".venv/bin/python", "-m", "tools.compat"]
    for flag in (
        "--versions=2.16,2.21",
        "--tf_serving_version=2.16",
        "--model_version=3",
        "--venv_dir=.compat",
    ):
        assert flag in args
    (command,) = dry_run("compat")
    assert not any(
        a.startswith(("--versions", "--tf_serving", "--model_version"))
        for a in shlex.split(command)
    )


def test_inspect_shows_what_the_ops_need(tmp_path):
    export_model(tmp_path, model="mnist_pure_jax", num_epochs=0, tf_serving_version="2.19")
    result = run(["make", "inspect", f"MODEL_PATH={tmp_path}", "MODEL=mnist_pure_jax"])
    assert result.returncode == 0, result.stderr
    assert "signature_def['serving_default']" in result.stdout
    assert "XlaCallModule (2 ops): calling convention 9, StableHLO 1.9.1, platforms CPU" in (
        result.stdout
    )


@pytest.mark.parametrize(
    "names, version, shown",
    [
        pytest.param(["1", "2", "10"], None, "10", id="newest"),
        pytest.param(["1", "2", "10"], "2", "2", id="chosen"),
        pytest.param(["007", "3"], None, "007", id="leading-zeros"),
        pytest.param(["007"], "7", "007", id="chosen-leading-zeros"),
        pytest.param(["2", "12\n", "1a", ".staging-x", "-1", "٣"], None, "2", id="not-versions"),
    ],
)
def test_make_inspect_shows_the_version_serving_versions_finds(tmp_path, names, version, shown):
    model = tmp_path / "mnist_flax"
    for name in names:
        (model / name).mkdir(parents=True)
    (model / "50").write_text("a file is no version")
    variables = [f"MODEL_PATH={tmp_path}", *([f"MODEL_VERSION={version}"] if version else [])]
    (command,) = [c for c in dry_run("inspect", *variables) if "saved_model_cli" in c]
    assert shlex.split(command)[-1] == f"{model}/{shown}"
