"""The whole server: versions polled, gRPC and REST started, stopped on SIGTERM or SIGINT."""

import asyncio
import os
import signal
import threading

from absl import logging

from local_server import grpc_service
from local_server.api import ModelServer
from local_server.options import ServerOptions
from local_server.rest_server import RestServer
from local_server.versions import VersionManager


def run(options: ServerOptions) -> None:
    """Serves until SIGTERM or SIGINT; OSError if a port cannot be listened on."""
    asyncio.run(_serve(options))


async def _serve(options: ServerOptions) -> None:
    manager = VersionManager(options.model_name, os.path.abspath(options.model_base_path))
    server = ModelServer(manager, options.max_batch_size)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    grpc_server = grpc_service.start(
        server,
        options.host,
        options.port,
        options.grpc_max_message_bytes,
        options.grpc_max_threads,
    )
    rest = None
    try:
        if options.rest_api_port:
            rest = RestServer(server, options)
            try:
                await rest.start()
            except OSError as e:
                raise OSError(
                    f"cannot listen on {options.host}:{options.rest_api_port} for REST: {e}"
                ) from e
        logging.info(
            "Serving model %s from %s: gRPC on %s:%d%s",
            manager.model_name,
            manager.base_path,
            options.host,
            options.port,
            f", REST on {options.host}:{options.rest_api_port}" if rest else "",
        )
        polling = threading.Event()
        poller = threading.Thread(
            target=manager.run,
            args=(polling, options.file_system_poll_wait_seconds),
            name="poll",
            daemon=True,
        )
        poller.start()
        await stop.wait()
        logging.info("Shutting down")
        polling.set()
    finally:
        if rest is not None:
            await rest.stop()
        grpc_server.stop(grace=2).wait()
