"""Shared helpers: the repository on sys.path, absl flags parsed, exports, servers."""

import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
from absl import flags
from absl.testing import flagsaver

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The scripts define their flags at import; import them once so that tests can
# set those flags with absl's flagsaver.
import saved_model_main  # noqa: E402

flags.FLAGS.mark_as_parsed()


def export_model(model_path, **overrides) -> str:
    """Trains on mock data and exports, in this process; returns the version path."""
    settings = dict(mock_data=True, num_epochs=1, model_path=str(model_path), show_model=False)
    settings.update(overrides)
    with flagsaver.flagsaver(**settings):
        return saved_model_main.train_and_export()


@pytest.fixture
def export(tmp_path):
    """export(**flags) -> version path, under tmp_path."""
    return lambda **overrides: export_model(tmp_path, **overrides)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Runs a command in the repository with the venv's Python first on PATH."""
    env = dict(os.environ, **kwargs.pop("env", {}))
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


class LocalServer:
    """local_model_server.py in a subprocess, on free ports."""

    def __init__(self, model_name: str, base_path, *extra_flags: str):
        self.model_name, self.base_path = model_name, str(base_path)
        self.grpc_port, self.rest_port = free_port(), free_port()
        self.grpc_address = f"localhost:{self.grpc_port}"
        self.rest_url = f"http://localhost:{self.rest_port}/v1/models/{model_name}"
        self.log_path = pathlib.Path(self.base_path).parent / f"server-{self.rest_port}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115  (closed in stop)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "local_model_server.py",
                f"--port={self.grpc_port}",
                f"--rest_api_port={self.rest_port}",
                f"--model_name={model_name}",
                f"--model_base_path={self.base_path}",
                "--file_system_poll_wait_seconds=0.2",
                *extra_flags,
            ],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def status(self) -> dict[str, dict]:
        """version -> its status entry, as the REST API reports it."""
        response = requests.get(self.rest_url, timeout=5)
        if response.status_code == 404:
            return {}
        return {s["version"]: s for s in response.json()["model_version_status"]}

    def wait_for(self, version: int, state: str = "AVAILABLE", timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"server exited:\n{self.log()}"
            with contextlib.suppress(requests.ConnectionError):
                entry = self.status().get(str(version))
                if entry and entry["state"] == state:
                    return entry
            time.sleep(0.1)
        raise AssertionError(f"version {version} not {state} in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        self._log.close()
        return self.process.returncode


@contextlib.contextmanager
def local_server(model_name: str, base_path, *extra_flags: str, version: int | None = 1):
    """A started LocalServer, serving `version` (None: do not wait), stopped on exit."""
    server = LocalServer(model_name, base_path, *extra_flags)
    try:
        if version is not None:
            server.wait_for(version)
        yield server
    finally:
        code = server.stop()
    assert code == 0, f"server exit code {code}:\n{server.log()}"
