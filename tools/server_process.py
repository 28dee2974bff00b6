"""The model server `make serve` starts: its pre-flight, its process, its status, `make stop`.

    python -m tools.server_process refuse_if_running --pid_file=F --kind_file=F --container=C
    python -m tools.server_process choose_kind --server=auto
    python -m tools.server_process docker_engine
    python -m tools.server_process check_release --tf_serving_version=2.20
    python -m tools.server_process preflight --model_name=M --model_base_path=DIR --ports=8500,8501
        [--tf_serving_version=2.19] [--gpu] [--model_config_file=F]
    python -m tools.server_process wait --model_name=M --rest_port=8501 [--pid=P | --container=C]
    python -m tools.server_process status --model_name=M --rest_port=8501 [--pid_file=F
        --kind_file=F --container=C --log=F]
    python -m tools.server_process stop --pid_file=F --kind_file=F --container=C

The Makefile runs the server itself (`docker run`, `tensorflow_model_server`,
`python -m local_server`) and writes the run files (--pid_file, --kind_file);
this reads them. The same for all three kinds: the file system, `ps`, `docker`
and TensorFlow Serving's REST API; no TensorFlow, no JAX. A failure prints what
is wrong and what to do, and exits with status 1.
"""

import argparse
import contextlib
import dataclasses
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

from serving import releases, versions
from serving.env import DEFAULTS

# The kinds of server `make serve` starts (its serve-KIND targets).
SERVER_KINDS = ("docker", "binary", "local")
# A model server's command line: a pid that does not show it was reused.
_SERVER_COMMAND = re.compile(r"-m local_server|tensorflow_model_server")
STOP_GRACE_SECONDS = 10  # SIGTERM, then SIGKILL after this long.


def fail(message: str) -> None:
    sys.exit(f"error: {message}")


# ---- Before starting ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Started:
    """What the run files say `make serve` started: a kind, a pid (none for Docker), and the
    gRPC and REST ports it was given (the kind file's line: "local 8500 8501")."""

    kind: str
    pid: int | None
    ports: tuple[int, int] | None = None

    @classmethod
    def read(cls, pid_file: str, kind_file: str) -> "Started | None":
        words, pid = _read(kind_file).split(), _read(pid_file)
        if not words and not pid:
            return None
        kind, *given = words or ["model"]
        ports = tuple(int(port) for port in given if port.isdigit())
        return cls(kind, int(pid) if pid.isdigit() else None, ports if len(ports) == 2 else None)

    def runs(self, container: str) -> bool:
        """Whether it still runs: its container (Docker), or a model server at its pid."""
        if self.kind == "docker":
            return container_running(container)
        return bool(self.pid and alive(self.pid) and is_model_server(self.pid))


def refuse_if_running(pid_file: str, kind_file: str, container: str) -> None:
    """Fails if the server `make serve` started still runs; forgets one that is gone."""
    started = Started.read(pid_file, kind_file)
    if started and started.runs(container):
        ports = ""
        if started.ports:
            ports = f", gRPC port {started.ports[0]}, REST port {started.ports[1]}"
        fail(
            f"a model server started by 'make serve' is already running ({started.kind} server, "
            f"pid {started.pid or ''}{ports}). See it with 'make status'; stop it with 'make stop'."
        )
    if started and started.pid:
        print(
            f"Removing the stale {pid_file} (process {started.pid} is gone, or is no model server)."
        )
        _forget(pid_file, kind_file)


def choose_kind(server: str = "auto") -> tuple[str, str]:
    """The kind of server to start, and why; auto: the first of docker, binary, local that runs."""
    if server not in ("auto", *SERVER_KINDS):
        fail(f"SERVER={server}; choose auto, {', '.join(SERVER_KINDS[:-1])} or {SERVER_KINDS[-1]}.")
    if server != "auto":
        return server, f"SERVER={server}"
    if docker_engine():
        return "docker", "a Docker engine answers"
    if shutil.which("tensorflow_model_server"):
        return "binary", "tensorflow_model_server is on PATH"
    return "local", "no Docker engine answers and tensorflow_model_server is not on PATH"


def docker_engine() -> bool:
    """Whether a Docker engine answers (a `docker` client alone is not enough)."""
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def serving_release(tf_serving_version: str) -> releases.Release | None:
    """The release TF_SERVING_VERSION names for a server (None: nightly).

    Exits with the reason for a value that no server runs, such as a release without a
    TensorFlow Serving image (2.21): `make setup` and `make serve` check before Docker is
    asked for an image that does not exist.
    """
    try:
        return releases.target(tf_serving_version)
    except releases.ReleaseError as e:
        fail(str(e))


