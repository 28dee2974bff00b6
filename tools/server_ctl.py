"""The Makefile's bookkeeping: checks around `make serve`, `make stop`, and `make clean`.

    python -m tools.server_ctl running --pid_file=F --kind_file=F --container=C
    python -m tools.server_ctl pick    --server=auto
    python -m tools.server_ctl docker_engine
    python -m tools.server_ctl version_dir --model_base_path=DIR [--version=N]
    python -m tools.server_ctl check   --model_name=M --model_base_path=DIR --ports=8500,8501
    python -m tools.server_ctl wait    --model_name=M --rest_port=8501 [--pid=P] [--log=FILE]
    python -m tools.server_ctl status  --model_name=M --rest_port=8501
    python -m tools.server_ctl stop    --pid_file=F --kind_file=F --container=C
    python -m tools.server_ctl clean   --exports_path=DIR
    python -m tools.server_ctl config  --model_config_file=F --exports_path=DIR --out=F
    python -m tools.server_ctl reload  --model_config_file=F --exports_path=DIR --out=F \
        --kind_file=F

The Makefile keeps the walkthrough's commands (`docker run ...`,
`tensorflow_model_server ...`, `saved_model_cli show ...`) and the files that
name the server it started (--pid_file, --kind_file); this does the rest: is
one running, which kind to start, does a Docker engine answer, which version
directory to inspect, is it AVAILABLE, stop it and nothing else. What a
version is comes from serving/versions.py, the rule TensorFlow Serving reads;
nothing here imports TensorFlow or JAX.

The same for all three kinds of server (Docker, tensorflow_model_server, the
local one): it only uses the file system and TensorFlow Serving's REST API.
Each failure prints what is wrong and what to do, and exits with status 1.

"""

import contextlib
import dataclasses
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import requests
from absl import app, flags

from local_server.options import ServerOptions
from serving import model_status, releases, versions

# The kinds of server `make serve` starts (its serve-KIND targets).
SERVER_KINDS = ("docker", "binary", "local")
# What a model server's command line holds: a pid that no longer shows it was reused.
_SERVER_COMMAND = re.compile(r"-m local_server|tensorflow_model_server")
STOP_GRACE_SECONDS = 10  # SIGTERM, then SIGKILL after this long.

_MODEL_NAME = flags.DEFINE_string("model_name", None, "The served model's name.")
_MODEL_BASE_PATH = flags.DEFINE_string(
    "model_base_path", None, "check, version_dir: the model's directory."
)
_VERSION = flags.DEFINE_integer(
    "version", None, "version_dir: the version (default: the newest).", lower_bound=1
)
_PORTS = flags.DEFINE_list("ports", [], "check: ports that must be free.")
_HOST = flags.DEFINE_string("host", "localhost", "Where the server listens.")
_REST_PORT = flags.DEFINE_integer(
    "rest_port", ServerOptions.rest_api_port, "wait, status: the server's REST port."
)
_PID = flags.DEFINE_integer("pid", None, "wait: the server's process; stop waiting if it exits.")
_CONTAINER = flags.DEFINE_string(
    "container",
    None,
    "wait: the server's Docker container, stop waiting if it exits; running, stop: the "
    "container `make serve` starts.",
)
_GPU = flags.DEFINE_boolean("gpu", False, "check: the server runs the model on a GPU.")
_SERVING_RELEASE = flags.DEFINE_string(
    "serving_release", "", "check: the TensorFlow Serving release that will serve (2.19, 2.19.1)."
)
_EXPORTS_PATH = flags.DEFINE_string(
    "exports_path", None, "clean, config, reload: the directory of the exports (MODEL_PATH)."
)
_LOG = flags.DEFINE_string("log", None, "wait: the server's log, whose tail a failure shows.")
_TIMEOUT = flags.DEFINE_float("timeout", 300, "wait: seconds to wait for AVAILABLE.")
_PID_FILE = flags.DEFINE_string(
    "pid_file", None, "running, stop: the file holding the pid of the server `make serve` started."
)
_KIND_FILE = flags.DEFINE_string(
    "kind_file", None, "running, stop: the file holding the kind of that server (docker, ...)."
)
_SERVER = flags.DEFINE_string(
    "server",
    "auto",
    "pick: the kind of server, auto or one of SERVER_KINDS; auto picks the first of "
    "docker, binary, local that can run.",
)


