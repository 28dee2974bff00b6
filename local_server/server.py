"""The whole server: models loaded and polled, gRPC and REST started, stopped on SIGTERM (or,
in a thread of another program, on a threading.Event).

It starts from what local_server.startup read of the options and their files:
--enable_batching wraps every model in the batch scheduler; a monitoring config with
Prometheus enabled adds the metrics page to the REST port.
"""

import asyncio
import signal
import threading

from absl import logging

from local_server import grpc_service
from local_server.api import ModelServer
from local_server.batching import BatchScheduler
from local_server.metrics import Metrics
from local_server.rest_server import RestServer
from local_server.startup import Startup, StartupError
from serving import model_config
from serving.status import ServingError


def run(startup: Startup, stop: threading.Event | None = None) -> None:
    """Serves until SIGTERM or SIGINT, or with `stop` until it is set (then from any thread,
    with no signal handlers); OSError if a port cannot be listened on."""
    try:
        server, batching = build(startup)
    except ServingError as e:  # A config the API refuses (two models of one name, say).
        raise StartupError(str(e)) from e
    try:
        asyncio.run(_serve(startup, server, stop))
    finally:
        if batching is not None:
            batching.close()


def build(startup: Startup) -> tuple[ModelServer, BatchScheduler | None]:
    """The API with its models, and its batch scheduler (None without batching)."""
    metrics = Metrics()
    batching = BatchScheduler(startup.batching, metrics) if startup.batching else None
    server = ModelServer(
        startup.config,
        allow_version_labels_for_unavailable_models=(
            startup.options.allow_version_labels_for_unavailable_models
        ),
        max_batch_size=startup.options.max_batch_size,
        batching=batching,
        metrics=metrics,
    )
    return server, batching


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


async def _serve(startup: Startup, server: ModelServer, stop: threading.Event | None) -> None:
    options, metrics_path, credentials = startup.options, startup.metrics_path, startup.credentials
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
