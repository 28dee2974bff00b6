"""local_server.rest_server: the REST transport's headers, limits and timeouts, over sockets."""

import http.client
import socket
import time

import pytest
import requests
from conftest import local_server
from half_plus_two import write_tf1

IDLE_SECONDS = 1.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("models") / "half_plus_two"
    write_tf1(base / "1")
    with local_server(
        "half_plus_two",
        base,
        f"--rest_idle_timeout_seconds={IDLE_SECONDS}",
        "--rest_max_connections=20",
        "--rest_max_body_bytes=100000",
        "--rest_api_enable_cors_support",
    ) as server:
        yield server


def connect(server) -> socket.socket:
    return socket.create_connection(("localhost", server.rest_port), timeout=10)


def read_all(sock: socket.socket) -> bytes:
    """What the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


@pytest.mark.parametrize(
    "method, suffix, body, status",
    [
        pytest.param("GET", "", None, 200, id="status"),
        pytest.param("POST", ":predict", '{"instances": [1.0]}', 200, id="predict"),
        pytest.param("POST", ":predict", "{", 400, id="bad JSON"),
        pytest.param("GET", "/versions/9", None, 404, id="unknown version"),
        pytest.param("PATCH", "", None, 400, id="other method"),
    ],
)
def test_every_v1_answer_is_json_with_cors_headers(server, method, suffix, body, status):
    response = requests.request(method, server.rest_url + suffix, data=body, timeout=10)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert isinstance(response.json(), dict)


def test_a_path_outside_v1_is_not_found(server):
    response = requests.get(f"http://localhost:{server.rest_port}/statuspage", timeout=10)
    assert response.status_code == 404 and "/v1/" in response.json()["error"]


def test_a_connection_that_sends_half_a_header_is_closed_after_the_timeout(server):
    with connect(server) as sock:
        sock.sendall(b"GET /v1/models/half_plus_two HTTP/1.1\r\nHost: x\r\n")
        start = time.monotonic()
        assert read_all(sock) == b""
        assert IDLE_SECONDS * 0.9 <= time.monotonic() - start < IDLE_SECONDS + 10


def test_an_idle_keep_alive_connection_is_closed_after_the_timeout(server):
    with connect(server) as sock:
        sock.sendall(b"GET /v1/models/half_plus_two HTTP/1.1\r\nHost: x\r\n\r\n")
        start = time.monotonic()
        answer = read_all(sock)
        assert answer.startswith(b"HTTP/1.1 200") and b"AVAILABLE" in answer
        assert time.monotonic() - start >= IDLE_SECONDS * 0.9


def test_connections_over_the_limit_get_503_and_are_closed(server):
    held = [connect(server) for _ in range(20)]
    try:
        time.sleep(0.2)  # The server has accepted them all.
        with connect(server) as extra:
            answer = read_all(extra)
        assert answer.startswith(b"HTTP/1.1 503") and b"rest_max_connections" in answer
    finally:
        for sock in held:
            sock.close()
    # Once they are closed, new connections are served again.
    deadline = time.monotonic() + 10
    while True:
        response = requests.get(server.rest_url, timeout=10)
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert response.status_code == 200


def test_a_body_over_the_limit_gets_429_unread_and_the_connection_closed(server):
    with connect(server) as sock:
        sock.sendall(
            b"POST /v1/models/half_plus_two:predict HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 200000\r\n\r\n{"
        )
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 429")
    assert b"--rest_max_body_bytes" in answer and b"Connection: close" in answer


def test_a_chunked_body_is_read_and_limited_too(server):
    def chunks(size):
        yield b'{"instances": ['
        yield b"1.0, " * (size // 5)
        yield b"1.0]}"

    small = requests.post(f"{server.rest_url}:predict", data=chunks(100), timeout=10)
    assert small.status_code == 200 and len(small.json()["predictions"]) == 21
    large = requests.post(f"{server.rest_url}:predict", data=chunks(200000), timeout=10)
    assert large.status_code == 429


def test_a_request_over_the_timeout_gets_504_deadline_exceeded(tmp_path):
    write_tf1(tmp_path / "half_plus_two" / "1")
    with local_server(
        "half_plus_two",
        tmp_path / "half_plus_two",
        "--rest_api_timeout_in_ms=1",
        "--rest_api_enable_cors_support",
    ) as server:
        body = '{"instances": [' + "1.0, " * 200000 + "1.0]}"
        response = requests.post(f"{server.rest_url}:predict", data=body, timeout=30)
        assert response.status_code == 504
        assert response.json()["error"].startswith("Deadline Exceeded")
        assert "--rest_api_timeout_in_ms" in response.json()["error"]
        # CORS headers on the timeout's answer too, as on every dispatched answer.
        assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("path", ["/elsewhere", "/v1/models/half_plus_two/nope"])
def test_an_error_answer_keeps_the_connection_for_the_next_request(server, path):
    # A keep-alive client sends its next request on the same connection: the
    # server reads the body of a request it refuses, and does not close it.
    connection = http.client.HTTPConnection("localhost", server.rest_port, timeout=10)
    try:
        connection.request("PUT", path, body=b'{"instances": [1.0, 2.0]}')
        refused = connection.getresponse()
        refused.read()
        assert 400 <= refused.status < 500
        assert refused.getheader("Connection", "").lower() != "close"
        time.sleep(0.2)  # A close would have arrived by now.
        connection.request("POST", "/v1/models/half_plus_two:predict", body=b'{"instances": [1.0]}')
        answer = connection.getresponse()
        assert answer.status == 200 and b"2.5" in answer.read()
    finally:
        connection.close()