def preflight(
    model_name: str,
    model_base_path: str,
    ports: list[int],
    *,
    tf_serving_version: str = "",
    gpu: bool = False,
    model_config_file: str = "",
    host: str = "localhost",
) -> None:
    """`make serve`'s checks: a version to serve, exported for this server, and free ports.

    With a model config file the server serves its models, and only the release and the
    ports are checked. An empty tf_serving_version checks no release.
    """
    serving = serving_release(tf_serving_version) if tf_serving_version else None
    if not model_config_file:
        if problem := versions.served_name_problem(model_name):
            fail(problem)
        if not os.path.isdir(model_base_path):
            fail(
                f"{model_base_path} does not exist. Export a model first: "
                f"make export MODEL={model_name}"
            )
        found = versions.version_dirs(model_base_path)
        if not found:
            fail(
                f"{model_base_path} holds no version directory (1, 2, ...). Export one first: "
                "make export"
            )
        newest = max(found)
        _check_export_fits(found[newest], newest, serving, gpu)
    for port in ports:
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                fail(
                    f"port {port} is in use on {host}: another model server may be running "
                    "(make status; make stop), or pick other ports "
                    "(make serve GRPC_PORT=... REST_PORT=...)."
                )


def _check_export_fits(
    version_dir: str, version: int, serving: releases.Release | None, gpu: bool
) -> None:
    """The version was exported for this server's device and release, as far as its record says.

    `serving` None: nightly, or no release given, which reads every export's format.
    """
    info = versions.read_export_info(version_dir)
    if not info:
        return  # Not exported by this project: nothing recorded to check.
    platforms = info.get("platforms") or ["cpu"]
    if gpu and "cuda" not in platforms:
        fail(
            f"version {version} was exported for {','.join(platforms)} only, and a GPU server "
            "answers each request with 'The current platform CUDA is not among the platforms "
            f"required by the module: [{', '.join(p.upper() for p in platforms)}]'. Export for "
            "both: make export PLATFORMS=cpu,cuda"
        )
    # No record of a release: an export in JAX's newest format (nightly).
    exported = info.get("tf_serving_version") or releases.NIGHTLY
    if serving is None:
        return
    try:
        newer = exported == releases.NIGHTLY or releases.release_key(
            releases.release_of(exported)
        ) > releases.release_key(serving.release)
    except releases.ReleaseError as e:
        fail(str(e))
    if newer:
        made_for = (
            "JAX's newest format (TF_SERVING_VERSION=nightly)"
            if exported == releases.NIGHTLY
            else f"TensorFlow Serving {exported}"
        )
        print(
            f"warning: version {version} was exported for {made_for}, which TensorFlow Serving "
            f"{serving.release} may fail to run. Check that release alone: make compat "
            f"COMPAT_VERSIONS={serving.release} TF_SERVING_VERSION={serving.release}; or "
            f"export for it: make export TF_SERVING_VERSION={serving.release}",
            file=sys.stderr,
        )


# ---- Once started ------------------------------------------------------------------


def wait(
    model_names: list[str],
    rest_port: int,
    *,
    pid: int | None = None,
    container: str = "",
    log: str = "",
    timeout: float = 300,
    host: str = "localhost",
) -> None:
    """Waits until a version of each model is AVAILABLE; fails if the server exits first."""
    from serving import model_status  # requests: only the commands that talk to a server.

    def server_runs() -> bool:
        if pid and not alive(pid):
            return False
        return not container or container_running(container)

    for name in model_names:
        url = f"http://{host}:{rest_port}/v1/models/{name}"
        try:
            available = model_status.wait_for(url, timeout=timeout, alive=server_runs, interval=0.5)
        except RuntimeError:
            fail(f"the model server exited before the model became AVAILABLE.{_log_tail(log)}")
        except TimeoutError as e:
            fail(
                f"model {name} did not become AVAILABLE within {timeout:g} s ({e})."
                + _log_tail(log)
            )
        numbers = ", ".join(sorted((str(s["version"]) for s in available), key=int))
        verb = "is" if len(available) == 1 else "are"
        print(f"Model {name} version {numbers} {verb} AVAILABLE.")