_MODEL_CONFIG_FILE = flags.DEFINE_string(
    "model_config_file",
    None,
    "check, wait: the server serves this model config's models; config, reload: the config "
    "whose base paths under /models (the container's mount of MODEL_PATH) to rewrite.",
)
_OUT = flags.DEFINE_string("out", None, "config, reload: where the host's copy of the config goes.")
_GRPC_PORT = flags.DEFINE_integer(
    "grpc_port", ServerOptions.port, "reload: the server's gRPC port."
)


def check() -> None:
    """The model directory holds a version (one model), and the ports are free."""
    if not _MODEL_CONFIG_FILE.value:
        _check_model()
    for port in _PORTS.value:
        with socket.socket() as s:
            if s.connect_ex((_HOST.value, int(port))) == 0:
                fail(
                    f"port {port} is in use on {_HOST.value}: another model server may be "
                    "running (make status; make stop), or pick other ports "
                    "(make serve GRPC_PORT=... REST_PORT=...)."
                )


def _check_model() -> None:
    base = _MODEL_BASE_PATH.value
    if not os.path.isdir(base):
        fail(f"{base} does not exist. Export a model first: make export MODEL={_MODEL_NAME.value}")

    found = versions.version_dirs(base)
    if not found:
        fail(f"{base} holds no version directory (1, 2, ...). Export one first: make export")
    newest = max(found)
    _check_export_fits(found[newest], str(newest))


def print_version_dir() -> None:
    """Prints the directory of --version, or of the newest version."""
    base, version = _MODEL_BASE_PATH.value, _VERSION.value

    try:
        print(versions.find_version(base, version)[1])
    except LookupError:
        if version:
            fail(f"no SavedModel at {base}/{version}. Run 'make export', or set MODEL_VERSION.")
        fail(f"no version under {base}. Run 'make export' first.")


def _read_config():
    from serving import model_config  # Imports protobuf's messages: only these commands.
    from serving.status import ServingError

    try:
        return model_config.read(_MODEL_CONFIG_FILE.value)
    except ServingError as e:
        fail(f"{e}. Fix the file (TensorFlow Serving's ModelServerConfig text format).")


def write_config() -> None:
    """config: writes --out, the host's copy of --model_config_file (atomically)."""
    _write_host_copy(_read_config())


def _write_host_copy(config):
    """`config` with its /models base paths under MODEL_PATH, written to --out; returns it."""
    from serving import model_config

    config = model_config.rebase(config, os.path.abspath(_EXPORTS_PATH.value))
    os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
    header = (
        f"# Generated from {_MODEL_CONFIG_FILE.value} for MODEL_PATH={_EXPORTS_PATH.value} "
        "by `make serve` and `make reload`: edit that file, not this one.\n"
    )
    model_config.write(config, _OUT.value, header)
    return config


def reload() -> None:
    """Sends the config to the running server (ModelService.HandleReloadConfigRequest)."""
    import grpc
    from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc

    config = _read_config()
    started = Started.read(_PID_FILE.value, _KIND_FILE.value)
    if started is None:
        fail("no server started by `make serve` runs: make serve MODEL_CONFIG=...")
    if started.kind != "docker":
        config = _write_host_copy(config)  # What the server polls, and what it gets now.
    request = model_management_pb2.ReloadConfigRequest(config=config)
    address = f"{_HOST.value}:{_GRPC_PORT.value}"
    with grpc.insecure_channel(address) as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        try:
            stub.HandleReloadConfigRequest(request, timeout=_TIMEOUT.value)
        except grpc.RpcError as e:
            advice = ""
            if "not currently available" in (e.details() or ""):
                advice = (
                    " A label moves only to a loaded version: list the version in the "
                    "model_version_policy first, `make reload`, then move the label and "
                    "`make reload` again."
                )
            fail(f"the server refused the config: {e.code().name}: {e.details()}.{advice}")
    labels = [
        f"{m.name}: " + ", ".join(f"{k}={v}" for k, v in sorted(m.version_labels.items()))
        for m in config.model_config_list.config
        if m.version_labels
    ]
    names = ", ".join(m.name for m in config.model_config_list.config)
    print(
        f"The server applied {_MODEL_CONFIG_FILE.value}: models {names}"
        + (f"; labels {'; '.join(labels)}" if labels else "")
        + "."
    )


