"""tools/server_process.py: `make serve`'s pre-flight, the server it started, `make stop`.

In this process, with stand-ins: processes that look like a model server or do not,
a `docker` that logs its calls, and a REST endpoint that answers as TensorFlow Serving's.
"""

import contextlib
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from conftest import free_port, heavy_imports, run

from tools import server_process


def detached(command: str) -> int:
    """The pid of `command` started by a shell that exits: like `nohup ... &` in make serve."""
    result = subprocess.run(
        ["bash", "-c", f"{command} >/dev/null 2>&1 & echo $!"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(result.stdout)


@pytest.fixture
def model_server():
    """A process whose command line is a model server's."""
    pid = detached("exec -a tensorflow_model_server sleep 300")
    yield pid
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def bystander():
    """A process that is no model server, holding a pid a server once had."""
    process = subprocess.Popen(["sleep", "300"])
    yield process.pid
    process.kill()
    process.wait()


@pytest.fixture
def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.fixture
def run_files(tmp_path):
    """write(pid, kind) writes the run files `make serve` writes; returns their paths."""
    pid_file, kind_file = tmp_path / "server.pid", tmp_path / "server.kind"

    def write(pid, kind="local", ports=""):
        if pid is not None:
            pid_file.write_text(f"{pid}\n")
        kind_file.write_text(f"{kind} {ports}\n")

    write.paths = (str(pid_file), str(kind_file))
    return write


@pytest.fixture
def fake_docker(tmp_path, monkeypatch):
    """A `docker` first on PATH that logs its calls; `docker info` answers only if told."""
    bin_dir, log = tmp_path / "bin", tmp_path / "docker.log"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(f'#!/bin/sh\necho "$*" >> {log}\n[ "$1" != info ] || [ -e {log}.up ]\n')
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")

    class Docker:
        def answers(self):
            (tmp_path / "docker.log.up").touch()

        def calls(self):
            return log.read_text().splitlines() if log.exists() else []

    return Docker()


# ---- Before starting ---------------------------------------------------------------


def test_refuse_if_running_refuses_a_second_server(run_files, model_server):
    run_files(model_server)
    with pytest.raises(SystemExit, match=rf"already running \(local server, pid {model_server}\)"):
        server_process.refuse_if_running(*run_files.paths, "serving")
    assert all(os.path.exists(path) for path in run_files.paths)


@pytest.mark.parametrize("process", ["dead_pid", "bystander"])
def test_refuse_if_running_forgets_a_server_that_is_gone(request, run_files, capsys, process):
    pid = request.getfixturevalue(process)
    run_files(pid)
    server_process.refuse_if_running(*run_files.paths, "serving")
    assert capsys.readouterr().out == (
        f"Removing the stale {run_files.paths[0]} (process {pid} is gone, or is no model server).\n"
    )
    assert not any(os.path.exists(path) for path in run_files.paths)


def test_refuse_if_running_passes_when_none_was_started(run_files, capsys, fake_docker):
    server_process.refuse_if_running(*run_files.paths, "serving")
    run_files(None, kind="docker")  # A container that is gone: docker ps lists nothing.
    server_process.refuse_if_running(*run_files.paths, "serving")
    assert capsys.readouterr().out == ""
    assert fake_docker.calls() == ["ps -q -f name=^serving$"]


def test_choose_kind(tmp_path, fake_docker):
    assert server_process.choose_kind("local") == ("local", "SERVER=local")
    with pytest.raises(SystemExit, match="SERVER=kubernetes; choose auto, docker, binary or local"):
        server_process.choose_kind("kubernetes")
    assert server_process.choose_kind() == (
        "local",
        "no Docker engine answers and tensorflow_model_server is not on PATH",
    )
    binary = tmp_path / "bin" / "tensorflow_model_server"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert server_process.choose_kind() == ("binary", "tensorflow_model_server is on PATH")
    fake_docker.answers()
    assert server_process.choose_kind() == ("docker", "a Docker engine answers")
    assert server_process.docker_engine()


def write_export_info(version_dir, **info) -> None:
    (version_dir / "assets.extra").mkdir(parents=True)
    (version_dir / "assets.extra" / "export_info.json").write_text(json.dumps(info))


def test_preflight_refuses_a_gpu_server_for_a_cpu_export(tmp_path):
    write_export_info(tmp_path / "1", platforms=["cpu", "cuda"])
    write_export_info(tmp_path / "2", platforms=["cpu"])
    with pytest.raises(SystemExit) as refused:
        server_process.preflight("m", str(tmp_path), [], gpu=True)
    assert str(refused.value) == (
        "error: version 2 was exported for cpu only, and a GPU server answers each request with "
        "'The current platform CUDA is not among the platforms required by the module: [CPU]'. "
        "Export for both: make export PLATFORMS=cpu,cuda"
    )
    server_process.preflight("m", str(tmp_path), [])  # A CPU server runs it.
    write_export_info(tmp_path / "3", platforms=["cpu", "cuda"])
    server_process.preflight("m", str(tmp_path), [], gpu=True)


@pytest.mark.parametrize(
    "exported_for, serving, warns",
    [
        pytest.param("2.16", "2.19", False, id="older-export"),
        pytest.param("2.19", "2.19.1", False, id="same-release"),
        pytest.param("2.19", "2.16", True, id="newer-export"),
        pytest.param("nightly", "2.20", True, id="nightly-export"),
        pytest.param(None, "2.20", True, id="record-without-a-release"),
        pytest.param("2.20", "nightly", False, id="nightly-server"),
        pytest.param(None, "", False, id="release-not-given"),
    ],
)
def test_preflight_warns_when_the_release_may_not_run_the_export(
    tmp_path, capsys, exported_for, serving, warns
):
    write_export_info(tmp_path / "1", platforms=["cpu"], tf_serving_version=exported_for)
    server_process.preflight("m", str(tmp_path), [], tf_serving_version=serving)
    err = capsys.readouterr().err
    assert ("warning: version 1 was exported for" in err) == warns
    if warns:
        assert f"make compat COMPAT_VERSIONS={serving} TF_SERVING_VERSION={serving};" in err


@pytest.mark.parametrize("model_config", ["", "serving/models.config"], ids=["model", "config"])
def test_preflight_refuses_a_release_without_a_server(tmp_path, model_config):
    write_export_info(tmp_path / "1", platforms=["cpu"], tf_serving_version="2.20")
    with pytest.raises(SystemExit) as exit_:
        server_process.preflight(
            "m", str(tmp_path), [], tf_serving_version="2.21", model_config_file=model_config
        )
    message = str(exit_.value.code)
    assert message.startswith("error: TF_SERVING_VERSION=2.21: no TensorFlow Serving 2.21 release")
    assert "use TF_SERVING_VERSION=2.20 (the default, image tensorflow/serving:2.20.0)" in message


def test_check_release_passes_a_release_and_nightly_and_refuses_what_no_server_runs(capsys):
    """`make setup` and `make serve` run it before asking Docker for the image."""
    for good in ("2.20", "2.19.1", "nightly", ""):
        server_process.main(["check_release", f"--tf_serving_version={good}"])
    assert capsys.readouterr() == ("", "")
    for bad, message in (("2.21", "no TensorFlow Serving 2.21 release exists yet"),
                         ("2.14", "TensorFlow Serving 2.14 cannot run this export")):  # fmt: skip
        with pytest.raises(SystemExit, match=message):
            server_process.main(["check_release", f"--tf_serving_version={bad}"])


def test_preflight_explains_a_release_that_is_no_number(tmp_path):
    write_export_info(tmp_path / "1", platforms=["cpu"], tf_serving_version="2.19")
    with pytest.raises(SystemExit, match="TF_SERVING_VERSION='latest' is not a release number"):
        server_process.preflight("m", str(tmp_path), [], tf_serving_version="latest")


def test_preflight_needs_a_version_to_serve(tmp_path):
    base = tmp_path / "mnist_flax"
    with pytest.raises(SystemExit, match=r"does not exist\. Export a model first: make export"):
        server_process.preflight("m", str(base), [])
    base.mkdir()
    (base / "1").write_text("a file, not a version")
    with pytest.raises(SystemExit, match="holds no version directory"):
        server_process.preflight("m", str(base), [])
    # With a model config, the server serves the config's models: no model directory to check.
    server_process.preflight("m", str(tmp_path / "none"), [], model_config_file="models.config")


def test_preflight_asks_for_the_served_name_not_the_models_code(tmp_path):
    spec = "examples.regressor:MODEL"
    with pytest.raises(SystemExit, match=f"MODEL={spec} names a model's code.*: MODEL=NAME"):
        server_process.preflight(spec, str(tmp_path / spec), [])


def test_preflight_reports_a_busy_port(tmp_path):
    (tmp_path / "1").mkdir()
    free = free_port()
    with socket_listening() as busy, pytest.raises(SystemExit, match=f"port {busy} is in use"):
        server_process.preflight("m", str(tmp_path), [free, busy])
    server_process.preflight("m", str(tmp_path), [free, busy])


@contextlib.contextmanager
def socket_listening():
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        s.listen()
        yield s.getsockname()[1]


# ---- Once started ------------------------------------------------------------------


@contextlib.contextmanager
def rest_endpoint(states: dict):
    """An HTTP server on a free port answering GET /v1/models/NAME as TensorFlow Serving does."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            name = self.path.rsplit("/", 1)[-1]
            if name in states:
                status = [{"version": v, "state": s, "status": {}} for v, s in states[name]]
                code, body = 200, {"model_version_status": status}
            else:
                code, body = 404, {"error": f"Servable not found for request: Latest({name})"}
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("localhost", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_wait_and_status_read_the_rest_api(capsys):
    states = {"a": [("1", "AVAILABLE"), ("2", "LOADING")], "b": [("3", "AVAILABLE")]}
    with rest_endpoint(states) as port:
        server_process.wait(["a", "b"], port, timeout=10)
        assert capsys.readouterr().out == (
            "Model a version 1 is AVAILABLE.\nModel b version 3 is AVAILABLE.\n"
        )
        server_process.status("a", port)
        assert capsys.readouterr().out == (
            f"Model a at localhost:{port}:\n  version 2: LOADING\n  version 1: AVAILABLE\n"
        )
        with pytest.raises(SystemExit, match=r"model c did not become AVAILABLE within 0.2 s"):
            server_process.wait(["c"], port, timeout=0.2)
        server_process.status("c", port)  # Not served, or not loaded yet: one 404.
        assert capsys.readouterr().out == (
            f"Model c at localhost:{port}:\n  no version: the server is still loading c, or "
            "serves no model of that name (make status MODEL=<the served name>)\n"
        )


def test_wait_stops_when_the_server_exits_and_shows_its_log(tmp_path, dead_pid):
    log = tmp_path / "server.log"
    log.write_text("".join(f"line {i}\n" for i in range(30)))
    started = time.monotonic()
    with pytest.raises(SystemExit) as failed:
        server_process.wait(["m"], free_port(), pid=dead_pid, log=str(log), timeout=60)
    assert time.monotonic() - started < 10
    message = str(failed.value)
    assert message.startswith("error: the model server exited before the model became AVAILABLE.")
    assert f"Last lines of {log}:\n  line 10\n" in message and "line 9\n" not in message


def test_status_without_a_server_says_to_start_one():
    port = free_port()
    with pytest.raises(SystemExit, match=f"no model server answers at localhost:{port}; start one"):
        server_process.status("m", port)


def test_status_says_how_to_ask_the_server_make_serve_started_on_other_ports(capsys):
    asked = free_port()
    with pytest.raises(SystemExit) as failed:
        server_process.status("m", asked, started_ports=(9500, 9501))
    assert str(failed.value) == (
        f"error: no model server answers at localhost:{asked}; but the server make serve "
        "started answers REST at port 9501: make status REST_PORT=9501 (and make request "
        "GRPC_PORT=9500 REST_PORT=9501)"
    )
    with rest_endpoint({"m": [("1", "AVAILABLE")]}) as port:
        server_process.status("m", port, started_ports=(9500, 9501))  # Another server answers.
        assert capsys.readouterr().out.endswith(
            "  version 1: AVAILABLE\nThis is another server; the server make serve started "
            "answers REST at port 9501: make status REST_PORT=9501 (and make request "
            "GRPC_PORT=9500 REST_PORT=9501).\n"
        )
        server_process.status("m", port, started_ports=(9500, port))  # It is that server.
        assert "another server" not in capsys.readouterr().out


def test_status_says_whether_the_server_make_serve_started_still_runs(
    run_files, model_server, dead_pid, fake_docker
):
    def started(container="serving"):
        run = server_process.Started.read(*run_files.paths)
        running = run is not None and run.runs(container)
        return server_process.started_by_make_serve(run, running, container, "run/server.log")

    assert started() == ""  # No run files: make serve started nothing.
    run_files(model_server)
    assert started() == (
        f"Started by make serve: the local server (pid {model_server}), log in run/server.log."
    )
    run_files(model_server, ports="9500 9501")  # What make serve writes.
    assert started() == (
        f"Started by make serve: the local server (pid {model_server}) on gRPC port 9500 and "
        "REST port 9501, log in run/server.log."
    )
    with pytest.raises(
        SystemExit, match=r"\(local server, pid \d+, gRPC port 9500, REST port 9501"
    ):
        server_process.refuse_if_running(*run_files.paths, "serving")
    run_files(dead_pid)  # Killed, say, with its pid file left behind.
    assert started() == (
        f"The local server that make serve started (pid {dead_pid}) is no longer running: see "
        "its log, run/server.log; make serve starts another."
    )
    run_files(None, kind="docker")  # A docker that lists no container: it is gone.
    assert started().startswith("The docker server that make serve started (container")
    assert fake_docker.calls() == ["ps -q -f name=^serving$"]


def test_stop_stops_the_server_it_started_and_nothing_else(
    run_files, capsys, model_server, bystander, dead_pid
):
    server_process.stop(*run_files.paths, "serving")
    assert capsys.readouterr().out == "No model server started by 'make serve' is running.\n"

    run_files(bystander)
    server_process.stop(*run_files.paths, "serving")
    assert capsys.readouterr().out == (
        f"Process {bystander} is not a model server (its pid was reused); left it alone and "
        "removed the stale pid file.\n"
    )
    assert server_process.alive(bystander)

    run_files(dead_pid)
    server_process.stop(*run_files.paths, "serving")
    assert "was not running; removed its stale pid file" in capsys.readouterr().out

    run_files(model_server)
    server_process.stop(*run_files.paths, "serving")
    assert capsys.readouterr().out == f"Stopped the local server (pid {model_server}).\n"
    assert not server_process.alive(model_server)
    assert not any(os.path.exists(path) for path in run_files.paths)


def test_stop_stops_the_container(run_files, capsys, fake_docker):
    run_files(None, kind="docker")
    server_process.stop(*run_files.paths, "serving")
    assert capsys.readouterr().out == "Stopped container serving.\n"
    assert fake_docker.calls() == ["stop serving"]


# ---- Command line ------------------------------------------------------------------


def test_command_line():
    command = [sys.executable, "-m", "tools.server_process"]
    result = run([*command, "choose_kind", "--server=local"])
    assert (result.returncode, result.stdout) == (0, "local SERVER=local\n")
    result = run([*command, "choose_kind", "--server=kubernetes"])
    assert result.returncode == 1 and "error: SERVER=kubernetes; choose auto" in result.stderr
    result = run([*command, "stop", "--pid_file=x"])
    assert result.returncode == 2 and "--kind_file" in result.stderr


def test_imports_neither_tensorflow_nor_jax():
    """`make serve`'s and `make stop`'s bookkeeping stays quick."""
    assert heavy_imports("tools.server_process") == []