def started_by_make_serve(started: Started | None, running: bool, container: str, log: str) -> str:
    """What the run files say `make serve` started, on which ports, and whether it still runs
    (`running`); "" if none."""
    if started is None:
        return ""
    which = f"container {container}" if started.kind == "docker" else f"pid {started.pid}"
    if not running:
        return (
            f"The {started.kind} server that make serve started ({which}) is no longer running: "
            f"see its log, {log}; make serve starts another."
        )
    ports = ""
    if started.ports:
        ports = f" on gRPC port {started.ports[0]} and REST port {started.ports[1]}"
    return f"Started by make serve: the {started.kind} server ({which}){ports}, log in {log}."


def status(
    model_name: str,
    rest_port: int,
    host: str = "localhost",
    started_ports: tuple[int, int] | None = None,
) -> None:
    """Prints the model's version states, as the server reports them; started_ports: the
    (gRPC, REST) ports of the server `make serve` started, if it runs, to say how to ask it."""
    import requests

    from serving import model_status

    elsewhere = ""  # How to ask the server make serve started, if it answers on other ports.
    if started_ports and started_ports[1] != rest_port:
        grpc_port, rest = started_ports
        elsewhere = (
            f"the server make serve started answers REST at port {rest}: make status "
            f"REST_PORT={rest} (and make request GRPC_PORT={grpc_port} REST_PORT={rest})"
        )
    try:
        statuses = model_status.version_states(f"http://{host}:{rest_port}/v1/models/{model_name}")
    except requests.ConnectionError:
        advice = f"but {elsewhere}" if elsewhere else "start one: make serve"
        fail(f"no model server answers at {host}:{rest_port}; {advice}")
    except (requests.RequestException, ValueError) as e:
        fail(str(e))
    print(f"Model {model_name} at {host}:{rest_port}:")
    if statuses:
        print(model_status.describe(statuses))
    else:  # TensorFlow Serving answers the same 404 for both.
        print(
            f"  no version: the server is still loading {model_name}, or serves no model of "
            "that name (make status MODEL=<the served name>)"
        )
    if elsewhere:
        print(f"This is another server; {elsewhere}.")


def stop(pid_file: str, kind_file: str, container: str) -> None:
    """Stops what the run files name, and nothing else: TERM, then KILL after a grace."""
    started = Started.read(pid_file, kind_file)
    try:
        if started is None:
            print("No model server started by 'make serve' is running.")
        elif started.kind == "docker":
            subprocess.run(["docker", "stop", container], capture_output=True, check=True)
            print(f"Stopped container {container}.")
        elif started.pid is None or not alive(started.pid):
            print(
                f"The {started.kind} server (pid {started.pid}) was not running; removed its "
                "stale pid file."
            )
        elif not is_model_server(started.pid):
            print(
                f"Process {started.pid} is not a model server (its pid was reused); left it "
                "alone and removed the stale pid file."
            )
        else:
            _terminate(started.pid)
            print(f"Stopped the {started.kind} server (pid {started.pid}).")
    finally:
        _forget(pid_file, kind_file)


# ---- Processes ---------------------------------------------------------------------


