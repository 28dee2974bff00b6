"""A model's version states from TensorFlow Serving's REST API, and waiting for one.

Any server that speaks TensorFlow Serving's API answers it: Docker,
tensorflow_model_server and the local server alike. `make serve` waits with
it (tools/server_process.py), and so do the tests and the benchmark
(local_server/harness.py).
"""

import time
from collections.abc import Callable

import requests


def version_states(url: str, timeout: float = 5) -> list[dict]:
    """GET /v1/models/NAME: its model_version_status entries ([] before it has a version)."""
    response = requests.get(url, timeout=timeout)
    payload = response.json()
    if response.status_code == 404:
        return []  # Known to the server only once it found a version.
    if response.status_code != 200:
        raise ValueError(f"HTTP {response.status_code}: {payload.get('error', payload)}")
    return payload["model_version_status"]


def describe(statuses: list[dict]) -> str:
    """A line per version, newest first: its state and error, if any."""
    lines = []
    for s in sorted(statuses, key=lambda s: -int(s["version"])):
        error = s.get("status", {}).get("error_message")
        lines.append(f"  version {s['version']}: {s['state']}" + (f" ({error})" if error else ""))
    return "\n".join(lines)


def wait_for(
    url: str,
    *,
    version: int | None = None,
    state: str = "AVAILABLE",
    timeout: float = 120,
    alive: Callable[[], bool] = lambda: True,
    interval: float = 0.1,
) -> list[dict]:
    """Polls until `version` (None: any version) is in `state`; returns the entries that are.

    Raises RuntimeError when `alive()` turns false (the server exited), and
    TimeoutError, with the last answer, when `timeout` seconds pass.
    """
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("the model server exited")
        try:
            statuses = version_states(url)
        except (requests.RequestException, ValueError) as e:
            statuses, last = [], f"no answer ({type(e).__name__})"
        matching = [
            s
            for s in statuses
            if s["state"] == state and (version is None or str(s["version"]) == str(version))
        ]
        if matching:
            return matching
        if statuses:
            last = describe(statuses).strip()
        time.sleep(interval)
    raise TimeoutError(last)
