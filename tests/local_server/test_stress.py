"""Stress: clients stream requests while versions come, break and go; idle sockets pile up.

`make test` runs the short forms (STRESS_SECONDS=6; 200 idle connections for
4 s); `make stress` the long ones (120 s; 2,000 idle connections for 30 s).
"""

import os
import shutil
import socket
import threading
import time

import numpy as np
import pytest
import requests
from conftest import answering_version, copy_version, local_server
from half_plus_two import write_tf1

from clients import serving_client
from models import mnist_data
from serving import versions

STRESS_SECONDS = float(os.environ.get("STRESS_SECONDS", "6"))
HOSTILE_CONNECTIONS = int(os.environ.get("HOSTILE_CONNECTIONS", "200"))
HOSTILE_SECONDS = float(os.environ.get("HOSTILE_SECONDS", "4"))
IMAGES = mnist_data.scale_images(mnist_data.synthetic(4, seed=11).images)


class Clients:
    """gRPC and REST clients in threads, sending until stopped; they record everything."""

    def __init__(self, server, grpc_clients: int = 2, rest_clients: int = 2):
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.versions: dict[int, list[int]] = {}  # gRPC client -> versions that answered
        self.threads = [
            threading.Thread(target=self._grpc, args=(server, i)) for i in range(grpc_clients)
        ] + [threading.Thread(target=self._rest, args=(server,)) for _ in range(rest_clients)]

    def _loop(self, send) -> None:
        while not self.stop.is_set():
            start = time.perf_counter()
            try:
                send()
            except Exception as e:  # Any failure of a well-formed request counts.
                self.errors.append(f"{type(e).__name__}: {e}")
                continue
            self.latencies.append(time.perf_counter() - start)

    def _grpc(self, server, index: int) -> None:
        client = serving_client.GrpcClient(server.grpc_address, server.model_name, 30)
        seen = self.versions.setdefault(index, [])
        self._loop(lambda: seen.append(answering_version(client, "inputs", IMAGES)))

    def _rest(self, server) -> None:
        session = requests.Session()

        def send():
            response = session.post(
                f"{server.rest_url}:predict", json={"instances": IMAGES.tolist()}, timeout=30
            )
            assert response.status_code == 200, response.text
            assert np.asarray(response.json()["predictions"]).shape == (len(IMAGES), 10)

        self._loop(send)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join()