def alive(pid: int) -> bool:
    """Whether process `pid` runs (an exited one nobody reaped yet does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # Someone else's: is_model_server tells whether it is ours.
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True)
    return state.returncode == 0 and not state.stdout.strip().startswith("Z")


def is_model_server(pid: int) -> bool:
    """Whether process `pid` runs a model server: a pid file can outlive its server
    (a reboot, a kill -9), and its pid be reused by any other process."""
    result = subprocess.run(["ps", "-o", "args=", "-p", str(pid)], capture_output=True, text=True)
    return result.returncode == 0 and bool(_SERVER_COMMAND.search(result.stdout))


def container_running(name: str) -> bool:
    if not name or not shutil.which("docker"):
        return False
    result = subprocess.run(
        ["docker", "ps", "-q", "-f", f"name=^{name}$"], capture_output=True, text=True
    )
    return result.returncode == 0 and bool(result.stdout.strip())


def _terminate(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _forget(*paths: str) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _log_tail(log: str, lines: int = 20) -> str:
    if not log or not os.path.exists(log):
        return ""
    with open(log, errors="replace") as f:
        tail = f.readlines()[-lines:]
    return f"\nLast lines of {log}:\n" + "".join("  " + line for line in tail)


# ---- Command line ------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "refuse_if_running":
        refuse_if_running(args.pid_file, args.kind_file, args.container)
    elif args.command == "choose_kind":
        print(*choose_kind(args.server))
    elif args.command == "docker_engine":
        sys.exit(0 if docker_engine() else 1)
    elif args.command == "check_release":
        serving_release(args.tf_serving_version)
    elif args.command == "preflight":
        preflight(
            args.model_name,
            args.model_base_path,
            args.ports,
            tf_serving_version=args.tf_serving_version,
            gpu=args.gpu,
            model_config_file=args.model_config_file,
            host=args.host,
        )
    elif args.command == "wait":
        names = [args.model_name]
        if args.model_config_file:
            from tools import model_config_files  # protobuf: only with a model config.

            names = model_config_files.model_names(args.model_config_file)
        wait(
            names,
            args.rest_port,
            pid=args.pid,
            container=args.container,
            log=args.log,
            timeout=args.timeout,
            host=args.host,
        )
    elif args.command == "status":
        started = Started.read(args.pid_file, args.kind_file) if args.kind_file else None
        running = started is not None and started.runs(args.container)
        if started:
            print(started_by_make_serve(started, running, args.container, args.log))
        status(args.model_name, args.rest_port, args.host, started.ports if running else None)
    else:
        stop(args.pid_file, args.kind_file, args.container)


def run_files_arguments() -> argparse.ArgumentParser:
    """--pid_file and --kind_file, the run files `make serve` writes: a parent parser for
    this tool's commands and `make reload`'s."""
    run_files = argparse.ArgumentParser(add_help=False)
    run_files.add_argument("--pid_file", required=True, help="holds the pid `make serve` wrote")
    run_files.add_argument(
        "--kind_file", required=True, help='holds its kind and ports ("local 8500 8501")'
    )
    return run_files


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.server_process",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run_files = run_files_arguments()
    run_files.add_argument("--container", default="", help="the container `make serve` starts")
    model = argparse.ArgumentParser(add_help=False)
    model.add_argument("--model_name", required=True, help="the served model's name")
    model.add_argument("--host", default="localhost", help="where the server listens")
    rest = argparse.ArgumentParser(add_help=False)
    rest.add_argument(
        "--rest_port", type=int, default=int(DEFAULTS["REST_PORT"]), help="the REST port"
    )

    commands.add_parser(
        "refuse_if_running",
        parents=[run_files],
        help="fail if the server `make serve` started runs; forget one that is gone",
    )
    choose = commands.add_parser("choose_kind", help="print the kind of server to start, and why")
    choose.add_argument("--server", default="auto", help="auto, docker, binary or local")
    commands.add_parser("docker_engine", help="exit 0 if a Docker engine answers, else 1")
    release = argparse.ArgumentParser(add_help=False)
    release.add_argument(
        "--tf_serving_version",
        default="",
        help="the release that will serve (2.19, 2.19.1), or nightly; empty: none checked",
    )
    commands.add_parser(
        "check_release",
        parents=[release],
        help="fail, saying why, if no TensorFlow Serving release or nightly is named (2.21)",
    )
    check = commands.add_parser("preflight", parents=[model, release], help="`make serve`'s checks")
    check.add_argument("--model_base_path", required=True, help="the model's directory")
    check.add_argument("--ports", type=_ports, default=[], help="ports that must be free")
    check.add_argument("--gpu", action="store_true", help="the server runs the model on a GPU")
    check.add_argument(
        "--model_config_file", default="", help="the server serves this config's models"
    )
    until = commands.add_parser(
        "wait", parents=[model, rest], help="wait until the model is AVAILABLE"
    )
    until.add_argument("--pid", type=int, help="the server's process: stop waiting if it exits")
    until.add_argument("--container", default="", help="the server's container, likewise")
    until.add_argument("--log", default="", help="the server's log, whose tail a failure shows")
    until.add_argument("--timeout", type=float, default=300, help="seconds to wait")
    until.add_argument(
        "--model_config_file", default="", help="wait for each of this config's models"
    )
    state = commands.add_parser(
        "status", parents=[model, rest], help="print the model's version states"
    )
    state.add_argument("--pid_file", default="", help="with --kind_file: say if it still runs")
    state.add_argument("--kind_file", default="", help="the kind of server `make serve` started")
    state.add_argument("--container", default="", help="the container `make serve` starts")
    state.add_argument("--log", default="", help="the log of the server `make serve` started")
    commands.add_parser(
        "stop", parents=[run_files], help="stop the server `make serve` started, nothing else"
    )
    return parser


def _ports(value: str) -> list[int]:
    try:
        return [int(port) for port in value.split(",") if port]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: give ports as 8500,8501") from None


if __name__ == "__main__":
    main()
