"""The Makefile and env.sh: defaults, overrides, the walkthrough's commands, end to end.

Command lines with `make -n`; what the tools decide, in tests/tools/, in-process.
"""

import copy
import os
import pathlib
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys

import pytest
from absl import flags
from conftest import (
    ROOT,
    WARMUP_BATCH_SIZES,
    copy_version,
    free_port,
    pytest_collection_modifyitems,
    run,
    work_unit,
)

import saved_model_main
from serving import env, releases


def make(*args: str, env: dict | None = None) -> str:
    result = run(["make", "--no-print-directory", *args], env=env or {})
    assert result.returncode == 0, result.stderr
    return result.stdout


def dry_run(*args: str, env: dict | None = None) -> list[str]:
    """The commands `make -n` would run, continuation lines joined."""
    return make("-n", *args, env=env).replace("\\\n", " ").splitlines()


# The default: serving/releases.tsv's newest release with an image (TensorFlow Serving 2.20).
DEFAULT_IMAGE = "tensorflow/serving:2.20.0"
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


def makefiles() -> list:
    """The Makefile and the files it includes."""
    return [ROOT / "Makefile", *sorted((ROOT / "make").glob("*.mk"))]


def server_vars(tmp_path, server: str = "local") -> list[str]:
    """Variables for a server of its own: ports, paths and kind (not this machine's default)."""
    return [
        f"MODEL_PATH={tmp_path / 'models'}",
        f"RUN_DIR={tmp_path / 'run'}",
        f"GRPC_PORT={free_port()}",
        f"REST_PORT={free_port()}",
        f"SERVER={server}",
    ]


# ---- env.sh and the variables ----------------------------------------------------


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
    targets = [
        target
        for path in makefiles()
        for target in re.findall(r"^([a-z-]+):.*## ", path.read_text(), re.M)
    ]
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


def test_read_defaults_takes_the_plain_defaults_of_env_sh(tmp_path):
    """serving.env gives Python's flags env.sh's defaults; a computed one is the shell's."""
    script = tmp_path / "env.sh"
    script.write_text(
        "# A comment: MODEL=not_this\n"
        ': "${MODEL:=mnist_flax}"\n'
        ': "${MODEL_VERSION:=}"\n'
        ': "${DOCKER_IMAGE:=$(tf_serving_image)}"\n'
        "REST_PORT=8501\n"
        ': "${MODEL_PATH:=/tmp/jax2tf/saved_models}"\n'
    )
    assert env.read_defaults(str(script)) == {
        "MODEL": "mnist_flax",
        "MODEL_VERSION": "",
        "MODEL_PATH": "/tmp/jax2tf/saved_models",
    }


def test_read_defaults_agrees_with_sourcing_env_sh():
    defaults, sourced = env.read_defaults(), env_sh()
    assert {"MODEL", "MODEL_PATH", "GRPC_PORT", "REST_PORT", "COUNT_IMAGES"} <= set(defaults)
    assert {name: sourced[name] for name in defaults} == defaults


def test_python_flag_defaults_mirror_env_sh():
    defaults, export = env.DEFAULTS, saved_model_main.ExportOptions()
    assert export.model == defaults["MODEL"]
    assert export.model_path == defaults["MODEL_PATH"]
    assert str(export.serving_batch_size) == defaults["SERVING_BATCH_SIZE_SAVE"]
    # Computed from serving/releases.tsv, in env.sh and in Python alike: the newest release
    # with an image.
    assert "TF_SERVING_VERSION" not in defaults
    assert export.tf_serving_version == make_env()["TF_SERVING_VERSION"] == "2.20"
    assert export.tf_serving_version == releases.newest_with_image().release
    # The flags take their defaults from the options.
    assert flags.FLAGS["model"].default == export.model
    assert flags.FLAGS["serving_batch_size"].default == export.serving_batch_size
    assert flags.FLAGS["tf_serving_version"].default == export.tf_serving_version


def test_makefile_reads_env_sh_once():
    sourced = [
        f"{path.name}:{number}"
        for path in makefiles()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\. \./env\.sh", line)
    ]
    assert len(sourced) == 1, sourced


