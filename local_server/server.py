"""The whole server: config read, versions polled, gRPC and REST started, stopped on SIGTERM
(or, in a thread of another program, on a threading.Event).

Start-up follows tensorflow_model_server's Server::BuildAndStart: the model
config is --model_config_file, or the one model of --model_name and
--model_base_path; --enable_batching wraps every model in the batch
scheduler (with --batching_parameters_file's options); a monitoring config
with Prometheus enabled adds the metrics page to the REST port.
"""

import asyncio
import os
import signal
import threading

import grpc
from absl import logging

from local_server import grpc_service, tls
from local_server.api import ModelServer
from local_server.batching import (
    BatchingOptions,
    BatchingParameters,
    BatchScheduler,
    options_from_parameters,
)
from local_server.metrics import DEFAULT_PATH, Metrics
from local_server.options import ServerOptions
from local_server.protos import monitoring_config_pb2
from local_server.rest_server import RestServer
from serving import model_config
from serving.status import ServingError, invalid


class StartupError(Exception):
    """The server cannot start with these options; the message says why."""


def run(options: ServerOptions, stop: threading.Event | None = None) -> None:
    """Serves until SIGTERM or SIGINT, or with `stop` until it is set (then from any thread,
    with no signal handlers); OSError if a port cannot be listened on."""
    try:
        # TLS first: a wrong certificate stops the server before any model loads.
        credentials = (
            tls.server_credentials(tls.read(options.ssl_config_file))
            if options.ssl_config_file
            else None
        )
        server, batching, metrics_path = build(options)
    except ServingError as e:
        raise StartupError(str(e)) from e
    try:
        asyncio.run(_serve(options, server, metrics_path, credentials, stop))
    finally:
        if batching is not None:
            batching.close()


def build(options: ServerOptions) -> tuple[ModelServer, BatchScheduler | None, str]:
    """The API with its models, batch scheduler and metrics page path ("" if none)."""
    if options.model_config_file:
        config = model_config.read(options.model_config_file)
    elif options.model_base_path:
        config = model_config.single_model(
            options.model_name, os.path.abspath(options.model_base_path)
        )
    else:
        raise invalid(
            "Both server_options.model_base_path and server_options.model_config_file are empty!"
        )
    if options.batching_parameters_file and not options.enable_batching:
        raise invalid(
            "server_options.batching_parameters_file is set without setting "
            "server_options.enable_batching to true."
        )
    metrics = Metrics()
    batching = None
    if options.enable_batching:
        batching = BatchScheduler(batching_options(options.batching_parameters_file), metrics)
    metrics_path = prometheus_path(options.monitoring_config_file)
    server = ModelServer(
        config,
        allow_version_labels_for_unavailable_models=(
            options.allow_version_labels_for_unavailable_models
        ),
        max_batch_size=options.max_batch_size,
        batching=batching,
        metrics=metrics,
    )
    return server, batching, metrics_path


def batching_options(batching_parameters_file: str) -> BatchingOptions:
    """What a --batching_parameters_file sets (the defaults if there is none), checked."""
    params = (
        model_config.read_text_proto(batching_parameters_file, BatchingParameters())
        if batching_parameters_file
        else None
    )
    return options_from_parameters(params)


def prometheus_path(monitoring_config_file: str) -> str:
    """Where a --monitoring_config_file puts the metrics page on the REST port ("" if none)."""
    if not monitoring_config_file:
        return ""
    monitoring = model_config.read_text_proto(
        monitoring_config_file, monitoring_config_pb2.MonitoringConfig()
    )
    if not monitoring.prometheus_config.enable:
        return ""
    return monitoring.prometheus_config.path or DEFAULT_PATH


class _ConfigPoller:
    """PollFilesystemAndReloadConfig: the model config file, re-read every period."""

    def __init__(self, server: ModelServer, path: str):
        self._server, self._path = server, path
        self._refused: model_config.ModelServerConfig | None = None
        self._read_error = ""

    def poll(self) -> None:
        try:
            config = model_config.read(self._path)
        except ServingError as e:
            if str(e) != self._read_error:  # Said once, not every period.
                logging.error("Failed to read ModelServerConfig file: %s", e)
            self._read_error = str(e)
            return
        self._read_error = ""
        if config == self._server.config or config == self._refused:
            return
        try:
            self._server.reload_config(config)
        except ServingError as e:
            logging.error("PollFilesystemAndReloadConfig failed to ReloadConfig: %s", e)
            self._refused = config
            return
        self._refused = None
        logging.info("Applied the model config of %s", self._path)


def _every(period: float, call, stop: threading.Event, what: str) -> None:
    while not stop.is_set():
        try:
            call()
        except Exception:  # Keep serving what is loaded, whatever went wrong here.
            logging.exception("%s failed", what)
        stop.wait(period)


async def _serve(
    options: ServerOptions,
    server: ModelServer,
    metrics_path: str,
    credentials: grpc.ServerCredentials | None = None,
    stop: threading.Event | None = None,
) -> None:
    signalled = asyncio.Event()
    if stop is None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, signalled.set)
    grpc_server = grpc_service.start(
        server,
        options.host,
        options.port,
        options.grpc_max_message_bytes,
        options.grpc_max_threads,
        credentials,
    )
    rest = None
    polling = threading.Event()
    try:
        if options.rest_api_port:
            rest = RestServer(server, options, metrics_path)
            try:
                await rest.start()
            except OSError as e:
                raise OSError(
                    f"cannot listen on {options.host}:{options.rest_api_port} for REST: {e}"
                ) from e
        models = ", ".join(f"{m.model_name} ({m.base_path})" for m in server.managers())
        logging.info(
            "Serving %s: gRPC%s on %s:%d%s%s",
            models or "no models",
            " over TLS" if credentials else "",
            options.host,
            options.port,
            f", REST on {options.host}:{options.rest_api_port}" if rest else "",
            f", metrics at {metrics_path}" if rest and metrics_path else "",
        )
        threads = [(server.poll, options.file_system_poll_wait_seconds, "Polling the models")]
        if options.model_config_file and options.model_config_file_poll_wait_seconds > 0:
            poller = _ConfigPoller(server, options.model_config_file)
            threads.append(
                (poller.poll, options.model_config_file_poll_wait_seconds, "Polling the config")
            )
        for call, period, what in threads:
            threading.Thread(
                target=_every, args=(period, call, polling, what), name=what, daemon=True
            ).start()
        await (signalled.wait() if stop is None else asyncio.to_thread(stop.wait))
        logging.info("Shutting down")
    finally:
        polling.set()
        if rest is not None:
            await rest.stop()
        grpc_server.stop(grace=2).wait()
