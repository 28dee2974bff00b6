"""The versions of one model: which are on disk, which the policy wants, which answer.

Like TensorFlow Serving's file-system source and its AvailabilityPreservingPolicy:
the model's version policy (model_version_policy in the model config; by
default `latest {num_versions: 1}`) says which numeric versions under the base
path to serve; new ones are loaded and warmed up before they take traffic, and
a version leaves only once a wanted version is AVAILABLE (or its files are
gone), so that requests never find the model empty. Requests in flight finish
on the version they hold. A version that fails to load is reported in the
status and skipped until its files change; with the `latest` policy the newest
version that loads keeps serving.
"""

import dataclasses
import gc
import os
import threading
import time
from collections.abc import Callable

import grpc
import tensorflow as tf
from absl import logging
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.config.file_system_storage_path_source_pb2 import (
    FileSystemStoragePathSourceConfig,
)

from local_server.errors import servable_not_found
from local_server.servable import Servable
from local_server.warmup import warm_up
from serving import versions
from serving.status import ServingError, first_line

State = get_model_status_pb2.ModelVersionStatus.State
VersionPolicy = FileSystemStoragePathSourceConfig.ServableVersionPolicy
# Called after each load attempt: (version path, ok, seconds, warmup records).
LoadListener = Callable[[str, bool, float, int], None]


@dataclasses.dataclass
class VersionStatus:
    state: int
    error_code: int = 0  # tensorflow.error.Code; 0 is OK.
    error_message: str = ""


def wanted_versions(policy: VersionPolicy, candidates: list[int]) -> list[int]:
    """The versions an `all` or `specific` policy serves among those on disk (newest first).

    `latest`, which falls back to older versions when newer ones fail to load,
    is VersionManager.poll's.
    """
    candidates = sorted(candidates, reverse=True)
    if policy.WhichOneof("policy_choice") == "all":
        return candidates
    return [v for v in candidates if v in set(policy.specific.versions)]


class VersionManager:
    """Loads the versions the policy wants under the base path, on each poll.

    Loading happens on whichever thread polls (the polling thread, or a config
    reload that waits for its models); requests read `self._loaded`, a dict
    replaced in one assignment, so a request holds its Servable to the end even
    when the version is unloaded meanwhile.
    """

    def __init__(
        self,
        model_name: str,
        base_path: str,
        policy: VersionPolicy | None = None,
        servable_factory: Callable[[str, int], Servable] = Servable,
        on_load: LoadListener | None = None,
    ):
        self.model_name, self.base_path = model_name, base_path
        self.policy = policy or VersionPolicy()
        self._new_servable = servable_factory
        self._on_load = on_load
        self._loaded: dict[int, Servable] = {}
        self._retired: list[Servable] = []  # Unloaded, to be freed on the next poll.
        self._status: dict[int, VersionStatus] = {}
        self._failed: dict[int, tuple] = {}  # version -> its files' fingerprint at failure
        self._lock = threading.Lock()  # The status map.
        self._poll_lock = threading.Lock()  # One poll at a time.
        self._warned_empty = False

    def servable(self, version: int | None = None) -> Servable:
        loaded = self._loaded
        if version is None and loaded:
            return loaded[max(loaded)]
        if version is not None and version in loaded:
            return loaded[version]
        spec = (
            f"Specific({self.model_name}, {version})"
            if version is not None
            else f"Latest({self.model_name})"
        )
        raise servable_not_found(spec)

    def state(self, version: int) -> int | None:
        with self._lock:
            status = self._status.get(version)
        return status.state if status else None

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
        """One look at the base path: load what the policy wants, unload what it no longer does."""
        with self._poll_lock:
            self._retired.clear()
            on_disk = versions.version_dirs(self.base_path)
            for version in [v for v in self._loaded if v not in on_disk]:
                logging.info("Version %d of %s was removed from disk", version, self.model_name)
                self._unload(version)
            candidates = [
                v for v, path in on_disk.items() if self._failed.get(v) != _fingerprint(path)
            ]
            if self.policy.WhichOneof("policy_choice") in ("all", "specific"):
                wanted = wanted_versions(self.policy, candidates)
                for version in wanted:
                    if version not in self._loaded:
                        self._load(version, on_disk[version])
            else:  # latest: a version that fails leaves its place to the newest that loads.
                count, wanted = max(self.policy.latest.num_versions, 1), []
                for version in sorted(candidates, reverse=True):
                    if len(wanted) == count:
                        break
                    if version in self._loaded or self._load(version, on_disk[version]):
                        wanted.append(version)
            if not wanted or any(v in self._loaded for v in wanted):
                for version in [v for v in self._loaded if v not in wanted]:
                    self._unload(version)
            if not on_disk and not self._warned_empty:
                logging.warning(
                    "No versions of model %s found under %s: export one (make export)",
                    self.model_name,
                    self.base_path,
                )
            self._warned_empty = not on_disk

    def unload_all(self) -> None:
        """The model left the config: every version goes."""
        with self._poll_lock:
            for version in list(self._loaded):
                self._unload(version)

    def _load(self, version: int, path: str) -> bool:
        logging.info("Loading version %d of %s from %s", version, self.model_name, path)
        self._set_status(version, VersionStatus(State.LOADING))
        start = time.perf_counter()
        warmup_count = 0
        try:
            servable = self._new_servable(path, version)
            warmup_count = warm_up(servable)
        except Exception as e:  # A broken version must not take the server down.
            code = e.error_code if isinstance(e, tf.errors.OpError) else 2  # 2: UNKNOWN
            message = f"Failed to load version {version} from {path}: {first_line(e)}"
            logging.error("%s", message)
            self._failed[version] = _fingerprint(path)
            self._set_status(version, VersionStatus(State.END, code, message))
            self._loaded_event(path, False, time.perf_counter() - start, warmup_count)
            return False
        # TensorFlow holds millions of Python objects. Move them out of the
        # garbage collector's sight, or every full collection (which the many
        # small lists of JSON requests trigger) pauses all requests.
        gc.freeze()
        self._loaded = {**self._loaded, version: servable}
        self._failed.pop(version, None)
        self._set_status(version, VersionStatus(State.AVAILABLE))
        seconds = time.perf_counter() - start
        self._loaded_event(path, True, seconds, warmup_count)
        logging.info(
            "Version %d of %s is AVAILABLE (loaded and %d warmup requests in %.1f s)",
            version,
            self.model_name,
            warmup_count,
            seconds,
        )
        return True

    def _unload(self, version: int) -> None:
        loaded = dict(self._loaded)
        servable = loaded.pop(version)
        self._loaded = loaded
        self._set_status(version, VersionStatus(State.END))
        servable.unloaded()
        logging.info("Unloaded version %d of %s", version, self.model_name)
        # Freeing a SavedModel's Python objects holds the GIL for a while: do
        # it on the next poll, not while other versions' requests arrive.
        self._retired.append(servable)

    def _loaded_event(self, path: str, ok: bool, seconds: float, warmup_count: int) -> None:
        if self._on_load is not None:
            self._on_load(path, ok, seconds, warmup_count)

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
