"""TensorFlow Serving's metrics, with its names and labels, on a Prometheus page.

The names are those TensorFlow Serving registers (servables/tensorflow/util.cc,
batching/batching_session.cc and batching_util.h, saved_model_warmup_util.cc,
and TensorFlow's cc/saved_model/loader.cc), and the page is the one its
util/prometheus_exporter.cc writes: "/" becomes ":", counters keep their name
(no "_total"), no HELP lines, metrics sorted by name. So dashboards and alerts
written against this server work against TensorFlow Serving. The values are
kept by prometheus_client; only the page's text follows TensorFlow Serving.
"""

import math
import re

from prometheus_client import CollectorRegistry, Counter, Histogram

# The monitoring config's default path (PrometheusExporter::kPrometheusPath).
DEFAULT_PATH = "/monitoring/prometheus/metrics"


def _exponential(scale: float, growth: float, count: int) -> list[float]:
    """monitoring::Buckets::Exponential: count limits, then everything above."""
    return [scale * growth**i for i in range(count)] + [math.inf]


_LATENCY = _exponential(10, 1.8, 33)  # Microseconds, up to about 20 minutes.
_SIZES = _exponential(1, 2, 14)


def _name(tf_name: str) -> str:
    """GetPrometheusMetricName: every character outside [a-zA-Z0-9_] becomes ':'."""
    return re.sub(r"[^a-zA-Z0-9_]", ":", tf_name)


