"""local_server.batching against TensorFlow Serving's batching_session_test.cc cases.

The scheduler runs a fake model (it records each merged batch and answers
2 * x), so each case checks what reaches the model, what each caller gets back,
and TensorFlow Serving's errors.
"""

import threading

import grpc
import numpy as np
import pytest
from conftest import wait_until
from google.protobuf import text_format

from local_server.batching import (
    BatchingOptions,
    BatchingParameters,
    BatchScheduler,
    options_from_parameters,
)
from local_server.metrics import Metrics
from serving.status import ServingError


class FakeModel:
    def __init__(self, gate: threading.Event | None = None):
        self.batches: list[dict[str, np.ndarray]] = []
        self.gate = gate

    def run(self, feeds, fetches):
        if self.gate is not None:
            self.gate.wait(10)
        self.batches.append(feeds)
        return [2 * feeds["x"] for _ in fetches]


@pytest.fixture
def scheduler_factory():
    made = []

    def make(**options) -> BatchScheduler:
        scheduler = BatchScheduler(BatchingOptions(**options), Metrics())
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        scheduler.close()


def concurrently(calls) -> list:
    """Runs each call on its own thread; their results (or exceptions), in order."""
    results = [None] * len(calls)

    def run(i, call):
        try:
            results[i] = call()
        except Exception as e:
            results[i] = e

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    return results


def test_concurrent_tasks_are_merged_and_split_back(scheduler_factory):
    """Basic: two tasks of sizes 1 and 2 become one batch of 3; each gets its own rows."""
    scheduler = scheduler_factory(max_batch_size=3, batch_timeout_micros=10_000_000)
    model = FakeModel()
    a, b = np.array([[1.0]]), np.array([[2.0], [3.0]])
    results = concurrently(
        [lambda x=x: scheduler.run(model, model.run, {"x": x}, ("y",)) for x in (a, b)]
    )
    assert len(model.batches) == 1 and model.batches[0]["x"].shape == (3, 1)
    np.testing.assert_array_equal(results[0][0], 2 * a)
    np.testing.assert_array_equal(results[1][0], 2 * b)


def test_a_lone_task_runs_after_the_timeout(scheduler_factory):
    scheduler = scheduler_factory(max_batch_size=8, batch_timeout_micros=1000)
    model = FakeModel()
    (y,) = scheduler.run(model, model.run, {"x": np.ones((2, 1))}, ("y",))
    assert y.shape == (2, 1) and len(model.batches) == 1


def test_task_larger_than_max_batch_size_is_refused(scheduler_factory):
    scheduler = scheduler_factory(max_batch_size=4)
    model = FakeModel()
    with pytest.raises(ServingError) as error:
        scheduler.run(model, model.run, {"x": np.ones((5, 1))}, ("y",))
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert str(error.value) == "Task size 5 is larger than maximum input batch size 4"
    assert not model.batches


def test_allowed_batch_sizes_pad_with_the_last_tasks_first_row(scheduler_factory):
    scheduler = scheduler_factory(max_batch_size=8, allowed_batch_sizes=(2, 4, 8))
    model = FakeModel()
    x = np.array([[5.0], [6.0], [7.0]])
    (y,) = scheduler.run(model, model.run, {"x": x}, ("y",))
    np.testing.assert_array_equal(model.batches[0]["x"], [[5.0], [6.0], [7.0], [5.0]])
    np.testing.assert_array_equal(y, 2 * x)  # The padding row is not returned.


def test_different_shapes_without_padding_fail_the_batch(scheduler_factory):
    scheduler = scheduler_factory(max_batch_size=2, batch_timeout_micros=10_000_000)
    model = FakeModel()
    results = concurrently(
        [
            lambda: scheduler.run(model, model.run, {"x": np.ones((1, 2))}, ("y",)),
            lambda: scheduler.run(model, model.run, {"x": np.ones((1, 3))}, ("y",)),
        ]
    )
    for result in results:
        assert isinstance(result, ServingError)
        assert result.code == grpc.StatusCode.FAILED_PRECONDITION
        assert "Tensors with name 'x' from different tasks have different shapes" in str(result)


def test_pad_variable_length_inputs(scheduler_factory):
    scheduler = scheduler_factory(
        max_batch_size=2, batch_timeout_micros=10_000_000, pad_variable_length_inputs=True
    )
    model = FakeModel()
    short, long = np.array([[1.0, 2.0]]), np.array([[3.0, 4.0, 5.0]])
    concurrently(
        [lambda x=x: scheduler.run(model, model.run, {"x": x}, ("y",)) for x in (short, long)]
    )
    merged = model.batches[0]["x"]
    assert merged.shape == (2, 3)
    # The shorter row is filled with its tensor's first value, as AddPadding does.
    assert sorted(map(tuple, merged.tolist())) == [(1.0, 2.0, 1.0), (3.0, 4.0, 5.0)]