@pytest.mark.parametrize(
    "variables, image",
    [
        pytest.param([], f"tensorflow/serving:{releases.newest_with_image().image_tag}", id="new"),
        pytest.param(
            ["TF_SERVING_VERSION=2.19", "GPU=1"], "tensorflow/serving:2.19.1-gpu", id="2.19"
        ),
        pytest.param(["DEPLOY_IMAGE=my/serving:1"], "my/serving:1", id="given"),
    ],
)
def test_make_manifests_pins_the_image_of_the_release(variables, image):
    (command,) = dry_run("manifests", *variables)
    assert f"--image={image}" in shlex.split(command)


# ---- export -------------------------------------------------------------------------


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
        "--tf_serving_version=2.20",
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
            "WARMUP_BATCH_SIZES=1,8",
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
        "--warmup_batch_sizes=1,8",
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


def export_flag_error(*args: str) -> str:
    """What saved_model_main.py's flags answer to `args`: app.run prints it, no traceback."""
    parsed = copy.deepcopy(flags.FLAGS)  # The flags of this process stay unparsed.
    with pytest.raises(flags.Error) as error:
        parsed(["saved_model_main.py", *args])
    return str(error.value)


def test_model_version_zero_is_refused():
    assert export_flag_error("--model_version=0") == (
        "flag --model_version=0: 0 is not a positive integer"
    )


def test_unknown_model_lists_the_valid_ones():
    message = export_flag_error("--model=mnist_resnet")
    assert "mnist_pure_jax" in message and "mnist_flax" in message


@pytest.mark.parametrize("value", ["0", "-2"])
def test_invalid_serving_batch_size_is_refused(value):
    message = export_flag_error(f"--serving_batch_size={value}")
    assert "must be -1 (any batch size) or > 0" in message


@pytest.mark.parametrize("value", ["1,x", "0", "8,-1"])
def test_invalid_warmup_batch_sizes_are_refused(value):
    message = export_flag_error(f"--warmup_batch_sizes={value}")
    assert "must be a comma-separated list of batch sizes > 0" in message


def test_verbose_brings_every_line_back(tmp_path):
    """VERBOSE=1 drops the start-up filter and passes --verbose (its filter: tests/core)."""
    quiet = " ".join(dry_run("export", "request", f"MODEL_PATH={tmp_path}"))
    assert " ".join(quiet.split()).count(QUIET) == 2 and "--verbose" not in quiet
    verbose = " ".join(dry_run("export", "request", "VERBOSE=1", f"MODEL_PATH={tmp_path}"))
    assert "quiet_startup" not in verbose and verbose.count("--verbose") == 2


