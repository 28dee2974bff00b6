"""The REST transport: aiohttp's asyncio HTTP server, with every resource bounded.

One event-loop thread holds the connections, however many; the API runs on a
pool of --rest_api_num_threads threads (TensorFlow releases the GIL while a
model computes), each call cut off after --rest_api_timeout_in_ms with 504
DEADLINE_EXCEEDED, as in TensorFlow Serving. A connection that sends no whole
request, or stays idle between requests, for rest_idle_timeout_seconds is
closed; beyond rest_max_connections a new one is answered 503 and closed; a
body over rest_max_body_bytes is refused (RESOURCE_EXHAUSTED, 429) unread.
"""

import asyncio
import functools
from concurrent import futures

import grpc
from absl import logging
from aiohttp import web

from local_server import rest_api
from local_server.api import ModelServer
from local_server.errors import http_status
from local_server.options import ServerOptions
from serving.status import first_line

_JSON = "application/json"


def _error(code: grpc.StatusCode, message: str) -> web.Response:
    body = rest_api.error_body(message)
    return web.Response(status=http_status(code), body=body, content_type=_JSON)


class RestServer:
    """TensorFlow Serving's REST API on host:port, started by `start`, ended by `stop`."""

    def __init__(self, server: ModelServer, options: ServerOptions, metrics_path: str = ""):
        self._server, self._options = server, options
        self._metrics_path = metrics_path  # "" : no metrics page.
        self._pool = futures.ThreadPoolExecutor(
            max_workers=options.rest_api_num_threads, thread_name_prefix="rest"
        )
        app = web.Application(client_max_size=options.rest_max_body_bytes)
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            keepalive_timeout=options.rest_idle_timeout_seconds,
            # Close at once after refusing a body, instead of reading it for 10 s.
            lingering_time=0,
        )
        self._listener: asyncio.Server | None = None

    async def start(self) -> None:
        """Listens; OSError if it cannot."""
        await self._runner.setup()
        http = self._runner.server
        limit = self._options.rest_max_connections

        def protocol():
            return http() if len(http.connections) < limit else _Refused()

        self._listener = await asyncio.get_running_loop().create_server(
            protocol,
            self._options.host,
            self._options.rest_api_port,
            reuse_address=True,
            backlog=min(limit, 4096),  # A burst of connections waits, rather than retries.
        )

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
        await self._runner.cleanup()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.rel_url.raw_path
        if self._metrics_path and path == self._metrics_path:
            # ProcessPrometheusRequest: any method, text/plain.
            page = self._server.metrics.page().encode()
            return web.Response(body=page, content_type="text/plain")
        if (request.content_length or 0) > self._options.rest_max_body_bytes:
            return self._too_large(request.content_length)
        # The body is read before any answer, so that the connection stays usable:
        # a keep-alive client sends its next request on it.
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large(None)
        if not rest_api.API_PATH.fullmatch(path):
            return _error(
                grpc.StatusCode.NOT_FOUND,
                f"Not found: {request.method} {path} (TensorFlow Serving's API is under /v1/)",
            )
        call = functools.partial(
            rest_api.handle,
            self._server,
            request.method,
            path,
            body,
            request.headers.get("Origin", ""),
        )
        timeout = self._options.rest_api_timeout_in_ms / 1000
        try:
            loop = asyncio.get_running_loop()
            status, data = await asyncio.wait_for(loop.run_in_executor(self._pool, call), timeout)
        except TimeoutError:
            response = _error(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"Deadline Exceeded: no answer within {self._options.rest_api_timeout_in_ms} ms "
                "(--rest_api_timeout_in_ms)",
            )
        except Exception as e:  # A bug here, not the client's fault: say so, keep serving.
            logging.exception("REST %s %s failed", request.method, path)
            response = _error(grpc.StatusCode.INTERNAL, first_line(e))
        else:
            response = web.Response(status=status, body=data, content_type=_JSON)
        if self._options.rest_api_enable_cors_support:
            # As http_server.cc: on every answer the API dispatched, errors too.
            response.headers.update(rest_api.CORS_HEADERS)
        return response

    def _too_large(self, length: int | None) -> web.Response:
        size = f"of {length} bytes " if length else ""
        response = _error(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"request body {size}is larger than the server's limit of "
            f"{self._options.rest_max_body_bytes} bytes (--rest_max_body_bytes)",
        )
        response.force_close()
        return response


class _Refused(asyncio.Protocol):
    """A connection over the limit: 503 UNAVAILABLE, then closed."""

    _BODY = rest_api.error_body("Too many open connections: try again later (rest_max_connections)")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(self._BODY), self._BODY)
        )
        transport.close()