def _check_export_fits(version_dir: str, version: str) -> None:
    """The newest version was exported for this server's device and release, as far as it says."""

    info = versions.read_export_info(version_dir)
    if not info:
        return  # Not exported by this project: nothing recorded to check.
    platforms = info.get("platforms") or ["cpu"]
    if _GPU.value and "cuda" not in platforms:
        fail(
            f"version {version} was exported for {','.join(platforms)} only, and a GPU server "
            "answers each request with 'The current platform CUDA is not among the platforms "
            f"required by the module: [{', '.join(p.upper() for p in platforms)}]'. Export for "
            "both: make export PLATFORMS=cpu,cuda"
        )
    serving, exported = _SERVING_RELEASE.value, info.get("tf_serving_version")
    try:
        newer = bool(serving) and (
            not exported
            or releases.release_key(releases.release_of(exported))
            > releases.release_key(releases.release_of(serving))
        )
    except releases.ReleaseError as e:
        fail(str(e))
    if newer:
        made_for = f"TensorFlow Serving {exported}" if exported else "JAX's newest format"
        print(
            f"warning: version {version} was exported for {made_for}, which TensorFlow Serving "
            f"{serving} may fail to run. Check: make compat TF_SERVING_VERSION={serving}; or "
            f"export for it: make export TF_SERVING_VERSION={serving}",
            file=sys.stderr,
        )


def clean() -> None:
    """Deletes what `make export` wrote under --exports_path, and what that left empty.

    Only versions whose export_info.json names versions.EXPORTED_BY,
    and staging directories of exports that were killed: a running export
    holds a lock on its own. Directories are removed only when this emptied
    them; ones that were empty already are someone else's.
    """

    given = _EXPORTS_PATH.value or ""
    path = os.path.realpath(given) if given else ""
    if path in ("", "/", os.path.realpath(os.path.expanduser("~"))):
        fail(f"refusing to clean MODEL_PATH='{given}': give the directory of your exports.")
    if not os.path.isdir(path):
        print(f"Nothing to clean: {path} does not exist.")
        return
    emptied = False
    for name in sorted(os.listdir(path)):
        model_dir = os.path.join(path, name)
        if os.path.islink(model_dir) or not os.path.isdir(model_dir):
            continue
        removed = [
            *(v for v in versions.version_dirs(model_dir).values() if _exported_here(v)),
            *versions.stale_staging_dirs(model_dir),
        ]
        for directory in removed:
            print(f"rm -r {directory}")
            shutil.rmtree(directory)
        for staging in sorted(pathlib.Path(model_dir).glob(versions.STAGING_PREFIX + "*")):
            print(f"Left {staging}: an export that is still running writes it.")
        if removed and not os.listdir(model_dir):
            print(f"rmdir {model_dir}")
            os.rmdir(model_dir)
            emptied = True
    if emptied and not os.listdir(path):
        print(f"rmdir {path}")
        os.rmdir(path)


def _exported_here(version_dir: str) -> bool:
    """Whether `make export` wrote this version: its record says so, and it is a SavedModel."""
    return (
        not os.path.islink(version_dir)
        and versions.exported_here(version_dir)
        and os.path.isfile(os.path.join(version_dir, "saved_model.pb"))
    )


