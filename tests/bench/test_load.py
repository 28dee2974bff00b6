"""bench/load.py: the served rows' load generator counts, checks and fails loudly."""

import os
import time

import grpc
import pytest
from conftest import export_model, local_server

from bench import load
from clients import mnist_client, serving_client
from models import mnist_data

IMAGES = mnist_data.scale_images(mnist_data.synthetic(4, seed=5).images)


def sleeper(seconds: float):
    return lambda: lambda: time.sleep(seconds)


def test_run_counts_every_request_of_every_client():
    summary = load.run(sleeper(0.005), clients=3, seconds=0.5)
    # Three clients of 5 ms requests for 0.5 s: about 300, never more.
    assert 30 < summary["requests"] <= 3 * 0.5 / 0.005
    assert summary["per_s"] == pytest.approx(summary["requests"] / 0.5, rel=0.3)
    assert 5 <= summary["p50_ms"] <= summary["p99_ms"]


def test_a_failed_request_stops_the_run_with_its_error():
    calls = []

    def sender():
        def send():
            calls.append(1)
            if len(calls) == 5:
                raise RuntimeError("the fifth answer was wrong")

        return send

    start = time.monotonic()
    with pytest.raises(RuntimeError, match="the fifth answer was wrong"):
        load.run(sender, clients=2, seconds=30)
    assert time.monotonic() - start < 10  # Stopped at the failure, not after 30 s.


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = export_model(tmp_path_factory.mktemp("load"), model="mnist_pure_jax")
    with local_server("mnist_pure_jax", os.path.dirname(path)) as server:
        yield server


def grpc_client(server, model="mnist_pure_jax"):
    return serving_client.GrpcClient(server.grpc_address, model, timeout=30)


def rest_client(server, model="mnist_pure_jax"):
    return serving_client.RestClient(f"localhost:{server.rest_port}", model, timeout=30)


def test_senders_load_the_server_with_the_clients_requests(server):
    name = mnist_client.check_model(grpc_client(server), len(IMAGES))
    grpc_client(server).predict({name: IMAGES})  # Compiles batch 4 before the timed runs.
    for send in (
        load.predict_sender(grpc_client(server), name, IMAGES),
        load.rest_sender(rest_client(server), name, IMAGES),
    ):
        assert load.run(send, clients=2, seconds=1.0)["requests"] > 2


def test_a_wrong_answer_fails_the_run(server):
    name = mnist_client.check_model(grpc_client(server), len(IMAGES))
    with pytest.raises(RuntimeError, match="HTTP 404"):
        load.run(load.rest_sender(rest_client(server, "nope"), name, IMAGES), 1, 5)
    with pytest.raises(grpc.RpcError) as raised:
        load.run(load.predict_sender(grpc_client(server, "nope"), name, IMAGES), 1, 5)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
