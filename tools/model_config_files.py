"""The model config file of `make serve MODEL_CONFIG=...`: the host's copy, and `make reload`.

    python -m tools.model_config_files host_copy --model_config_file=F --exports_path=DIR --out=F
    python -m tools.model_config_files reload --model_config_file=F --exports_path=DIR --out=F
        --pid_file=F --kind_file=F [--grpc_port=8500] [--ca_cert=F [--client_cert=F --client_key=F]]

The config names the container's paths (/models/..., MODEL_PATH mounted there);
tensorflow_model_server and the local server read the host's copy, with
MODEL_PATH in their place. `make reload` sends the edited config to the running
server (ModelService.HandleReloadConfigRequest). A failure prints what is wrong
and what to do, and exits with status 1.
"""

import argparse
import contextlib
import os
import pathlib
import sys

from serving import model_config
from serving.env import DEFAULTS
from serving.status import ServingError
from tools.server_process import Started, run_files_arguments


def fail(message: str) -> None:
    sys.exit(f"error: {message}")


def read(path: str):
    """The ModelServerConfig in `path`; fails with what to fix."""
    if not os.path.isfile(path):
        fail(
            f"{path}: no such file. MODEL_CONFIG names a model config, such as "
            "serving/models.config."
        )
    try:
        return model_config.read(path)
    except ServingError as e:
        fail(f"{e}. Fix the file (TensorFlow Serving's ModelServerConfig text format).")


def model_names(path: str) -> list[str]:
    return [m.name for m in read(path).model_config_list.config]


def host_copy(config, source: str, exports_path: str, out: str):
    """Writes `config` to `out` with its /models base paths under `exports_path`; returns it."""
    config = model_config.rebase(config, os.path.abspath(exports_path))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    header = (
        f"# Generated from {source} for MODEL_PATH={exports_path} by `make serve` and "
        "`make reload`: edit that file, not this one.\n"
    )
    model_config.write(config, out, header)
    return config


def reload(
    source: str,
    exports_path: str,
    out: str,
    started: Started | None,
    *,
    grpc_port: int = int(DEFAULTS["GRPC_PORT"]),
    host: str = "localhost",
    timeout: float = 300,
    tls_files: tuple[str, str, str] = ("", "", ""),
) -> None:
    """Sends the config in `source` to the server `make serve` started, at the gRPC port it
    was given (grpc_port if its run files do not say); over TLS when tls_files names a CA
    (and a client's certificate and key), as model_server_request.py."""
    config = read(source)
    if started is None:
        fail("no server started by `make serve` runs: make serve MODEL_CONFIG=...")
    grpc_port = started.ports[0] if started.ports else grpc_port
    check_base_paths(config, exports_path)
    polled = out if started.kind != "docker" else ""  # The host's copy, which the server polls.
    with restored_on_failure(polled):
        if polled:
            config = host_copy(config, source, exports_path, out)
        send_config(config, grpc_port, host, timeout, tls_files)
    print(f"The server applied {source}: {describe(config)}.")


def check_base_paths(config, exports_path: str) -> None:
    """Fails if a model's base path under /models is no directory under MODEL_PATH: a
    reload with another MODEL_PATH than the server's would unload the models it serves."""
    rebased = model_config.rebase(config, os.path.abspath(exports_path))
    pairs = zip(config.model_config_list.config, rebased.model_config_list.config, strict=True)
    for original, entry in pairs:
        if original.base_path != entry.base_path and not os.path.isdir(entry.base_path):
            fail(
                f"model {entry.name}'s base_path is {entry.base_path}, which does not exist: "
                f"make reload puts MODEL_PATH={exports_path} in place of /models. Reload with "
                "the MODEL_PATH that make serve used, or export the model first."
            )


@contextlib.contextmanager
def restored_on_failure(path: str):
    """Puts the file at `path` back as it was (or removes it if there was none) if the block
    fails, so that the server's polling never reads a config that the server refused."""
    previous = pathlib.Path(path).read_bytes() if path and os.path.exists(path) else None
    try:
        yield
    except BaseException:
        if previous is not None:
            model_config.replace_atomically(path, previous)
        elif path:
            pathlib.Path(path).unlink(missing_ok=True)
        raise


def send_config(config, grpc_port: int, host: str, timeout: float, tls_files) -> None:
    """Sends `config` to the server's ModelService; fails with its refusal and advice."""
    import grpc
    from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc

    from clients import serving_client, tls

    request = model_management_pb2.ReloadConfigRequest(config=config)
    try:
        channel = tls.channel(f"{host}:{grpc_port}", *tls_files)
    except serving_client.RequestError as e:
        fail(str(e))
    with channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        try:
            stub.HandleReloadConfigRequest(request, timeout=timeout)
        except grpc.RpcError as e:
            advice = ""
            if "not currently available" in (e.details() or ""):
                advice = (
                    " A label moves only to a loaded version: list the version in the "
                    "model_version_policy first, `make reload`, then move the label and "
                    "`make reload` again. A server that make serve started without "
                    "MODEL_CONFIG takes no label of a version it has not loaded yet: `make "
                    "stop`, then `make serve MODEL_CONFIG=...`."
                )
            if e.code() == grpc.StatusCode.UNAVAILABLE:
                fail(
                    f"no gRPC answer from {host}:{grpc_port}: {e.details()}. Is the server "
                    "running (make status)? A server started with TLS_DIR needs it here too."
                )
            fail(f"the server refused the config: {e.code().name}: {e.details()}.{advice}")


def describe(config) -> str:
    """The config's models and labels, in a line: models a, b; labels a: canary=2, stable=1."""
    models = config.model_config_list.config
    labels = [
        f"{m.name}: " + ", ".join(f"{k}={v}" for k, v in sorted(m.version_labels.items()))
        for m in models
        if m.version_labels
    ]
    return f"models {', '.join(m.name for m in models)}" + (
        f"; labels {'; '.join(labels)}" if labels else ""
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tools.model_config_files",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    files = argparse.ArgumentParser(add_help=False)
    files.add_argument("--model_config_file", required=True, help="the config, /models paths")
    files.add_argument("--exports_path", required=True, help="MODEL_PATH, mounted at /models")
    files.add_argument("--out", required=True, help="where the host's copy goes")
    commands.add_parser("host_copy", parents=[files], help="write the host's copy of the config")
    send = commands.add_parser(
        "reload", parents=[files, run_files_arguments()], help="send the config to the server"
    )
    send.add_argument(
        "--grpc_port", type=int, default=int(DEFAULTS["GRPC_PORT"]), help="if --kind_file has none"
    )
    send.add_argument("--host", default="localhost", help="where the server listens")
    send.add_argument("--timeout", type=float, default=300, help="seconds to wait for the server")
    send.add_argument("--ca_cert", default="", help="gRPC over TLS: the CA of the server's cert")
    send.add_argument("--client_cert", default="", help="the client's certificate, if verified")
    send.add_argument("--client_key", default="", help="the client certificate's key")
    args = parser.parse_args(argv)
    if args.command == "host_copy":
        host_copy(read(args.model_config_file), args.model_config_file, args.exports_path, args.out)
    else:
        reload(
            args.model_config_file,
            args.exports_path,
            args.out,
            Started.read(args.pid_file, args.kind_file),
            grpc_port=args.grpc_port,
            host=args.host,
            timeout=args.timeout,
            tls_files=(args.ca_cert, args.client_cert, args.client_key),
        )


if __name__ == "__main__":
    main()