def test_export_and_test_keep_jaxs_compilation_cache_in_the_venv(tmp_path):
    """JAX reads its persistent cache's settings from the environment of export and test."""
    printer = tmp_path / "printer.py"  # Stands in for the virtualenv's Python.
    printer.write_text(
        "import os\n"
        "print(os.environ.get('JAX_COMPILATION_CACHE_DIR'),\n"
        "      os.environ.get('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'))\n"
    )
    without_jax = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}

    def seen(target: str, *args: str, **environment: str) -> list[str]:
        command = [
            "make",
            "-s",
            "-o",
            ".venv/.requirements.stamp",
            target,
            f"MODEL_PATH={tmp_path}",
        ]
        result = subprocess.run(
            [*command, f"PY={sys.executable} {printer}", *args],
            cwd=ROOT, env={**without_jax, **environment}, capture_output=True, text=True,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    default = (ROOT / ".venv" / "jax-cache").resolve()
    for target in ("export", "test"):
        directory, min_seconds = seen(target)
        assert (pathlib.Path(directory).resolve(), min_seconds) == (default, "0")
        assert seen(target, "JAX_CACHE_DIR=") == ["None", "None"]
    assert seen("export", JAX_COMPILATION_CACHE_DIR="/elsewhere")[0] == "/elsewhere"


def test_make_test_runs_a_worker_more_than_cores():
    schedule = "--dist loadfile --no-loadscope-reorder"  # conftest.py's work units, in order
    (default,) = dry_run("test")
    assert f" -n {(os.cpu_count() or 1) + 1} {schedule} tests" in default
    (chosen,) = dry_run("test", "TEST_WORKERS=2", "TESTS=tests/core")
    assert chosen.endswith(f" -n 2 {schedule} tests/core")


def test_make_tests_units_are_files_or_docs_pages_and_the_slow_ones_go_first():
    page = "tests/docs/test_docs_pages.py::test_the_page_runs_as_written[production.md]"
    assert work_unit(page) == page
    assert work_unit("tests/docs/test_docs_pages.py::test_every_topic_has_its_page") == (
        "tests/docs/test_docs_pages.py"
    )
    assert work_unit("tests/core/test_export.py::test_x[a-b]") == "tests/core/test_export.py"

    class Item:
        def __init__(self, nodeid: str, slow: bool = False):
            self.nodeid, self.slow = nodeid, slow

        def iter_markers(self, name: str):
            return iter([name] if name == "slow" and self.slow else [])

    items = [Item("tests/a.py::one"), Item("tests/b.py::one"), Item("tests/b.py::two", slow=True)]
    items.append(Item(page, slow=True))
    pytest_collection_modifyitems(items)
    assert [item.nodeid for item in items] == [
        "tests/b.py::one", "tests/b.py::two", page, "tests/a.py::one"
    ]  # fmt: skip


# ---- clean --------------------------------------------------------------------------


def test_make_clean_cleans_model_path_with_the_venv(tmp_path):
    """What it deletes: tests/tools/test_exports.py."""
    assert make("clean", f"MODEL_PATH={tmp_path}/none") == (
        f"Nothing to clean: {tmp_path}/none does not exist.\n"
    )
    result = run(["make", "clean", f"MODEL_PATH={tmp_path}", f"VENV={tmp_path}/venv"])
    assert result.returncode != 0 and "make clean needs" in result.stderr


def test_clean_refuses_an_empty_model_path_from_the_environment():
    default = make_env()["MODEL_PATH"]
    for command, environment in ((["make", "clean"], {"MODEL_PATH": ""}),
                                 (["make", "clean", "MODEL_PATH="], {})):  # fmt: skip
        result = run(command, env=environment)
        assert result.returncode != 0
        assert "refusing to clean MODEL_PATH=''" in result.stderr
        assert default not in result.stdout  # It did not go on to clean the default.


def test_clean_leaves_a_running_export_alone(tmp_path):
    """`make clean` while `make export` converts (stopped there), then the export ends."""
    export = subprocess.Popen(
        ["make", "--no-print-directory", "export", "MODEL=mnist_pure_jax", "MOCK_DATA=1",
         "NUM_EPOCHS=0", f"MODEL_PATH={tmp_path}"],
        cwd=ROOT, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    lines = []
    for line in export.stderr:
        lines.append(line)
        if "Converting with jax2tf and saving" in line:
            break
    try:
        os.killpg(export.pid, signal.SIGSTOP)  # Mid-export, for as long as `make clean` runs.
        (staging,) = (tmp_path / "mnist_pure_jax").glob(".staging-*")
        output = make("clean", f"MODEL_PATH={tmp_path}")
        assert staging.exists()
        assert f"Left {staging}: an export that is still running writes it." in output
    finally:
        os.killpg(export.pid, signal.SIGCONT)
    stderr = "".join(lines) + export.communicate(timeout=300)[1]
    assert export.returncode == 0, stderr
    assert os.listdir(tmp_path / "mnist_pure_jax") == ["1"]


# ---- inspect and compat -------------------------------------------------------------


def test_inspect_without_a_version_says_to_export(tmp_path):
    """Its other message: tests/tools/test_exports.py."""
    result = run(["make", "inspect", f"MODEL_PATH={tmp_path}"])
    assert result.returncode != 0
    assert f"no version under {tmp_path}/mnist_flax. Run 'make export' first." in result.stderr


@pytest.mark.parametrize(
    "names, version, shown",
    [
        pytest.param(["1", "2", "10"], None, "10", id="newest"),
        pytest.param(["007", "3"], "7", "007", id="chosen-leading-zeros"),
    ],
)
def test_make_inspect_shows_the_version_serving_versions_finds(tmp_path, names, version, shown):
    model = tmp_path / "mnist_flax"
    for name in names:
        (model / name).mkdir(parents=True)
    variables = [f"MODEL_PATH={tmp_path}", *([f"MODEL_VERSION={version}"] if version else [])]
    (command,) = [c for c in dry_run("inspect", *variables) if "saved_model_cli" in c]
    assert shlex.split(command.split(" 2> >(")[0])[-1] == f"{model}/{shown}"


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
    # Unless you set TF_SERVING_VERSION, the export's own target decides (tools/compat.py).
    (command,) = dry_run("compat")
    assert not any(
        a.startswith(("--versions", "--tf_serving", "--model_version"))
        for a in shlex.split(command)
    )
    (command,) = dry_run("compat", env={"TF_SERVING_VERSION": "nightly"})
    assert "--tf_serving_version=nightly" in shlex.split(command)


# ---- serve and request --------------------------------------------------------------


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


def test_make_n_serve_and_setup_use_the_default_release_image(tmp_path):
    assert f"tensorflow/serving:{releases.newest_with_image().image_tag}" == DEFAULT_IMAGE
    variables = server_vars(tmp_path, server="docker")
    (tmp_path / "models" / "mnist_flax" / "1").mkdir(parents=True)
    lines = dry_run("serve", *variables)
    (command,) = [line for line in lines if line.startswith("docker run")]
    assert DEFAULT_IMAGE in shlex.split(command)
    (preflight,) = [shlex.split(line) for line in lines if " preflight " in line]
    assert "--tf_serving_version=2.20" in preflight
    (pull,) = [line for line in dry_run("setup") if "docker pull" in line]
    assert f"docker pull {DEFAULT_IMAGE};" in pull


def test_setup_and_serve_refuse_a_release_without_a_server(tmp_path):
    """Before Docker is asked for an image that does not exist, and before choosing a server."""
    log = tmp_path / "docker.log"
    docker = tmp_path / "bin" / "docker"
    docker.parent.mkdir()
    docker.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    docker.chmod(0o755)
    path = {"PATH": f"{docker.parent}{os.pathsep}{os.environ['PATH']}"}
    for target in (["setup"], ["serve", *server_vars(tmp_path)]):
        result = run(["make", "--no-print-directory", *target, "TF_SERVING_VERSION=2.21"], env=path)
        assert result.returncode != 0
        assert "error: TF_SERVING_VERSION=2.21: no TensorFlow Serving 2.21 release" in (
            result.stderr
        )
        assert "Serving mnist_flax" not in result.stdout
    assert not log.exists()
    assert not (tmp_path / "run").exists()


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
    (preflight,) = [shlex.split(line) for line in lines if " preflight " in line]
    assert "--tf_serving_version=2.19" in preflight and "--gpu" in preflight


@pytest.mark.parametrize("kind", ["binary", "local"])
def test_make_n_serve_binary_and_local_on_a_gpu(tmp_path, kind):
    lines = dry_run("serve", "GPU=1", *server_vars(tmp_path, server=kind))
    (command,) = [line for line in lines if line.startswith("nohup")]
    assert shlex.split(command.split(" > ")[0])[-2:] == [
        "--xla_cpu_compilation_enabled=true",
        "--xla_gpu_compilation_enabled=true",
    ]


def test_local_server_takes_the_gpu_flag():
    import local_server.__main__  # noqa: F401 - defines the local server's flags.

    assert flags.FLAGS["xla_gpu_compilation_enabled"].boolean


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


def test_serve_errors_are_clear_and_change_nothing(tmp_path):
    """Every message of the checks: tests/tools/test_server_process.py."""
    variables = server_vars(tmp_path)
    result = run(["make", "serve", *variables])
    assert result.returncode != 0 and "does not exist. Export a model first" in result.stderr
    result = run(["make", "serve", *server_vars(tmp_path, server="kubernetes")])
    assert result.returncode != 0 and "choose auto, docker, binary or local" in result.stderr
    assert not (tmp_path / "run" / "server.pid").exists()


def test_busy_port_is_reported_before_starting(tmp_path):
    variables = server_vars(tmp_path)
    (tmp_path / "models" / "mnist_flax" / "1").mkdir(parents=True)
    busy = int(variables[3].split("=")[1])
    with socket.socket() as s:
        s.bind(("localhost", busy))
        s.listen()
        result = run(["make", "serve", *variables])
    assert result.returncode != 0 and f"port {busy} is in use" in result.stderr
    assert not (tmp_path / "run" / "server.pid").exists()


def test_serve_status_stop_and_process_faults(tmp_path, untrained_mlp):
    """The local server through make. A stale pid file, a reused pid, a container:
    tests/tools/test_server_process.py."""
    variables = [*server_vars(tmp_path), "MODEL=mnist_pure_jax"]
    copy_version(untrained_mlp, tmp_path / "models" / "mnist_pure_jax")
    out = make("serve", *variables)
    assert "with the local server (SERVER=local)" in out
    assert "version 1 is AVAILABLE" in out
    try:
        status = make("status", *variables)
        ports = dict(v.split("=", 1) for v in variables)
        assert f"on gRPC port {ports['GRPC_PORT']} and REST port {ports['REST_PORT']}," in status
        assert "version 1: AVAILABLE" in status
        # A second server is refused, and the first one keeps running.
        second = run(["make", "serve", *variables])
        assert second.returncode != 0 and "already running" in second.stderr
        os.kill(int((tmp_path / "run" / "server.pid").read_text()), 0)
    finally:
        out = make("stop", *variables)
    assert "Stopped the local server" in out
    assert not (tmp_path / "run" / "server.pid").exists()


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


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    variables = [*server_vars(tmp_path), f"WARMUP_BATCH_SIZES={WARMUP_BATCH_SIZES}"]
    result = run(["make", "demo", "MOCK_DATA=1", "NUM_EPOCHS=1", "COUNT_IMAGES=64", *variables])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Exported mnist_flax version 1" in result.stderr
    assert "gRPC: 64 images in 4 requests (0 failed)" in result.stdout
    assert "REST: 64 images in 4 requests (0 failed)" in result.stdout
    assert "Stopped the local server" in result.stdout
    assert not (tmp_path / "run" / "server.pid").exists()
    # A quiet terminal, a screenful in all (the start-up filter: tests/tools/test_quiet_startup.py).
    output = result.stdout + result.stderr
    assert "Traceback" not in output and len(output.splitlines()) <= 40, output


# ---- setup, and the Docker image ------------------------------------------------------


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
    assert result.returncode != 0 and "missing or older than Python 3.11" in result.stderr
    old = tmp_path / "python3.10"
    old.write_text("#!/bin/sh\nexit 1  # What Python 3.10 answers to the version check.\n")
    old.chmod(0o755)
    result = run(["make", "setup", f"PYTHON3={old}", venv])
    assert result.returncode != 0 and "missing or older than Python 3.11" in result.stderr
    no_venv = tmp_path / "python3-without-venv"
    no_venv.write_text(
        f'#!/bin/sh\ncase "$*" in *"import venv"*) exit 1;; esac\nexec {sys.executable} "$@"\n'
    )
    no_venv.chmod(0o755)
    result = run(["make", "setup", f"PYTHON3={no_venv}", venv])
    assert result.returncode != 0 and "apt-get install python3-venv" in result.stderr
    assert not (tmp_path / "venv").exists()


@pytest.mark.parametrize(
    "variables, image",
    [
        pytest.param([], DEFAULT_IMAGE, id="default"),
        pytest.param(["TF_SERVING_VERSION="], DEFAULT_IMAGE, id="empty"),
        pytest.param(["TF_SERVING_VERSION=2.19"], "tensorflow/serving:2.19.1", id="release"),
        pytest.param(["TF_SERVING_VERSION=2.18.0"], "tensorflow/serving:2.18.0", id="full-number"),
        pytest.param(["TF_SERVING_VERSION=nightly"], "tensorflow/serving:nightly", id="nightly"),
        # No image: its number, which setup and serve refuse before Docker sees it.
        pytest.param(["TF_SERVING_VERSION=2.21"], "tensorflow/serving:2.21", id="no-image-yet"),
        pytest.param(["GPU=1"], "tensorflow/serving:2.20.0-gpu", id="gpu"),
        pytest.param(
            ["TF_SERVING_VERSION=nightly", "GPU=1"], "tensorflow/serving:nightly-gpu", id="n-gpu"
        ),
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


def test_a_release_exported_after_sourcing_env_sh_picks_its_image():
    script = ". ./env.sh; export TF_SERVING_VERSION=2.16 GPU=1; make -s env"
    result = run(["bash", "-c", script], env={"TF_SERVING_VERSION": "", "GPU": ""})
    assert result.returncode == 0, result.stderr
    assert "DOCKER_IMAGE=tensorflow/serving:2.16.1-gpu" in result.stdout.splitlines()


def test_the_default_release_and_its_image_come_from_the_release_table(tmp_path):
    # env.sh reads serving/releases.tsv: a changed table changes the default and the image.
    (tmp_path / "serving").mkdir()
    (tmp_path / "env.sh").write_text((ROOT / "env.sh").read_text())
    (tmp_path / "serving" / "releases.tsv").write_text(
        "# release\tcalling_convention\tstablehlo\timage\n"
        "2.18\t9\t1.7.3\t2.18.4\n2.19\t9\t1.9.1\t2.19.7\n2.20\t10\t1.12.1\t-\n\n"
    )

    def sourced(version):
        return subprocess.run(
            ["sh", "-c", '. ./env.sh && echo "$TF_SERVING_VERSION $DOCKER_IMAGE"'],
            cwd=tmp_path,
            env={"PATH": os.environ["PATH"], "TF_SERVING_VERSION": version},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()

    assert sourced("") == ["2.19", "tensorflow/serving:2.19.7"]
    assert sourced("2.18") == ["2.18", "tensorflow/serving:2.18.4"]
    assert sourced("nightly") == ["nightly", "tensorflow/serving:nightly"]


def test_serve_docker_without_an_engine_says_what_to_do(tmp_path, untrained_mlp):
    """A `docker` client whose engine does not answer: the advice, not Docker's own error."""
    (tmp_path / "bin").mkdir()
    docker = tmp_path / "bin" / "docker"
    docker.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "docker.log"}\nexit 1\n')
    docker.chmod(0o755)
    variables = server_vars(tmp_path, server="docker")
    variables[0] = f"MODEL_PATH={os.path.dirname(os.path.dirname(untrained_mlp))}"
    path = f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"
    result = run(
        ["make", "--no-print-directory", "serve", "MODEL=mnist_pure_jax", *variables],
        env={"PATH": path},
    )
    assert result.returncode != 0
    assert "error: SERVER=docker, but no Docker engine answers" in result.stderr
    assert "leave SERVER out" in result.stderr
    assert (tmp_path / "docker.log").read_text().splitlines() == ["info"]  # Never `run`.


# ---- real images: CORS, IMAGES, digits, web -------------------------------------------


def test_make_n_serve_cors_passes_tensorflow_servings_flag_to_every_kind(tmp_path):
    (tmp_path / "models" / "mnist_flax" / "1").mkdir(parents=True)
    for kind, start in [("docker", "docker run"), ("binary", "nohup"), ("local", "nohup")]:
        lines = dry_run("serve", "CORS=1", *server_vars(tmp_path, server=kind))
        (command,) = [line for line in lines if line.startswith(start)]
        args = shlex.split(command.split(" > ")[0])
        assert args[-1] == "--rest_api_enable_cors_support=true", (kind, args)
        without = dry_run("serve", *server_vars(tmp_path, server=kind))
        assert "--rest_api_enable_cors_support" not in " ".join(without)


def test_make_n_request_images_sends_the_files():
    (command,) = [
        c
        for c in dry_run("request", "IMAGES=digits/*.png", "PROTOCOL=rest")
        if "model_server_request.py" in c
    ]
    assert walkthrough_args(command)[-1] == "--images=digits/*.png"
    assert "--nouse_grpc" in command


def test_make_n_digits_and_web(tmp_path):
    (digits,) = [c for c in dry_run("digits", "MOCK_DATA=1") if "sample_digits" in c]
    assert walkthrough_args(digits)[1:] == [
        "-m",
        "tools.sample_digits",
        "--out=digits",
        "--mock_data",
    ]
    (web,) = [c for c in dry_run("web", "WEB_PORT=9999") if "http.server" in c]
    assert shlex.split(web)[1:] == [
        "-m", "http.server", "--bind", "127.0.0.1", "--directory", "web", "9999",
    ]  # fmt: skip
    assert "web" in make("help") and "digits" in make("help")