class StatusWatch:
    """Reads the model's status every 50 ms and checks it against what is true."""

    def __init__(self, server, broken: int):
        self.server, self.broken = server, broken
        self.violations: list[str] = []
        self.reads = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch)

    def _watch(self) -> None:
        while not self.stop.is_set():
            try:
                status = self.server.status()
            except Exception as e:  # A failed read is a finding too, not a dead watcher.
                self.violations.append(f"status read failed: {type(e).__name__}: {e}")
                time.sleep(0.05)
                continue
            available = [v for v, s in status.items() if s["state"] == "AVAILABLE"]
            if len(available) != 1:
                self.violations.append(f"{len(available)} versions AVAILABLE: {status}")
            if status.get(str(self.broken), {}).get("state") == "AVAILABLE":
                self.violations.append(f"broken version {self.broken} AVAILABLE")
            self.reads += 1
            time.sleep(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


@pytest.mark.slow
def test_stress_under_change(tmp_path, untrained_mlp):
    base = tmp_path / "mnist_pure_jax"
    copy_version(untrained_mlp, base)
    # The versions to come, published under the load as an export publishes (a rename into
    # place): an export in this process would compete with the clients' threads for the GIL.
    coming = [str(copy_version(untrained_mlp, tmp_path / f"next-{i}")) for i in (1, 2)]
    phase = STRESS_SECONDS / 4
    with (
        local_server("mnist_pure_jax", base, process=True) as server,
        StatusWatch(server, broken=3) as watch,
        Clients(server) as clients,
    ):
        time.sleep(phase)
        assert versions.publish(coming[0], str(base), None) == 2
        server.wait_for(2)  # Picked up.

        time.sleep(phase)
        broken = base / ".partial-3"  # A broken version appears (renamed in whole).
        shutil.copytree(base / "2", broken)
        pb = broken / "saved_model.pb"
        pb.write_bytes(pb.read_bytes()[: pb.stat().st_size // 2])
        broken.rename(base / "3")
        entry = server.wait_for(3, state="END")
        assert "Failed to load version 3" in entry["status"]["error_message"]
        assert server.status()["2"]["state"] == "AVAILABLE"  # Still serving the good one.

        time.sleep(phase)
        shutil.rmtree(base / "1")  # An old version is deleted.
        assert versions.publish(coming[1], str(base), None) == 4  # Past the broken 3.
        server.wait_for(4)
        time.sleep(phase)

    latencies_ms = np.asarray(clients.latencies) * 1000
    print(
        f"\nstress ({STRESS_SECONDS:g} s, 2 gRPC + 2 REST clients): {len(latencies_ms)} requests "
        f"served, {len(clients.errors)} errors, p50 {np.percentile(latencies_ms, 50):.1f} ms, "
        f"p99 {np.percentile(latencies_ms, 99):.1f} ms; {watch.reads} status reads, "
        f"{len(watch.violations)} untrue"
    )
    assert clients.errors == []
    assert watch.violations == []
    assert len(latencies_ms) > 100 and watch.reads > 10
    for seen in clients.versions.values():
        # Each client saw versions 1, 2 and 4 in that order, and never 3.
        assert seen == sorted(seen) and set(seen) == {1, 2, 4}, sorted(set(seen))
    assert "Failed to load version 3" in server.log()


def proc_status(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def test_idle_connections_take_no_threads_and_are_closed_by_the_server(tmp_path):
    """Slowloris: connections that send half a request header and wait.

    Held for HOSTILE_SECONDS, the server's idle timeout: its threads stay
    bounded, its memory too, a normal request is served meanwhile, and at the
    timeout the server closes every idle connection.
    """
    write_tf1(tmp_path / "half_plus_two" / "1")
    timeout = HOSTILE_SECONDS
    with local_server(
        "half_plus_two",
        tmp_path / "half_plus_two",
        f"--rest_idle_timeout_seconds={timeout}",
        "--rest_api_num_threads=8",
        process=True,
    ) as server:
        session = requests.Session()

        def predict_ms() -> float:
            start = time.perf_counter()
            response = session.post(f"{server.rest_url}:predict", data='{"instances": [1.0]}')
            assert response.json() == {"predictions": [2.5]}
            return (time.perf_counter() - start) * 1000

        for _ in range(20):  # Every REST thread started, as under load.
            predict_ms()
        pid = server.process.pid
        threads_before, rss_before = proc_status(pid, "Threads"), proc_status(pid, "VmRSS")
        sockets, opened = [], time.monotonic()
        try:
            for _ in range(HOSTILE_CONNECTIONS):
                sock = socket.create_connection(("localhost", server.rest_port), timeout=60)
                sock.sendall(b"POST /v1/models/half_plus_two:predict HTTP/1.1\r\nHost: x\r\n")
                sockets.append(sock)
            latencies, threads, rss = [], [], []
            while time.monotonic() - opened < timeout * 0.95:
                latencies.append(predict_ms())
                threads.append(proc_status(pid, "Threads"))
                rss.append(proc_status(pid, "VmRSS"))
                time.sleep(0.1)
            closed_by_server = 0
            for sock in sockets:  # Each gets its end of file from the server, or times out.
                sock.settimeout(max(1.0, opened + timeout + 30 - time.monotonic()))
                closed_by_server += sock.recv(1) == b""
            held = time.monotonic() - opened
        finally:
            for sock in sockets:
                sock.close()
        growth_mib = (max(rss) - rss_before) / 1024
        print(
            f"\nidle connections: {HOSTILE_CONNECTIONS} held {held:.0f} s "
            f"(server timeout {timeout:g} s): server threads {threads_before} -> max "
            f"{max(threads)}, RSS +{growth_mib:.1f} MiB, {closed_by_server} closed by the "
            f"server; a predict meanwhile: p50 {np.percentile(latencies, 50):.1f} ms, max "
            f"{max(latencies):.1f} ms (target < 100 ms), {len(latencies)} sent"
        )
        assert max(threads) <= threads_before + 2  # No thread per connection.
        assert growth_mib < 100
        assert closed_by_server == HOSTILE_CONNECTIONS
        assert len(latencies) >= 3  # Served while the connections were held.
        assert predict_ms() > 0  # And after.
