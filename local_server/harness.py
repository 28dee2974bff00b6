"""The local server in a subprocess on free ports: how the tests and the benchmark start one."""

import pathlib
import signal
import socket
import subprocess
import sys

from serving import model_status

ROOT = pathlib.Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


class LocalServer:
    """`python -m local_server` on free ports, its output in `log_path`."""

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
                    "-m",
                    "local_server",
                    f"--port={self.grpc_port}",
                    f"--rest_api_port={self.rest_port}",
                    f"--model_name={model_name}",
                    f"--model_base_path={self.base_path}",
                    *extra_flags,
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def status(self) -> dict[str, dict]:
        """version -> its status entry, as the REST API reports it ({} before any)."""
        return {s["version"]: s for s in model_status.version_states(self.rest_url)}

    def wait_for(self, version: int, state: str = "AVAILABLE", timeout: float = 120) -> dict:
        """Waits until `version` is in `state`; returns its status entry."""
        try:
            (entry,) = model_status.wait_for(
                self.rest_url,
                version=version,
                state=state,
                timeout=timeout,
                alive=lambda: self.process.poll() is None,
                interval=0.05,
            )
        except RuntimeError as e:
            raise RuntimeError(f"the server exited:\n{self.log()}") from e
        except TimeoutError as e:
            raise TimeoutError(
                f"version {version} not {state} within {timeout} s ({e}):\n{self.log()}"
            ) from e
        return entry

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> int:
        """SIGTERM, as `make stop` sends; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        return self.process.returncode
