"""The versions of one model: which are on disk, which is loaded, which answers.

Like TensorFlow Serving's default policy, it serves the newest numeric version
under the base path and polls for new ones. A new version is loaded and warmed
up before it takes traffic; requests in flight finish on the old one. A version
that fails to load is reported in the status and skipped, and the newest
version that loads keeps serving.
"""

import dataclasses
import gc
import os
import threading
import time

import grpc
import tensorflow as tf
from absl import logging
from tensorflow_serving.apis import get_model_status_pb2

import saved_model_lib
from local_server.errors import ServingError, first_line
from local_server.servable import Servable
from local_server.warmup import warm_up

State = get_model_status_pb2.ModelVersionStatus.State


@dataclasses.dataclass
class VersionStatus:
    state: int
    error_code: int = 0  # tensorflow.error.Code; 0 is OK.
    error_message: str = ""


class VersionManager:
    """Loads the newest loadable version under the base path, and keeps polling.

    Loading happens on the polling thread; requests read `self._served`, which
    is swapped in one assignment, so a request holds its Servable to the end
    even when a newer version replaces it meanwhile.
    """

    def __init__(self, model_name: str, base_path: str):
        self.model_name, self.base_path = model_name, base_path
        self._served: Servable | None = None
        self._retired: Servable | None = None  # Unloaded, to be freed on the next poll.
        self._status: dict[int, VersionStatus] = {}
        self._failed: dict[int, tuple] = {}  # version -> its files' fingerprint at failure
        self._lock = threading.Lock()
        self._warned_empty = False

    def servable(self, version: int | None = None) -> Servable:
        served = self._served
        if served is None or (version is not None and version != served.version):
            spec = (
                f"Specific({self.model_name}, {version})"
                if version
                else f"Latest({self.model_name})"
            )
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {spec}")
        return served

    def status(self, version: int | None = None) -> dict[int, VersionStatus]:
        with self._lock:
            statuses = dict(self._status)
        if version is not None:
            if version not in statuses:
                raise ServingError(
                    grpc.StatusCode.NOT_FOUND,
                    f"Could not find version {version} of model {self.model_name}",
                )
            return {version: statuses[version]}
        if not statuses:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {self.model_name}"
            )
        return statuses

    def poll(self) -> None:
        """One look at the base path: load what is newer, unload what is gone."""
        self._retired = None
        on_disk = saved_model_lib.version_dirs(self.base_path)
        served = self._served
        if served is not None and served.version not in on_disk:
            logging.info("Version %d was removed from disk; unloading it", served.version)
            self._set_status(served.version, VersionStatus(State.END))
            self._served = served = None
        for version in sorted(on_disk, reverse=True):
            if served is not None and version <= served.version:
                break
            fingerprint = _fingerprint(on_disk[version])
            if self._failed.get(version) == fingerprint:
                continue  # Failed before and unchanged since: skip it.
            if self._load(version, on_disk[version], fingerprint):
                break
        if not on_disk and not self._warned_empty:
            logging.warning(
                "No versions of model %s found under %s: export one (make export)",
                self.model_name,
                self.base_path,
            )
        self._warned_empty = not on_disk

    def run(self, stop: threading.Event, period: float) -> None:
        while not stop.is_set():
            try:
                self.poll()
            except Exception:  # Keep serving what is loaded, whatever went wrong here.
                logging.exception("Polling %s failed", self.base_path)
            stop.wait(period)

    def _load(self, version: int, path: str, fingerprint: tuple) -> bool:
        logging.info("Loading version %d of %s from %s", version, self.model_name, path)
        self._set_status(version, VersionStatus(State.LOADING))
        start = time.perf_counter()
        try:
            servable = Servable(path, version)
            warmup_count = warm_up(servable)
        except Exception as e:  # A broken version must not take the server down.
            code = e.error_code if isinstance(e, tf.errors.OpError) else 2  # 2: UNKNOWN
            message = f"Failed to load version {version} from {path}: {first_line(e)}"
            logging.error("%s", message)
            self._failed[version] = fingerprint
            self._set_status(version, VersionStatus(State.END, code, message))
            return False
        # TensorFlow holds millions of Python objects. Move them out of the
        # garbage collector's sight, or every full collection (which the many
        # small lists of JSON requests trigger) pauses all requests.
        gc.freeze()
        old, self._served = self._served, servable
        self._failed.pop(version, None)
        self._set_status(version, VersionStatus(State.AVAILABLE))
        logging.info(
            "Version %d of %s is AVAILABLE (loaded and %d warmup requests in %.1f s)",
            version,
            self.model_name,
            warmup_count,
            time.perf_counter() - start,
        )
        if old is not None:
            self._set_status(old.version, VersionStatus(State.END))
            logging.info("Unloaded version %d", old.version)
            # Freeing a SavedModel's Python objects holds the GIL for a while:
            # do it on the next poll, not while the new version's first
            # requests arrive.
            self._retired = old
        return True

    def _set_status(self, version: int, status: VersionStatus) -> None:
        with self._lock:
            self._status[version] = status


def _fingerprint(path: str) -> tuple:
    """Changes when a version's files are rewritten, so a fixed version is retried."""
    stats = []
    for name in ("", "saved_model.pb", "variables"):
        try:
            st = os.stat(os.path.join(path, name))
            stats.append((st.st_mtime_ns, st.st_size))
        except OSError:
            stats.append(None)
    return tuple(stats)