def wait() -> None:
    """Polls the status until a version of the model (of each configured model) is AVAILABLE."""
    names = [_MODEL_NAME.value]
    if _MODEL_CONFIG_FILE.value:
        names = [m.name for m in _read_config().model_config_list.config]
    for name in names:
        _wait_for(name)


def _wait_for(name: str) -> None:
    url = f"http://{_HOST.value}:{_REST_PORT.value}/v1/models/{name}"
    try:
        available = model_status.wait_for(url, timeout=_TIMEOUT.value, alive=_alive, interval=0.5)
    except RuntimeError:
        fail(f"the model server exited before the model became AVAILABLE.{_log_tail()}")
    except TimeoutError as e:
        fail(
            f"model {name} did not become AVAILABLE within {_TIMEOUT.value:g} s ({e}).{_log_tail()}"
        )
    versions = ", ".join(sorted((str(s["version"]) for s in available), key=int))
    verb = "is" if len(available) == 1 else "are"
    print(f"Model {name} version {versions} {verb} AVAILABLE.")


def status() -> None:
    try:
        statuses = model_status.version_states(
            f"http://{_HOST.value}:{_REST_PORT.value}/v1/models/{_MODEL_NAME.value}"
        )
    except requests.ConnectionError:
        fail(f"no model server answers at {_HOST.value}:{_REST_PORT.value}. Start one: make serve")
    except (requests.RequestException, ValueError) as e:
        fail(str(e))
    print(f"Model {_MODEL_NAME.value} at {_HOST.value}:{_REST_PORT.value}:")
    print(model_status.describe(statuses))


def _alive() -> bool:
    """wait: whether the --pid process or the --container still runs."""
    if _PID.value and not _alive_pid(_PID.value):
        return False
    if _CONTAINER.value:
        return _container_running(_CONTAINER.value)
    return True


def _log_tail(lines: int = 20) -> str:
    if not _LOG.value or not os.path.exists(_LOG.value):
        return ""
    with open(_LOG.value, errors="replace") as f:
        tail = f.readlines()[-lines:]
    return f"\nLast lines of {_LOG.value}:\n" + "".join("  " + line for line in tail)


def fail(message: str) -> None:
    sys.exit(f"error: {message}")


# ---- The server `make serve` started ---------------------------------------------


