"""The local server on free ports, as the tests and the benchmark start one: in a subprocess
(`LocalServer`, the process `make serve` runs) or in a thread of this process
(`ThreadServer`, the same API without a process's TensorFlow import)."""

import pathlib
import signal
import socket
import subprocess
import sys
import threading
import traceback

from local_server import startup
from local_server.options import ServerOptions
from serving import model_status

ROOT = pathlib.Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


class _Server:
    """What both harnesses share: the free ports, the addresses, the status reads."""

    def __init__(self, model_name: str, base_path):
        self.model_name, self.base_path = model_name, str(base_path)
        self.grpc_port, self.rest_port = free_port(), free_port()
        self.grpc_address = f"localhost:{self.grpc_port}"
        self.rest_url = self.model_url(model_name)

    def model_url(self, name: str) -> str:
        """The REST URL of model `name` on this server (its own: rest_url)."""
        return f"http://localhost:{self.rest_port}/v1/models/{name}"

    def running(self) -> bool:
        raise NotImplementedError

    def log(self) -> str:
        raise NotImplementedError

    def status(self) -> dict[str, dict]:
        """version -> its status entry, as the REST API reports it ({} before any)."""
        return {s["version"]: s for s in model_status.version_states(self.rest_url)}

    def wait_for(
        self,
        version: int | None,
        state: str = "AVAILABLE",
        timeout: float = 120,
        model: str | None = None,
    ) -> dict:
        """Waits until `version` (None: any) of `model` (None: its own) is in `state`; returns
        a status entry that is."""
        try:
            entries = model_status.wait_for(
                self.model_url(model or self.model_name),
                version=version,
                state=state,
                timeout=timeout,
                alive=self.running,
                interval=0.05,
            )
        except RuntimeError as e:
            raise RuntimeError(f"the server stopped:\n{self.log()}") from e
        except TimeoutError as e:
            raise TimeoutError(
                f"version {version} not {state} within {timeout} s ({e}):\n{self.log()}"
            ) from e
        return entries[0]


class LocalServer(_Server):
    """`python -m local_server` on free ports, its output in `log_path`."""

    def __init__(self, model_name: str, base_path, log_path, *extra_flags: str):
        super().__init__(model_name, base_path)
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

    def running(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> int:
        """SIGTERM, as `make stop` sends; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        return self.process.returncode


class ThreadServer(_Server):
    """local_server.server.run in a daemon thread on free ports, with `options` (fields of
    ServerOptions) on top of the ports, model name and base path."""

    def __init__(self, model_name: str, base_path, **options):
        from local_server import server  # TensorFlow, which LocalServer's users need not import.

        super().__init__(model_name, base_path)
        self.options = ServerOptions(
            **{
                "model_name": model_name,
                "model_base_path": self.base_path,
                "port": self.grpc_port,
                "rest_api_port": self.rest_port,
                **options,
            }
        )
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self.thread = threading.Thread(
            target=self._run, args=(server.run,), name=f"local server {self.grpc_port}", daemon=True
        )
        self.thread.start()

    def _run(self, run) -> None:
        try:
            run(startup.read(self.options), self._stop)
        except BaseException as e:  # Kept for log() and stop(), as a process's exit would be.
            self.error = e

    def running(self) -> bool:
        return self.thread.is_alive()

    def log(self) -> str:
        """No log of its own: the server logs with this process's absl logging. Says whether
        it runs, and how `run` failed if it did."""
        if self.error is not None:
            lines = traceback.format_exception(self.error)
            return f"the server thread failed:\n{''.join(lines)}"
        state = "runs" if self.running() else "has stopped"
        return f"(the server {state} in a thread of this process; its log is this process's)"

    def stop(self) -> int:
        """Sets the stop event and waits for `run` to return: 0 if it did cleanly, 1 if it
        raised (or has not returned within 30 s)."""
        self._stop.set()
        self.thread.join(timeout=30)
        return 1 if self.error is not None or self.thread.is_alive() else 0
