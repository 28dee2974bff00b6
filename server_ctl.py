"""The Makefile's bookkeeping: checks around `make serve`, and `make clean`.

    python server_ctl.py check  --model_name=M --model_base_path=DIR --ports=8500,8501
    python server_ctl.py wait   --model_name=M --rest_port=8501 [--pid=P] [--log=FILE]
    python server_ctl.py status --model_name=M --rest_port=8501
    python server_ctl.py clean  --exports_path=DIR

The same for all three kinds of server (Docker, tensorflow_model_server, the
local one): it only uses the file system and TensorFlow Serving's REST API.
Each failure prints what is wrong and what to do, and exits with status 1.

`LocalServer` runs local_model_server.py on free ports, for the tests and the
benchmark.
"""

import contextlib
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

import requests
from absl import app, flags

_MODEL_NAME = flags.DEFINE_string("model_name", None, "The served model's name.")
_MODEL_BASE_PATH = flags.DEFINE_string("model_base_path", None, "check: the model's directory.")
_PORTS = flags.DEFINE_list("ports", [], "check: ports that must be free.")
_HOST = flags.DEFINE_string("host", "localhost", "Where the server listens.")
_REST_PORT = flags.DEFINE_integer("rest_port", 8501, "wait, status: the server's REST port.")
_PID = flags.DEFINE_integer("pid", None, "wait: the server's process; stop waiting if it exits.")
_CONTAINER = flags.DEFINE_string(
    "container", None, "wait: the server's Docker container; stop waiting if it exits."
)
_GPU = flags.DEFINE_boolean("gpu", False, "check: the server runs the model on a GPU.")
_SERVING_RELEASE = flags.DEFINE_string(
    "serving_release", "", "check: the TensorFlow Serving release that will serve (2.19, 2.19.1)."
)
_EXPORTS_PATH = flags.DEFINE_string(
    "exports_path", None, "clean: the directory of the exports (MODEL_PATH)."
)
_LOG = flags.DEFINE_string("log", None, "wait: the server's log, whose tail a failure shows.")
_TIMEOUT = flags.DEFINE_float("timeout", 300, "wait: seconds to wait for AVAILABLE.")


def check() -> None:
    """The model directory holds a version, and the ports are free."""
    base = _MODEL_BASE_PATH.value
    if not os.path.isdir(base):
        fail(f"{base} does not exist. Export a model first: make export MODEL={_MODEL_NAME.value}")
    import saved_model_lib  # The servers' rule of what a version is (imports TensorFlow).

    versions = saved_model_lib.version_dirs(base)
    if not versions:
        fail(f"{base} holds no version directory (1, 2, ...). Export one first: make export")
    newest = max(versions)
    _check_export_fits(versions[newest], str(newest))
    for port in _PORTS.value:
        with socket.socket() as s:
            if s.connect_ex((_HOST.value, int(port))) == 0:
                fail(
                    f"port {port} is in use on {_HOST.value}: another model server may be "
                    "running (make status; make stop), or pick other ports "
                    "(make serve GRPC_PORT=... REST_PORT=...)."
                )


def _check_export_fits(version_dir: str, version: str) -> None:
    """The newest version was exported for this server's device and release, as far as it says."""
    import saved_model_lib

    info = saved_model_lib.read_export_info(version_dir)
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
            or saved_model_lib.release_key(saved_model_lib.release_of(exported))
            > saved_model_lib.release_key(saved_model_lib.release_of(serving))
        )
    except saved_model_lib.ExportFormatError as e:
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

    Only versions whose export_info.json names saved_model_lib.EXPORTED_BY,
    and staging directories of exports that were killed: a running export
    holds a lock on its own. Directories are removed only when this emptied
    them; ones that were empty already are someone else's.
    """
    import saved_model_lib  # Imports TensorFlow (seconds): only this command needs it.

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
            *(v for v in saved_model_lib.version_dirs(model_dir).values() if _exported_here(v)),
            *saved_model_lib.stale_staging_dirs(model_dir),
        ]
        for directory in removed:
            print(f"rm -r {directory}")
            shutil.rmtree(directory)
        for staging in sorted(pathlib.Path(model_dir).glob(saved_model_lib.STAGING_PREFIX + "*")):
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
    import saved_model_lib

    return (
        not os.path.islink(version_dir)
        and saved_model_lib.read_export_info(version_dir).get("exported_by")
        == saved_model_lib.EXPORTED_BY
        and os.path.isfile(os.path.join(version_dir, "saved_model.pb"))
    )


def wait() -> None:
    """Polls the model's status until a version is AVAILABLE."""
    deadline = time.monotonic() + _TIMEOUT.value
    last = "no answer yet"
    while time.monotonic() < deadline:
        if not _alive():
            fail(f"the model server exited before the model became AVAILABLE.{_log_tail()}")
        try:
            statuses = _status()
        except (requests.RequestException, ValueError) as e:
            statuses, last = [], f"no answer ({type(e).__name__})"
        for status in statuses:
            if status["state"] == "AVAILABLE":
                print(f"Model {_MODEL_NAME.value} version {status['version']} is AVAILABLE.")
                return
        if statuses:
            last = _describe(statuses)
        time.sleep(0.5)
    fail(f"the model did not become AVAILABLE within {_TIMEOUT.value:g} s ({last}).{_log_tail()}")