class Metrics:
    """The server's metrics; each record_* call is one TensorFlow Serving records."""

    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        self._exported: dict[str, str] = {}  # prometheus_client's family name -> page name
        counter, histogram = self.counter, self.histogram

        self._request_count = counter(
            "/tensorflow/serving/request_count",
            "The total number of requests.",
            ("model_name", "status"),
        )
        self._request_latency = histogram(
            "/tensorflow/serving/request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ("model_name", "API", "entrypoint"),
            _LATENCY,
        )
        self._runtime_latency = histogram(
            "/tensorflow/serving/runtime_latency",
            "Distribution of wall time (in microseconds) for Tensorflow runtime.",
            ("model_name", "API", "runtime"),
            _LATENCY,
        )
        self._example_counts = histogram(
            "/tensorflow/serving/request_example_counts",
            "The number of tensorflow.Examples per request.",
            ("model",),
            _exponential(1, 2, 15),
        )
        self._example_count_total = counter(
            "/tensorflow/serving/request_example_count_total",
            "The total number of tensorflow.Examples.",
            ("model",),
        )
        self._load_attempt_count = counter(
            "/tensorflow/cc/saved_model/load_attempt_count",
            "The number of times a SavedModel was successfully loaded.",
            ("model_path", "status"),
        )
        self._load_latency = counter(
            "/tensorflow/cc/saved_model/load_latency",
            "Latency in microseconds for SavedModels that were successfully loaded.",
            ("model_path",),
        )
        self._warmup_latency = histogram(
            "/tensorflow/serving/model_warmup_latency",
            "Distribution of wall time (in microseconds) for warming up the model.",
            ("model_path", "status"),
            _LATENCY,
        )
        self._warmup_records = counter(
            "/tensorflow/serving/model_warmup_records_read",
            "Total number of warmup records read during model warmup.",
            ("model_path", "status"),
        )
        self._queuing_latency = histogram(
            "/tensorflow/serving/batching_session/queuing_latency",
            "Distribution of wall time spent (in microseconds) in queuing",
            ("thread_pool_name",),
            _exponential(100, 1.2, 52),
        )
        self._wrapped_run_count = counter(
            "/tensorflow/serving/batching_session/wrapped_run_count",
            "Total count of run calls on the wrapped session",
        )
        self._padding_size = histogram(
            "/tensorflow/serving/batching_session/padding_size",
            "Tracks the padding size distribution on batches.",
            ("execution_batch_size",),
            _SIZES,
        )
        self._input_batch_size = histogram(
            "/tensorflow/serving/batching_session/input_batch_size",
            "Tracks the batch size distribution on the inputs.",
            (),
            _SIZES,
        )
        self._processed_batch_size = histogram(
            "/tensorflow/serving/batching_session/processed_batch_size",
            "Tracks the batch size distribution on processing.",
            (),
            _SIZES,
        )

    def counter(self, tf_name: str, doc: str, labels=()) -> Counter:
        """A monitoring::Counter: its page name is the TensorFlow name, "_total" or not."""
        metric = Counter(_name(tf_name), doc, labels, registry=self.registry)
        self._exported[metric._name] = _name(tf_name)  # prometheus_client drops a "_total".
        return metric

    def histogram(self, tf_name: str, doc: str, labels, buckets: list[float]) -> "Sampler":
        """A monitoring::Sampler with these bucket limits (the last one infinite)."""
        return Sampler(
            Histogram(_name(tf_name), doc, labels, buckets=buckets, registry=self.registry)
        )

    # ---- Requests (RecordModelRequestCount, RecordRequestLatency, ...) ----------

    def record_request(
        self, model_name: str, api: str, entrypoint: str, status: str, seconds: float
    ) -> None:
        """One request: counted by status; its latency only if it succeeded, as there."""
        self._request_count.labels(model_name, status).inc()
        if status == "OK":
            self._request_latency.add(seconds * 1e6, model_name, api, entrypoint)

    def record_runtime(self, model_name: str, api: str, seconds: float) -> None:
        self._runtime_latency.add(seconds * 1e6, model_name, api, "TF1")

    def record_examples(self, model_name: str, count: int) -> None:
        self._example_counts.add(count, model_name)
        self._example_count_total.labels(model_name).inc(count)

    # ---- Loading ---------------------------------------------------------------

    def record_load(self, path: str, ok: bool, seconds: float, warmup_records: int) -> None:
        self._load_attempt_count.labels(path, "success" if ok else "fail").inc()
        self._load_latency.labels(path).inc(int(seconds * 1e6))
        if ok and warmup_records:
            self._warmup_latency.add(seconds * 1e6, path, "OK")
            self._warmup_records.labels(path, "OK").inc(warmup_records)

    # ---- Batching --------------------------------------------------------------

    def record_batch(
        self, thread_pool_name: str, queued_seconds: list[float], size: int, padded_size: int
    ) -> None:
        for seconds in queued_seconds:
            self._queuing_latency.add(seconds * 1e6, thread_pool_name)
        self._wrapped_run_count.inc()
        self._padding_size.add(padded_size - size, str(padded_size))
        self._processed_batch_size.add(padded_size)

    def record_input_batch(self, size: int) -> None:
        self._input_batch_size.add(size)

    # ---- The page --------------------------------------------------------------

    def page(self) -> str:
        """The Prometheus text page, as TensorFlow Serving's PrometheusExporter writes it."""
        lines = []
        for family in sorted(self.registry.collect(), key=lambda f: f.name):
            samples = [s for s in family.samples if not s.name.endswith("_created")]
            unused = all(s.value == 0 and set(s.labels) <= {"le"} for s in samples)
            if not samples or unused:
                continue  # TensorFlow Serving lists a metric once it has a value.
            if family.type == "histogram":  # Per label set: buckets, _sum, _count, as there.
                samples.sort(key=_histogram_order())
            exported = self._exported.get(family.name, family.name)
            lines.append(f"# TYPE {exported} {family.type}")
            for sample in samples:
                name = exported if family.type == "counter" else sample.name
                labels = ",".join(
                    f'{_label_name(k)}="{_label_value(k, v)}"' for k, v in sample.labels.items()
                )
                value = sample.value
                if family.type == "counter" or sample.name.endswith(("_bucket", "_count")):
                    text = str(int(value))
                else:
                    text = _number(value)
                lines.append(f"{name}{{{labels}}} {text}")
        return "\n".join(lines) + "\n"


class Sampler:
    """A histogram that buckets as TensorFlow's does: a value equal to a limit goes above it.

    TensorFlow's buckets are [limit(i-1), limit(i)), Prometheus' are
    (limit(i-1), limit(i)]; the value is nudged up by one ulp so that, say, a
    batch of 16 counts under le="32", as on TensorFlow Serving's page.
    """

    def __init__(self, histogram: Histogram):
        self._histogram = histogram

    def add(self, value: float, *labels: str) -> None:
        child = self._histogram.labels(*labels) if labels else self._histogram
        child.observe(math.nextafter(value, math.inf))


def _histogram_order():
    groups: dict[tuple, int] = {}

    def key(sample) -> tuple[int, int]:
        labels = tuple((k, v) for k, v in sample.labels.items() if k != "le")
        rank = 2 if sample.name.endswith("_count") else int(sample.name.endswith("_sum"))
        return groups.setdefault(labels, len(groups)), rank

    return key


def _label_name(name: str) -> str:
    name = re.sub(r"[^a-zA-Z0-9]", "_", name)
    return "_" + name if name[:1].isdigit() else name


def _label_value(name: str, value: str) -> str:
    if name == "le":
        return "+Inf" if value == "+Inf" else _number(float(value))
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _number(value: float) -> str:
    """A double as absl::StrCat writes it: six significant digits, no trailing zeros."""
    return f"{value:.6g}"
