"""local_server.metrics against TensorFlow Serving's prometheus_exporter_test.cc.

Each expected page fragment is that test's; then the metric names and labels
the server records are checked against TensorFlow Serving's.
"""

from local_server.metrics import Metrics, _exponential


def test_counter():
    metrics = Metrics()
    metrics.counter("/test/path/total", "A counter.", ("name",)).labels("abc").inc(2)
    assert '# TYPE :test:path:total counter\n:test:path:total{name="abc"} 2\n' in metrics.page()


def test_histogram():
    metrics = Metrics()
    histogram = metrics.histogram(
        "/test/path/histogram", "A histogram.", ("status",), _exponential(1, 2, 10)
    )
    for value in (2, 20, 200):
        histogram.add(value, "good")
    expected = [
        "# TYPE :test:path:histogram histogram",
        *(
            f':test:path:histogram_bucket{{status="good",le="{le}"}} {count}'
            for le, count in [
                (1, 0), (2, 0), (4, 1), (8, 1), (16, 1), (32, 2), (64, 2), (128, 2), (256, 3),
                (512, 3), ("+Inf", 3),
            ]
        ),
        ':test:path:histogram_sum{status="good"} 222',
        ':test:path:histogram_count{status="good"} 3',
    ]  # fmt: skip
    assert "\n".join(expected) + "\n" in metrics.page()


def test_sanitize_label_value():
    metrics = Metrics()
    metrics.counter("/test/path/total", "A counter.", ("name",)).labels('"abc\\"').inc(2)
    assert ':test:path:total{name="\\"abc\\\\\\""} 2\n' in metrics.page()


def test_a_metric_without_a_value_is_not_listed():
    page = Metrics().page()
    assert "request_count" not in page and "batching_session" not in page


def test_request_metrics_have_tensorflow_servings_names_and_labels():
    metrics = Metrics()
    metrics.record_request("mnist", "Predict", "GRPC", "OK", 0.002)
    metrics.record_request("mnist", "predict", "REST", "INVALID_ARGUMENT", 0.001)
    metrics.record_runtime("mnist", "Predict", 0.001)
    metrics.record_examples("mnist", 3)
    page = metrics.page()
    assert ':tensorflow:serving:request_count{model_name="mnist",status="OK"} 1' in page
    assert (
        ':tensorflow:serving:request_count{model_name="mnist",status="INVALID_ARGUMENT"} 1' in page
    )
    # Latency only for requests that succeeded, as TensorFlow Serving records it.
    assert (
        ':tensorflow:serving:request_latency_count{model_name="mnist",API="Predict",'
        'entrypoint="GRPC"} 1' in page
    )
    assert 'entrypoint="REST"' not in page
    assert (
        ':tensorflow:serving:runtime_latency_count{model_name="mnist",API="Predict",'
        'runtime="TF1"} 1' in page
    )
    assert ':tensorflow:serving:request_example_count_total{model="mnist"} 3' in page
    assert "# TYPE :tensorflow:serving:request_example_count_total counter" in page


def test_load_and_batching_metrics():
    metrics = Metrics()
    metrics.record_load("/models/m/1", True, 1.5, 2)
    metrics.record_load("/models/m/2", False, 0.1, 0)
    metrics.record_input_batch(3)
    metrics.record_batch("batch_threads", [0.001, 0.002], 3, 4)
    page = metrics.page()
    assert (
        ':tensorflow:cc:saved_model:load_attempt_count{model_path="/models/m/1",status="success"} 1'
        in page
    )
    assert (
        ':tensorflow:cc:saved_model:load_attempt_count{model_path="/models/m/2",status="fail"} 1'
        in page
    )
    assert ':tensorflow:cc:saved_model:load_latency{model_path="/models/m/1"} 1500000' in page
    assert (
        ':tensorflow:serving:model_warmup_records_read{model_path="/models/m/1",status="OK"} 2'
        in page
    )
    assert ":tensorflow:serving:batching_session:wrapped_run_count{} 1" in page
    assert (
        ":tensorflow:serving:batching_session:queuing_latency_count"
        '{thread_pool_name="batch_threads"} 2' in page
    )
    assert (
        ':tensorflow:serving:batching_session:padding_size_sum{execution_batch_size="4"} 1' in page
    )
    # A batch of 4 counts under le="8": TensorFlow's buckets hold [limit(i-1), limit(i)).
    assert ':tensorflow:serving:batching_session:processed_batch_size_bucket{le="4"} 0' in page
    assert ':tensorflow:serving:batching_session:processed_batch_size_bucket{le="8"} 1' in page


def test_metrics_are_sorted_by_name():
    metrics = Metrics()
    metrics.record_request("m", "Predict", "GRPC", "OK", 0.001)
    metrics.record_load("/m/1", True, 1.0, 0)
    names = [line.split()[2] for line in metrics.page().splitlines() if line.startswith("# TYPE")]
    assert names == sorted(names) and len(names) == 4