def status() -> None:
    try:
        statuses = _status()
    except requests.ConnectionError:
        fail(f"no model server answers at {_HOST.value}:{_REST_PORT.value}. Start one: make serve")
    except (requests.RequestException, ValueError) as e:
        fail(str(e))
    print(f"Model {_MODEL_NAME.value} at {_HOST.value}:{_REST_PORT.value}:")
    print(_describe(statuses))


def _status(url: str | None = None) -> list[dict]:
    """The model's version statuses from the REST API at `url` (default: from the flags)."""
    url = url or f"http://{_HOST.value}:{_REST_PORT.value}/v1/models/{_MODEL_NAME.value}"
    response = requests.get(url, timeout=5)
    payload = response.json()
    if response.status_code == 404:
        return []  # Known to the server only once it found a version.
    if response.status_code != 200:
        raise ValueError(f"HTTP {response.status_code}: {payload.get('error', payload)}")
    return payload["model_version_status"]


def _describe(statuses: list[dict]) -> str:
    lines = []
    for s in sorted(statuses, key=lambda s: -int(s["version"])):
        error = s.get("status", {}).get("error_message")
        lines.append(f"  version {s['version']}: {s['state']}" + (f" ({error})" if error else ""))
    return "\n".join(lines) or "  no versions yet"


def _alive() -> bool:
    if _PID.value:
        try:
            os.kill(_PID.value, 0)
        except ProcessLookupError:
            return False
    if _CONTAINER.value:
        import subprocess

        result = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Running}}", _CONTAINER.value],
            capture_output=True,
            text=True,
        )
        return result.stdout.strip() == "true"
    return True


def _log_tail(lines: int = 20) -> str:
    if not _LOG.value or not os.path.exists(_LOG.value):
        return ""
    with open(_LOG.value, errors="replace") as f:
        tail = f.readlines()[-lines:]
    return f"\nLast lines of {_LOG.value}:\n" + "".join("  " + line for line in tail)


def fail(message: str) -> None:
    sys.exit(f"error: {message}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


class LocalServer:
    """local_model_server.py in a subprocess on free ports, its output in `log_path`."""

    def __init__(self, model_name: str, base_path, log_path, *extra_flags: str):
        self.model_name, self.base_path = model_name, str(base_path)
        self.grpc_port, self.rest_port = free_port(), free_port()
        self.grpc_address = f"localhost:{self.grpc_port}"
        self.rest_url = f"http://localhost:{self.rest_port}/v1/models/{model_name}"
        self.log_path = pathlib.Path(log_path)
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "local_model_server.py",
                    f"--port={self.grpc_port}",
                    f"--rest_api_port={self.rest_port}",
                    f"--model_name={model_name}",
                    f"--model_base_path={self.base_path}",
                    *extra_flags,
                ],
                cwd=pathlib.Path(__file__).resolve().parent,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def status(self) -> dict[str, dict]:
        """version -> its status entry, as the REST API reports it ({} before any)."""
        return {s["version"]: s for s in _status(self.rest_url)}

    def wait_for(self, version: int, state: str = "AVAILABLE", timeout: float = 120) -> dict:
        """Waits until `version` is in `state`; returns its status entry."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log()}")
            with contextlib.suppress(requests.ConnectionError):
                entry = self.status().get(str(version))
                if entry and entry["state"] == state:
                    return entry
            time.sleep(0.05)
        raise TimeoutError(f"version {version} not {state} within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> int:
        """SIGTERM, as `make stop` sends; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        return self.process.returncode


COMMANDS = {"check": check, "wait": wait, "status": status, "clean": clean}


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[1] not in COMMANDS:
        raise app.UsageError(f"usage: server_ctl.py {{{'|'.join(COMMANDS)}}} [flags]")
    if argv[1] != "clean" and not _MODEL_NAME.value:
        raise app.UsageError(f"server_ctl.py {argv[1]} needs --model_name")
    COMMANDS[argv[1]]()


if __name__ == "__main__":
    app.run(main)
