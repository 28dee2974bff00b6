"""Server-side batching, as TensorFlow Serving's --enable_batching does it.

TensorFlow Serving wraps each loaded model's Session in a BatchingSession
(batching/batching_session.cc) fed by one SharedBatchScheduler for the whole
server: every Session::Run becomes a task in a queue of its own kind (the same
input and output tensors), tasks are merged along dimension 0 into a batch of
at most max_batch_size, a batch runs once it is full or its oldest task has
waited batch_timeout_micros, on one of num_batch_threads threads, and the
outputs are split back. This is the same scheduler in Python, with the same
options, defaults, padding rules and error messages; a run costs the merged
batch's time once instead of each task's.
"""

import bisect
import collections
import dataclasses
import itertools
import os
import threading
import time

import grpc
import numpy as np

from local_server.protos import batching_parameters_pb2
from serving.status import ServingError, invalid

BatchingParameters = batching_parameters_pb2.BatchingParameters
# SharedBatchScheduler's defaults; the thread pool's name when --enable_batching
# comes without a --batching_parameters_file (server.cc).
DEFAULT_THREAD_POOL_NAME = "model_server_batch_threads"


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = os.cpu_count() or 1
    thread_pool_name: str = "batch_threads"
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False


def options_from_parameters(params: BatchingParameters | None) -> BatchingOptions:
    """BatchingParameters (a --batching_parameters_file) to options, checked as there."""
    if params is None:
        return BatchingOptions(thread_pool_name=DEFAULT_THREAD_POOL_NAME)
    defaults = BatchingOptions()
    if (
        params.HasField("enable_large_batch_splitting")
        and params.enable_large_batch_splitting.value
    ):
        raise invalid(
            "enable_large_batch_splitting is not supported by the local server: remove it "
            "(and max_execution_batch_size) from the batching parameters"
        )

    def value(field, default):
        return getattr(params, field).value if params.HasField(field) else default

    options = BatchingOptions(
        max_batch_size=value("max_batch_size", defaults.max_batch_size),
        batch_timeout_micros=value("batch_timeout_micros", defaults.batch_timeout_micros),
        max_enqueued_batches=value("max_enqueued_batches", defaults.max_enqueued_batches),
        num_batch_threads=value("num_batch_threads", defaults.num_batch_threads),
        thread_pool_name=value("thread_pool_name", defaults.thread_pool_name),
        allowed_batch_sizes=tuple(params.allowed_batch_sizes),
        pad_variable_length_inputs=params.pad_variable_length_inputs,
    )
    sizes = options.allowed_batch_sizes
    if sizes and sizes[-1] != options.max_batch_size:  # WrapSessionForBatching
        raise invalid(
            "Last entry in allowed_batch_sizes must match max_batch_size; last entry was "
            f"{sizes[-1]}; expected {options.max_batch_size}"
        )
    if any(b <= a for a, b in itertools.pairwise(sizes)):
        raise invalid("allowed_batch_sizes entries must be monotonically increasing")
    for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
        if getattr(options, name) < 1:
            raise invalid(f"{name} must be positive; was {getattr(options, name)}")
    return options


@dataclasses.dataclass(eq=False)
class _Task:
    feeds: dict[str, np.ndarray]
    size: int
    enqueued: float
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    outputs: list[np.ndarray] | None = None
    error: Exception | None = None


class _Queue:
    """One kind of run: its batches, the last of them open (SharedBatchScheduler's Queue)."""

    def __init__(self, key: tuple, run, fetches: tuple[str, ...]):
        self.key, self.run, self.fetches = key, run, fetches
        self.gone = False  # Its version was unloaded: drop the queue once empty.
        self.batches: collections.deque[list[_Task]] = collections.deque([[]])
        self.open_since = 0.0

    def size(self, batch: list[_Task]) -> int:
        return sum(task.size for task in batch)