@dataclasses.dataclass(frozen=True)
class Started:
    """What the run files say `make serve` started: a kind, and a pid or a container."""

    kind: str
    pid: int | None

    @classmethod
    def read(cls, pid_file: str, kind_file: str) -> "Started | None":
        kind = _read(kind_file)
        pid = _read(pid_file)
        if not kind and not pid:
            return None
        return cls(kind or "model", int(pid) if pid and pid.isdigit() else None)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _alive_pid(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # Alive, someone else's: checked by _is_model_server.
    return True


def _is_model_server(pid: int) -> bool:
    """Whether process `pid` runs a model server: a pid file can outlive its server
    (a reboot, a kill -9), and its pid be reused by any other process."""
    result = subprocess.run(["ps", "-o", "args=", "-p", str(pid)], capture_output=True, text=True)
    return result.returncode == 0 and bool(_SERVER_COMMAND.search(result.stdout))


def _container_running(name: str) -> bool:
    if not shutil.which("docker"):
        return False
    result = subprocess.run(
        ["docker", "ps", "-q", "-f", f"name=^{name}$"], capture_output=True, text=True
    )
    return result.returncode == 0 and bool(result.stdout.strip())


def _forget(*paths: str) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def running() -> None:
    """`make serve`'s first step: drop a stale pid file; refuse if a server runs."""
    pid_file, kind_file = _PID_FILE.value, _KIND_FILE.value
    started = Started.read(pid_file, kind_file)
    if started and started.pid and not (_alive_pid(started.pid) and _is_model_server(started.pid)):
        print(
            f"Removing the stale {pid_file} (process {started.pid} is gone, or is no model server)."
        )
        _forget(pid_file, kind_file)
        return
    docker_runs = started and started.kind == "docker" and _container_running(_CONTAINER.value)
    if started and (started.pid or docker_runs):
        fail(
            f"a model server started by 'make serve' is already running ({started.kind} server, "
            f"pid {started.pid or ''}). See it with 'make status'; stop it with 'make stop'."
        )


def pick() -> None:
    """Prints the kind of server to start, then why: "local no Docker engine answers ..."."""
    kind, why = _SERVER.value, f"SERVER={_SERVER.value}"
    if kind not in ("auto", *SERVER_KINDS):
        fail(f"SERVER={kind}; choose auto, {', '.join(SERVER_KINDS[:-1])} or {SERVER_KINDS[-1]}.")
    if kind == "auto":
        if _docker_engine():
            kind, why = "docker", "a Docker engine answers"
        elif shutil.which("tensorflow_model_server"):
            kind, why = "binary", "tensorflow_model_server is on PATH"
        else:
            kind = "local"
            why = "no Docker engine answers and tensorflow_model_server is not on PATH"
    print(kind, why)


def docker_engine() -> None:
    """Exits with 0 when a Docker engine answers, with 1 (silently) when none does."""
    sys.exit(0 if _docker_engine() else 1)


def _docker_engine() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def stop() -> None:
    """Stops what the run files name, and nothing else; TERM, then KILL after a grace."""
    pid_file, kind_file = _PID_FILE.value, _KIND_FILE.value
    started = Started.read(pid_file, kind_file)
    try:
        if started is None:
            print("No model server started by 'make serve' is running.")
        elif started.kind == "docker":
            subprocess.run(["docker", "stop", _CONTAINER.value], capture_output=True, check=True)
            print(f"Stopped container {_CONTAINER.value}.")
        elif started.pid is None or not _alive_pid(started.pid):
            print(
                f"The {started.kind} server (pid {started.pid}) was not running; removed its "
                "stale pid file."
            )
        elif not _is_model_server(started.pid):
            print(
                f"Process {started.pid} is not a model server (its pid was reused); left it "
                "alone and removed the stale pid file."
            )
        else:
            _terminate(started.pid)
            print(f"Stopped the {started.kind} server (pid {started.pid}).")
    finally:
        _forget(pid_file, kind_file)


def _terminate(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while time.monotonic() < deadline:
        if not _alive_pid(pid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


COMMANDS = {
    "running": running,
    "pick": pick,
    "docker_engine": docker_engine,
    "version_dir": print_version_dir,
    "check": check,
    "wait": wait,
    "status": status,
    "stop": stop,
    "clean": clean,
    "config": write_config,
    "reload": reload,
}
# The subcommands that act on one model.
_NEED_MODEL = ("pick", "check", "wait", "status")


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[1] not in COMMANDS:
        raise app.UsageError(f"usage: python -m tools.server_ctl {{{'|'.join(COMMANDS)}}} [flags]")
    if argv[1] in ("running", "stop") and not (_PID_FILE.value and _KIND_FILE.value):
        raise app.UsageError(f"tools.server_ctl {argv[1]} needs --pid_file and --kind_file")
    if argv[1] == "version_dir" and not _MODEL_BASE_PATH.value:
        raise app.UsageError("tools.server_ctl version_dir needs --model_base_path")
    if argv[1] in _NEED_MODEL and not _MODEL_NAME.value:
        raise app.UsageError(f"tools.server_ctl {argv[1]} needs --model_name")
    if argv[1] in ("config", "reload") and not (
        _MODEL_CONFIG_FILE.value and _EXPORTS_PATH.value and _OUT.value
    ):
        raise app.UsageError(
            f"tools.server_ctl {argv[1]} needs --model_config_file, --exports_path and --out"
        )
    if argv[1] == "reload" and not (_PID_FILE.value and _KIND_FILE.value):
        raise app.UsageError("tools.server_ctl reload needs --pid_file and --kind_file")
    COMMANDS[argv[1]]()


if __name__ == "__main__":
    app.run(main)
