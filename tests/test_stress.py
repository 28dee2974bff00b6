"""Stress under change: clients stream requests while versions come, break and go.

`make test` runs it for STRESS_SECONDS=10; `make stress` for 120.
"""

import os
import shutil
import threading
import time

import numpy as np
import requests
from conftest import export_model, local_server

import serving_client
from models import mnist_data

STRESS_SECONDS = float(os.environ.get("STRESS_SECONDS", "10"))
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
        self._loop(lambda: seen.append(client.predict_version("inputs", IMAGES)))

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
            status = self.server.status()
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


def test_stress_under_change(tmp_path):
    base = tmp_path / "mnist_pure_jax"
    export_model(tmp_path, model="mnist_pure_jax", num_epochs=0)
    phase = STRESS_SECONDS / 4
    with (
        local_server("mnist_pure_jax", base) as server,
        StatusWatch(server, broken=3) as watch,
        Clients(server) as clients,
    ):
        time.sleep(phase)
        export_model(tmp_path, model="mnist_pure_jax", num_epochs=0)  # Version 2...
        server.wait_for(2)  # ...is picked up.

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
        export_model(
            tmp_path, model="mnist_pure_jax", num_epochs=0
        )  # Version 4, past the broken 3.
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