def test_a_full_queue_is_unavailable(scheduler_factory):
    gate = threading.Event()
    scheduler = scheduler_factory(
        max_batch_size=1, max_enqueued_batches=1, num_batch_threads=1, batch_timeout_micros=0
    )
    model = FakeModel(gate)
    first = threading.Thread(
        target=scheduler.run, args=(model, model.run, {"x": np.ones((1, 1))}, ("y",))
    )
    first.start()  # Taken by the only thread, which waits at the gate.
    wait_until(lambda: scheduler_busy(scheduler))
    second = threading.Thread(
        target=scheduler.run, args=(model, model.run, {"x": np.ones((1, 1))}, ("y",))
    )
    second.start()  # Fills the one batch the queue may hold.
    try:
        wait_until(lambda: queued(scheduler))
        with pytest.raises(ServingError) as error:
            scheduler.run(model, model.run, {"x": np.ones((1, 1))}, ("y",))
        assert error.value.code == grpc.StatusCode.UNAVAILABLE
        assert str(error.value) == (
            "The batch scheduling queue to which this task was submitted is full; currently 1 "
            "batches enqueued and max_enqueued_batches is 1"
        )
    finally:
        gate.set()
        first.join(10)
        second.join(10)


def scheduler_busy(scheduler) -> bool:
    """The scheduler took every task into a running batch (its queues are empty)."""
    with scheduler._cond:
        return all(
            len(q.batches) == 1 and not q.batches[0] for q in scheduler._queues.values()
        ) and bool(scheduler._queues)


def queued(scheduler) -> bool:
    """A task waits in a queue."""
    with scheduler._cond:
        return any(q.batches[0] for q in scheduler._queues.values())


def test_inputs_of_unequal_batch_size_are_refused(scheduler_factory):
    scheduler = scheduler_factory()
    model = FakeModel()
    with pytest.raises(ServingError, match="must have equal 0th-dimension size"):
        scheduler.run(model, model.run, {"x": np.ones((2, 1)), "z": np.ones((3, 1))}, ("y",))


def test_each_model_version_has_its_own_queues(scheduler_factory):
    scheduler = scheduler_factory(max_batch_size=2, batch_timeout_micros=200_000)
    one, two = FakeModel(), FakeModel()
    concurrently(
        [lambda m=m: scheduler.run(m, m.run, {"x": np.ones((1, 1))}, ("y",)) for m in (one, two)]
    )
    assert len(one.batches) == len(two.batches) == 1


def parameters(text: str) -> BatchingParameters:
    return text_format.Parse(text, BatchingParameters())


def test_tensorflow_servings_test_batching_config():
    """servables/tensorflow/testdata/batching_config.txt."""
    options = options_from_parameters(
        parameters(
            "max_batch_size { value: 128 } batch_timeout_micros { value: 0 } "
            "max_enqueued_batches { value: 1000000 } num_batch_threads { value: 8 }"
        )
    )
    assert (options.max_batch_size, options.max_enqueued_batches, options.num_batch_threads) == (
        128,
        1_000_000,
        8,
    )


def test_defaults_are_tensorflow_servings():
    options = options_from_parameters(None)
    assert (options.max_batch_size, options.batch_timeout_micros, options.max_enqueued_batches) == (
        1000,
        0,
        10,
    )
    assert options.thread_pool_name == "model_server_batch_threads"


@pytest.mark.parametrize(
    "text, message",
    [
        pytest.param(
            "max_batch_size { value: 8 } allowed_batch_sizes: 2 allowed_batch_sizes: 4",
            "Last entry in allowed_batch_sizes must match max_batch_size; last entry was 4; "
            "expected 8",
            id="last entry",
        ),
        pytest.param(
            "max_batch_size { value: 8 } allowed_batch_sizes: 4 allowed_batch_sizes: 2 "
            "allowed_batch_sizes: 8",
            "allowed_batch_sizes entries must be monotonically increasing",
            id="not increasing",
        ),
        pytest.param(
            "enable_large_batch_splitting { value: true }",
            "enable_large_batch_splitting is not supported by the local server",
            id="splitting",
        ),
    ],
)
def test_invalid_batching_parameters(text, message):
    with pytest.raises(ServingError) as error:
        options_from_parameters(parameters(text))
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert message in str(error.value)