class BatchScheduler:
    """The server's one scheduler: queues per (model version, kind of run), shared threads."""

    def __init__(self, options: BatchingOptions, metrics=None):
        self.options = options
        self._metrics = metrics
        self._queues: dict[tuple, _Queue] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{options.thread_pool_name}_{i}", daemon=True)
            for i in range(options.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def run(self, owner, run, feeds: dict[str, np.ndarray], fetches: tuple[str, ...]):
        """Runs `run(feeds, fetches)` as part of a batch; returns this task's outputs.

        owner: the loaded version the run belongs to (its queues are its own).
        """
        size = _batch_size(feeds)
        if self._metrics is not None:
            self._metrics.record_input_batch(size)
        options = self.options
        if size > options.max_batch_size:
            raise invalid(
                f"Task size {size} is larger than maximum input batch size {options.max_batch_size}"
            )
        key = (id(owner), tuple(sorted(feeds)), fetches)
        task = _Task(feeds, size, time.monotonic())
        with self._cond:
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = _Queue(key, run, fetches)
            open_batch = queue.batches[-1]
            if queue.size(open_batch) + size > options.max_batch_size:
                if len(queue.batches) >= options.max_enqueued_batches:
                    raise ServingError(
                        grpc.StatusCode.UNAVAILABLE,
                        "The batch scheduling queue to which this task was submitted is full; "
                        f"currently {len(queue.batches)} batches enqueued and "
                        f"max_enqueued_batches is {options.max_enqueued_batches}",
                    )
                queue.batches.append(open_batch := [])
            opened = not open_batch
            if opened:
                queue.open_since = task.enqueued
            open_batch.append(task)
            # Wake a batch thread only when there is news for it: a batch that
            # is ready, or a new timeout to wait for. Waking it for every task
            # costs more than the batching saves.
            if opened or len(queue.batches) > 1 or queue.size(open_batch) >= options.max_batch_size:
                self._cond.notify()
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.outputs

    def forget(self, owner) -> None:
        """Drops an unloaded version's queues (now, or once their last batch is taken)."""
        with self._cond:
            for key in [k for k in self._queues if k[0] == id(owner)]:
                self._queues[key].gone = True
                self._drop_if_done(self._queues[key])

    def _drop_if_done(self, queue: _Queue) -> None:
        if queue.gone and len(queue.batches) == 1 and not queue.batches[0]:
            del self._queues[queue.key]

    # ---- The batch threads -------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                picked = self._next_batch()
                while picked is None:
                    if self._closed:
                        return
                    self._cond.wait(self._wait_seconds())
                    picked = self._next_batch()
            self._process(*picked)

    def _next_batch(self):
        """The schedulable batch whose oldest task waited longest, taken out of its queue."""
        now, timeout = time.monotonic(), self.options.batch_timeout_micros / 1e6
        best = None
        for queue in self._queues.values():
            if len(queue.batches) > 1:
                start = queue.batches[0][0].enqueued
            elif queue.batches[0] and (
                queue.size(queue.batches[0]) >= self.options.max_batch_size
                or now >= queue.open_since + timeout
                or self._closed
            ):
                start = queue.open_since
            else:
                continue
            if best is None or start < best[0]:
                best = (start, queue)
        if best is None:
            return None
        queue = best[1]
        batch = queue.batches.popleft()
        if not queue.batches:
            queue.batches.append([])
        self._drop_if_done(queue)
        return queue, batch

    def _wait_seconds(self) -> float | None:
        """Until the earliest open batch times out (None: until notified)."""
        timeout = self.options.batch_timeout_micros / 1e6
        deadlines = [
            q.open_since + timeout
            for q in self._queues.values()
            if len(q.batches) == 1 and q.batches[0]
        ]
        return max(min(deadlines) - time.monotonic(), 0) if deadlines else None

    def _process(self, queue: _Queue, batch: list[_Task]) -> None:
        size = sum(task.size for task in batch)
        padded = padded_size(self.options.allowed_batch_sizes, size)
        try:
            feeds = _merge(batch, padded - size, self.options.pad_variable_length_inputs)
            outputs = queue.run(feeds, queue.fetches)
            _split(batch, outputs, padded)
        except Exception as e:  # Every task of the batch gets the batch's error.
            for task in batch:
                task.error = e
        if self._metrics is not None:
            now = time.monotonic()
            self._metrics.record_batch(
                self.options.thread_pool_name, [now - t.enqueued for t in batch], size, padded
            )
        for task in batch:
            task.done.set()


def _batch_size(feeds: dict[str, np.ndarray]) -> int:
    """ComputeTensorBatchSize: every input's dimension 0, all equal."""
    if not feeds:
        raise invalid("Batching Run() must have at least one input tensor")
    sizes = set()
    for array in feeds.values():
        if array.ndim == 0:
            raise invalid("Batching Run() input tensors must have at least one dimension")
        sizes.add(array.shape[0])
    if len(sizes) > 1:
        raise invalid("Batching Run() input tensors must have equal 0th-dimension size")
    return sizes.pop()


def padded_size(allowed: tuple[int, ...], size: int) -> int:
    """RoundToLowestAllowedBatchSize: the batch size a batch of `size` is padded to."""
    if not allowed:
        return size
    index = bisect.bisect_left(allowed, size)
    return allowed[index] if index < len(allowed) else size


def _merge(batch: list[_Task], padding: int, pad_variable_length: bool) -> dict[str, np.ndarray]:
    """MergeInputTensors: concatenated along dimension 0, padding rows copied from the last task."""
    merged = {}
    for name in batch[0].feeds:
        arrays = [task.feeds[name] for task in batch]
        if pad_variable_length:
            arrays = _pad_to_common_shape(arrays)
        elif any(a.shape[1:] != arrays[0].shape[1:] for a in arrays):
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Tensors with name '{name}' from different tasks have different shapes and "
                "padding is turned off. Set pad_variable_length_inputs to true, or ensure that "
                "all tensors with the same name have equal dimensions starting with the first "
                "dim.",
            )
        if padding:
            arrays.append(np.repeat(arrays[-1][:1], padding, axis=0))
        merged[name] = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
    return merged


def _pad_to_common_shape(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """AddPadding: every dimension but the 0th grown to the largest, filled with the first value."""
    if len({a.ndim for a in arrays}) > 1:
        raise invalid("Batching Run() input tensors must have the same number of dimensions")
    target = np.max([a.shape[1:] for a in arrays], axis=0) if arrays[0].ndim > 1 else ()
    padded = []
    for array in arrays:
        widths = [(0, 0)] + [(0, int(t) - s) for t, s in zip(target, array.shape[1:], strict=True)]
        fill = array.flat[0] if array.size else 0
        padded.append(
            np.pad(array, widths, constant_values=fill) if any(w for _, w in widths) else array
        )
    return padded


def _split(batch: list[_Task], outputs: list[np.ndarray], padded: int) -> None:
    """SplitOutputTensors: each task gets its rows of every output."""
    for output in outputs:
        if output.ndim == 0:
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION, "Batched output tensor has 0 dimensions"
            )
        if output.shape[0] != padded:
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION,
                "Batched output tensor's 0th dimension does not equal the sum of the 0th "
                "dimension sizes of the input tensors",
            )
    start = 0
    for task in batch:
        task.outputs = [output[start : start + task.size] for output in outputs]
        start += task.size
