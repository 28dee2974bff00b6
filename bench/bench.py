"""`make bench`: each step of the workflow against its bound, measured in the same run.

    python -m bench.bench [--quick]

Every row is a figure, the bound it is compared with, and their ratio, so that
the numbers mean something on any machine: the bound is the best the same
hardware does for the same work without the step's overhead (the same jitted
training step fed from device arrays, the same computation in JAX, the same
SavedModel called in-process). Rows without a target show where a gap comes
from. It prints a table, writes it to bench/RESULTS.md with the machine and
package versions, with a table of latency against batch size, and ends with
`targets met: X/Y`.
"""

import dataclasses
import datetime
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import jax
import numpy as np
import optax
import requests
import tensorflow as tf
from absl import app, flags
from tensorflow_serving.apis import get_model_status_pb2

import saved_model_lib
from bench import load
from bench.jax_latency import jax_latency_ms, timed
from clients import mnist_client, serving_client
from local_server import batching
from local_server.harness import LocalServer
from local_server.servable import Servable
from local_server.startup import batching_options, prometheus_path
from models import INPUT_SHAPE, get_model, mnist_data, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_QUICK = flags.DEFINE_boolean("quick", False, "Smaller sizes and fewer repeats: under 2 minutes.")
_OUTPUT = flags.DEFINE_string(
    "output",
    None,
    "Where to write the table; default bench/RESULTS.md (--quick: RESULTS.quick.md).",
)
_BATCH_SIZES = flags.DEFINE_list("batch_sizes", ["1", "16", "256"], "Batch sizes of inference.")
flags.register_validator(
    "batch_sizes",
    lambda sizes: bool(sizes) and all(b.isdigit() and int(b) > 0 for b in sizes),
    "--batch_sizes must be positive integers, comma-separated, e.g. 1,16,256",
)
_REPEATS = flags.DEFINE_integer(
    "repeats", 200, "Timed calls per latency figure (--quick: 30).", lower_bound=1
)

# jaxlib 0.10.2's XLA runs the whole CNN as one YNNPACK fusion; TensorFlow
# 2.21's XLA cannot put convolutions in one (its YNNPACK fusions take dots,
# elementwise ops and reductions). The same JAX function with these flags is
# what TensorFlow's XLA is up against.
XLA_FLAGS_NO_YNNPACK = "--xla_cpu_experimental_ynn_fusion_type="

MODELS = ("mnist_flax", "mnist_pure_jax")


@dataclasses.dataclass(frozen=True)
class Target:
    """A bound on a row's ratio (figure / bound)."""

    at_least: float | None = None
    at_most: float | None = None

    def met(self, ratio: float) -> bool:
        return (self.at_least is None or ratio >= self.at_least) and (
            self.at_most is None or ratio <= self.at_most
        )

    def __str__(self) -> str:
        return f">= {self.at_least:g}" if self.at_least is not None else f"<= {self.at_most:g}"


# Every target, in one place; rows without one show where a gap comes from.
TARGETS = {
    "training mnist_flax": Target(at_least=0.95),
    # Its steps are short enough that the input pipeline shows.
    "training mnist_pure_jax": Target(at_least=0.85),
    "served gRPC, 4 clients": Target(at_least=0.7),
    "served REST, 4 clients": Target(at_least=0.5),
    "first answer with warmup": Target(at_most=2),
}
# No target: on a CPU the Session itself gains little from a batch, less than
# the batch scheduler costs a request in Python (bench/README.md).
INFORMATIVE_BATCHING = "informative: batching's gain is bounded by the Session's"
# No target: the SavedModel runs TensorFlow 2.21's bundled XLA, the bound
# jaxlib's; the gap is theirs, not this project's (bench/README.md).
INFORMATIVE_INFERENCE = "informative: TensorFlow's XLA against jaxlib's"
INPUT = saved_model_lib.INPUT_NAME
# What tf.saved_model.save names a signature's single, unnamed output.
OUTPUT = "output_0"


@dataclasses.dataclass
class Row:
    figure: str
    value: float
    unit: str
    bound: float | None = None
    bound_name: str = ""
    target: Target | None = None

    @property
    def ratio(self) -> float | None:
        return None if self.bound is None else self.value / self.bound

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.ratio)


def reloaded_function(loaded, spec: tf.TensorSpec | None = None):
    """numpy -> numpy through a reloaded (tf.saved_model.load) export's own jit-compiled function.

    The fastest way to call a SavedModel in-process, so the one compared with
    JAX. saved_model_lib saves the converted function as the module's
    `__call__`; its concrete function runs as one XLA launch. The serving
    signature wraps that function in a graph function, which TensorFlow's
    executor runs first, as TensorFlow Serving's Session does: bench_gap
    measures what that adds.
    """
    spec = spec or tf.TensorSpec((None, *INPUT_SHAPE), tf.float32)
    function = loaded.__call__.get_concrete_function(spec)
    # The function holds its variables weakly; `loaded` owns them, so the
    # returned callable keeps `loaded` alive.
    return lambda array, owner=loaded: function(tf.constant(array)).numpy()


def run(command: list[str], **kwargs) -> str:
    """Runs a helper process; returns its stdout, or raises with the end of its stderr."""
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def bench_training(model_name: str, examples: int) -> Row:
    """Examples/s of the real training loop vs the same step on device-resident batches."""
    model = get_model(model_name)
    data = mnist_data.synthetic(examples)
    step = train.make_train_step(model, optax.adam(train.LEARNING_RATE))
    params = model.init(jax.random.PRNGKey(0))
    opt_state = optax.adam(train.LEARNING_RATE).init(params)
    rng = np.random.default_rng(0)

    def pipeline():
        jax.block_until_ready(train.train_epoch(step, params, opt_state, data, rng))

    device_batches = [
        jax.device_put(b) for b in mnist_data.batches(data, train.TRAIN_BATCH_SIZE, rng=rng)
    ]

    def bound():
        p, s = params, opt_state
        for images, labels in device_batches:
            p, s, _ = step(p, s, images, labels)
        jax.block_until_ready(p)

    used = len(device_batches) * train.TRAIN_BATCH_SIZE
    repeats = 2
    pipeline_s = min(timed(pipeline, repeats))
    bound_s = min(timed(bound, repeats))
    return Row(
        f"training {model_name}, {examples} examples",
        used / pipeline_s,
        "examples/s",
        used / bound_s,
        "same step, batches on device",
        TARGETS[f"training {model_name}"],
    )


def bench_export(model_name: str, workdir: str) -> Row:
    model = get_model(model_name)
    params = model.init(jax.random.PRNGKey(0))
    start = time.perf_counter()
    saved_model_lib.convert_and_save_model(
        model.apply,
        params,
        os.path.join(workdir, f"export-{model_name}"),
        input_signatures=[tf.TensorSpec((None, *INPUT_SHAPE), tf.float32)],
        polymorphic_shapes="(b, ...)",
    )
    return Row(f"export {model_name} (jax2tf + save)", time.perf_counter() - start, "s")


def bench_inference(model_name: str, path: str, batch_sizes, repeats: int) -> list[Row]:
    """The reloaded SavedModel against jitted JAX, on the same batch.

    JAX is timed before TensorFlow runs: TensorFlow's threads keep spinning a
    while after each call, and on 2 cores they slowed JAX measurably.
    """
    predict = reloaded_function(tf.saved_model.load(path))
    jax_ms = jax_latency_ms(model_name, batch_sizes, repeats)
    rows = []
    for batch in batch_sizes:
        images = mnist_data.scale_images(mnist_data.synthetic(batch).images)
        tf_s = statistics.median(timed(lambda: predict(images), repeats))  # noqa: B023
        rows.append(
            Row(
                f"inference {model_name} batch {batch}, SavedModel ({INFORMATIVE_INFERENCE})",
                tf_s * 1000,
                "ms",
                jax_ms[batch],
                "jitted JAX",
            )
        )
    return rows


def bench_gap(cnn_ms: dict[int, float], workdir: str, repeats: int) -> list[Row]:
    """Where the SavedModel's time over JAX goes, as figures without targets.

    The fixed cost of a call: a SavedModel computing x + 1, laid out as
    saved_model_lib saves one, called through its function and through its
    serving signature, against the same function jitted in JAX. And the CNN's
    SavedModel latencies (cnn_ms, by batch size) against the JAX model
    measured again with XLA's YNNPACK fusions off, which TensorFlow's older
    XLA does not have for convolutions.
    """
    spec = tf.TensorSpec([None], tf.float32)
    module = tf.Module()
    module.__call__ = tf.function(
        lambda inputs: inputs + 1, input_signature=[spec], jit_compile=True
    )
    path = os.path.join(workdir, "add-one")
    tf.saved_model.save(module, path, signatures=module.__call__)
    loaded = tf.saved_model.load(path)
    function = reloaded_function(loaded, spec)
    signature = loaded.signatures["serving_default"]
    jax_add_one = jax.jit(lambda v: v + 1)
    x = np.ones(1, np.float32)
    jax_ms = statistics.median(timed(lambda: np.asarray(jax_add_one(x)), repeats)) * 1000
    calls = {
        "its function": function,
        "its serving signature": lambda v: signature(**{INPUT: tf.constant(v)})[OUTPUT].numpy(),
    }
    rows = [
        Row(
            f"fixed cost of one call: a SavedModel computing x + 1, through {way}",
            statistics.median(timed(lambda: call(x), repeats)) * 1000,  # noqa: B023
            "ms",
            jax_ms,
            "jitted JAX",
        )
        for way, call in calls.items()
    ]
    # XLA reads XLA_FLAGS once per process: JAX without YNNPACK runs in its own.
    command = [sys.executable, "-m", "bench.jax_latency", "mnist_flax"]
    command += [",".join(map(str, cnn_ms)), str(repeats)]
    env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {XLA_FLAGS_NO_YNNPACK}"}
    no_ynnpack = json.loads(run(command, env=env, cwd=ROOT).splitlines()[-1])
    for batch, ms in cnn_ms.items():
        rows.append(
            Row(
                f"inference mnist_flax batch {batch}, SavedModel vs JAX without YNNPACK",
                ms,
                "ms",
                no_ynnpack[str(batch)],
                "jitted JAX, YNNPACK off",
            )
        )
    return rows


def export_for_serving(model_path: str, model_name: str, warmup: bool) -> str:
    """A real export through the CLI (mock data, 1 epoch), with or without warmup file."""
    cmd = [
        sys.executable,
        "saved_model_main.py",
        f"--model={model_name}",
        f"--model_path={model_path}",
        "--mock_data",
        "--num_epochs=1",
        "--noshow_model",
    ]
    if not warmup:
        cmd.append("--warmup_batch_sizes=")
    run(cmd, cwd=ROOT)
    return os.path.join(model_path, model_name)


def process_cpu_s(pid: int) -> float:
    """User and system CPU seconds of a process so far (Linux's /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_clients(api: str, server: LocalServer, model: str):
    if api == "gRPC":
        return serving_client.GrpcClient(server.grpc_address, model, timeout=60)
    return serving_client.RestClient(f"localhost:{server.rest_port}", model, timeout=60)


def sender(api: str, server: LocalServer, model: str, images: np.ndarray):
    """bench.load's sender of `images` to `server` through `api`, and the signature's input."""
    client = load_clients(api, server, model)
    name = mnist_client.check_model(client, len(images))
    if api == "gRPC":
        return load.predict_sender(client, name, images), name
    return load.rest_sender(client, name, images), name


def status_sender(server: LocalServer, model: str):
    """bench.load's sender of GetModelStatus: a request that runs no model."""
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = model
    return load.grpc_sender(
        server.grpc_address,
        "/tensorflow.serving.ModelService/GetModelStatus",
        request,
        get_model_status_pb2.GetModelStatusResponse,
        lambda answer: len(answer.model_version_status) > 0,
    )


def timed_load(server: LocalServer, send, clients: int, seconds: float) -> dict:
    """load.run's summary, plus the server's and this process's CPU ms a request."""
    server_cpu, client_cpu = process_cpu_s(server.process.pid), time.process_time()
    summary = load.run(send, clients, seconds)
    ms_a_request = 1000 / summary["requests"]
    summary["server_cpu"] = (process_cpu_s(server.process.pid) - server_cpu) * ms_a_request
    summary["client_cpu"] = (time.process_time() - client_cpu) * ms_a_request
    return summary


def bench_serving(
    base: str, model_name: str, workdir: str, seconds: float, repeats: int, rounds: int
):
    """Served throughput and latency at batch 16 vs in-process, and latency by batch size.

    Each row's two sides, the served run and its in-process bound (the same
    calls, as many at once as the row has clients), are timed in turns over
    `rounds` rounds; the row gives the medians and the ratio's spread. The
    load is bench.load's prepared requests; two more rows time make
    request's own client, which builds each request.
    """
    rows, latencies = [], {}
    batch = 16
    version = os.path.join(base, "1")
    predict = reloaded_function(tf.saved_model.load(version))
    images16 = mnist_data.scale_images(mnist_data.synthetic(batch).images)
    gc.freeze()  # As model_server_request.py does: no GC pauses over TF's objects.
    server = LocalServer(model_name, base, os.path.join(workdir, "server.log"))
    try:
        server.wait_for(1)
        for api in ("gRPC", "REST"):
            send, name = sender(api, server, model_name, images16)
            load.run(send, 1, 0.5)  # Warm.
            for clients in (1, 4):
                bounds, runs, ratios = [], [], []
                for _ in range(rounds):
                    bounds.append(batch * calls_per_s(lambda: predict(images16), clients, 1.5))
                    runs.append(timed_load(server, send, clients, seconds))
                    ratios.append(batch * runs[-1]["per_s"] / bounds[-1])
                middle = sorted(runs, key=lambda r: r["per_s"])[len(runs) // 2]
                rows.append(
                    Row(
                        f"served {api}, batch {batch}, {clients} client(s)"
                        f" (p50 {middle['p50_ms']:.1f} ms, p99 {middle['p99_ms']:.1f} ms;"
                        f" CPU a request: server {middle['server_cpu']:.1f} ms, client"
                        f" {middle['client_cpu']:.2f} ms; ratio over {rounds} round(s)"
                        f" {min(ratios):.2f}-{max(ratios):.2f})",
                        batch * middle["per_s"],
                        "images/s",
                        statistics.median(bounds),
                        f"in-process SavedModel, {clients} caller(s)",
                        TARGETS.get(f"served {api}, {clients} clients"),
                    )
                )
            # make request's client: each request built from numpy, on the same cores.
            client = load_clients(api, server, model_name)
            bound = batch * calls_per_s(lambda: predict(images16), 4, 1.5)
            built = timed_load(server, lambda: lambda: client.predict({name: images16}), 4, seconds)  # noqa: B023
            rows.append(
                Row(
                    f"served {api}, batch {batch}, 4 clients, through serving_client (builds each"
                    f" request: client CPU {built['client_cpu']:.2f} ms a request)",
                    batch * built["per_s"],
                    "images/s",
                    bound,
                    "in-process SavedModel, 4 caller(s)",
                )
            )
        client = load_clients("gRPC", server, model_name)
        for size in (1, 4, 16, 64, 256):
            images = mnist_data.scale_images(mnist_data.synthetic(size).images)
            local = statistics.median(timed(lambda: predict(images), repeats))  # noqa: B023
            served = statistics.median(timed(lambda: client.predict({INPUT: images}), repeats))  # noqa: B023
            latencies[size] = (local * 1000, served * 1000)
    finally:
        server.stop()
    return rows, latencies


BATCHING_CONFIG = os.path.join(ROOT, "serving", "batching.config")
MONITORING_CONFIG = os.path.join(ROOT, "serving", "monitoring.config")


def mean_batch_size(server: LocalServer) -> float:
    """The mean size of the batches the server ran, from its metrics page."""
    path = prometheus_path(MONITORING_CONFIG)
    page = requests.get(f"http://localhost:{server.rest_port}{path}", timeout=10).text
    prefix = ":tensorflow:serving:batching_session:processed_batch_size"
    values = dict(line.rsplit(" ", 1) for line in page.splitlines() if line.startswith(prefix))
    count = float(values.get(prefix + "_count{}", 0))
    return float(values[prefix + "_sum{}"]) / count if count else 0.0


def bench_batching(
    base: str, model_name: str, workdir: str, seconds: float, rounds: int, repeats: int
) -> list[Row]:
    """16 gRPC clients sending one image each, with serving/batching.config and without.

    The two are timed in turns (without, with, without, ...), each on a fresh
    server with bench.load's prepared requests, and the ratio's spread over the
    rounds is printed. The other rows are the bounds that explain it: the
    Session in-process at the batch size batching formed (what batching could
    reach without gRPC), a request that runs no model (what it cannot go
    below), and the Session unbatched from 16 threads (what the model alone
    gains from batching).
    """
    flags_by_kind = {
        "without": (),
        "with": (
            "--enable_batching",
            f"--batching_parameters_file={BATCHING_CONFIG}",
            f"--monitoring_config_file={MONITORING_CONFIG}",
        ),
    }
    one = mnist_data.scale_images(mnist_data.synthetic(1).images)
    results = {kind: [] for kind in flags_by_kind}
    batch_sizes, floors = [], []
    for _ in range(rounds):
        for kind, extra in flags_by_kind.items():
            log = os.path.join(workdir, f"batching-{kind}.log")
            server = LocalServer(model_name, base, log, *extra)
            try:
                server.wait_for(1)
                send, _ = sender("gRPC", server, model_name, one)
                load.run(send, 16, 1)  # Warm.
                results[kind].append(timed_load(server, send, 16, seconds))
                if kind == "with":
                    batch_sizes.append(mean_batch_size(server))
                else:
                    floors.append(
                        timed_load(server, status_sender(server, model_name), 16, seconds)
                    )
            finally:
                server.stop()
    ratios = [
        w["per_s"] / o["per_s"] for w, o in zip(results["with"], results["without"], strict=True)
    ]
    median = {k: statistics.median(r["per_s"] for r in v) for k, v in results.items()}
    p99 = {k: statistics.median(r["p99_ms"] for r in v) for k, v in results.items()}
    cpu = {k: statistics.median(r["server_cpu"] for r in v) for k, v in results.items()}
    formed = statistics.median(batch_sizes)
    # The in-process bound at the allowed batch size the formed batches were padded to.
    allowed = batching_options(BATCHING_CONFIG).allowed_batch_sizes
    padded = batching.padded_size(allowed, math.ceil(formed))
    # As the local server runs it: the TF1 Session, by tensor name.
    servable = Servable(os.path.join(base, "1"), 1)
    images = mnist_data.scale_images(mnist_data.synthetic(padded).images)
    in_process = padded / statistics.median(
        timed(lambda: servable.predict("", {INPUT: images}), repeats)
    )
    unbatched = calls_per_s(lambda: servable.predict("", {INPUT: one}), threads=16, seconds=3)
    return [
        Row(
            f"served gRPC, 16 clients x 1 image, with batching ({INFORMATIVE_BATCHING}; "
            f"p99 {p99['with']:.1f} ms vs "
            f"{p99['without']:.1f} ms; ratio over {rounds} rounds {min(ratios):.2f}-"
            f"{max(ratios):.2f}; server CPU a request {cpu['with']:.2f} ms vs "
            f"{cpu['without']:.2f} ms; mean batch {formed:.1f})",
            median["with"],
            "images/s",
            median["without"],
            "the same without batching",
        ),
        Row(
            f"served gRPC, 16 clients x 1 image, with batching, vs the Session at batch {padded}",
            median["with"],
            "images/s",
            in_process,
            "the Session batched",
        ),
        # What no model call can go below: a request the server answers
        # without running the model, through the same gRPC server and API.
        Row(
            "served gRPC, 16 clients, GetModelStatus (no model run; server CPU a request "
            f"{statistics.median(f['server_cpu'] for f in floors):.2f} ms)",
            statistics.median(f["per_s"] for f in floors),
            "requests/s",
        ),
        # What batching can save at most on this machine: the model's own
        # cost per image, batched or not (the rest of a request is gRPC's).
        Row(
            f"the Session in-process, 16 threads x 1 image, vs one thread at batch {padded}",
            unbatched,
            "images/s",
            in_process,
            "the Session batched",
        ),
    ]


def calls_per_s(call, threads: int, seconds: float) -> float:
    """Calls a second of `call` from `threads` threads at once, over `seconds`."""
    return load.run(lambda: call, threads, seconds)["per_s"]


WARM_ANSWERS = 20  # The new version's answers after its first: the bound.


def bench_first_request(workdir: str, model_name: str) -> list[Row]:
    """The first request a new version answers vs a steady one, without and with warmup.

    The scenario warmup is for: a client sends requests without pause while a
    new version is exported and picked up. The first answer from the new
    version pays for whatever loading left undone (XLA compiling that batch
    shape); it is compared with the median of the new version's next
    answers, sent the same way (no idle time before either), once the export
    no longer shares the cores. (A pause of a second or more between requests
    costs a few ms by itself on this machine, so a client that waits would
    measure its own idleness.)
    """
    rows = []
    images = mnist_data.scale_images(mnist_data.synthetic(16).images)
    model_path = os.path.join(workdir, "first")
    base = export_for_serving(model_path, model_name, warmup=True)
    server = LocalServer(model_name, base, os.path.join(workdir, "first.log"))
    try:
        server.wait_for(1)
        client = serving_client.GrpcClient(server.grpc_address, model_name, 60)
        for version, warmup in ((2, False), (3, True)):
            answers, stop = [], threading.Event()

            def send(answers=answers, stop=stop):
                while not stop.is_set():
                    start = time.perf_counter()
                    answered = client.send(client.predict_request({INPUT: images}))
                    answers.append((answered.model_spec.version.value, time.perf_counter() - start))

            sender = threading.Thread(target=send)
            sender.start()
            try:
                export_for_serving(model_path, model_name, warmup)
                server.wait_for(version)
                while sum(v == version for v, _ in answers) < 1 + WARM_ANSWERS:
                    time.sleep(0.01)
            finally:
                stop.set()
                sender.join()
            new = [seconds for v, seconds in answers if v == version]
            first, warm = new[0], statistics.median(new[1 : 1 + WARM_ANSWERS])
            rows.append(
                Row(
                    f"first answer of a new version, {model_name} batch 16, "
                    f"{'with' if warmup else 'without'} warmup",
                    first * 1000,
                    "ms",
                    warm * 1000,
                    "its next answers",
                    TARGETS["first answer with warmup"] if warmup else None,
                )
            )
    finally:
        server.stop()
    return rows


def latency_table(latencies: dict[int, tuple[float, float]]) -> list[str]:
    """mnist_flax's median latency by batch size, in-process and served: where serving costs."""
    lines = [
        "| batch size | in-process SavedModel (ms, median) | served, gRPC (ms, median) | ratio |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for size, (local, served) in sorted(latencies.items()):
        lines.append(f"| {size} | {local:.3g} | {served:.3g} | {served / local:.2f} |")
    return lines


def render(rows: list[Row], latencies: dict, seconds: float) -> str:
    lines = [
        "| figure | value | bound | ratio | target | met |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for r in rows:
        bound = f"{r.bound:.4g} ({r.bound_name})" if r.bound is not None else ""
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else ""
        met = {None: "", True: "yes", False: "NO"}[r.met]
        lines.append(
            f"| {r.figure} | {r.value:.4g} {r.unit} | {bound} | {ratio} | {r.target or ''} "
            f"| {met} |"
        )
    targets = [r for r in rows if r.met is not None]
    met = sum(r.met for r in targets)
    machine = (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"jax {jax.__version__}, tensorflow {tf.__version__}"
    )
    return "\n".join(
        [
            f"Benchmark{' (quick)' if _QUICK.value else ''} of "
            f"{datetime.date.today().isoformat()} on {machine}; {seconds:.0f} s.",
            "",
            *lines,
            "",
            "mnist_flax's latency against batch size:",
            "",
            *latency_table(latencies),
            "",
            f"targets met: {met}/{len(targets)}",
        ]
    )


def main(argv: list[str]) -> None:
    del argv
    batch_sizes = [int(b) for b in _BATCH_SIZES.value]
    quick = _QUICK.value
    # Seconds of load for each served figure.
    examples, repeats, seconds = (12_800, 30, 1.5) if quick else (60_000, _REPEATS.value, 3.0)
    start = time.perf_counter()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as workdir:
        for model_name in MODELS:
            rows.append(bench_training(model_name, examples))
        for model_name in MODELS:
            rows.append(bench_export(model_name, workdir))
        for model_name in MODELS:
            inference = bench_inference(
                model_name, os.path.join(workdir, f"export-{model_name}"), batch_sizes, repeats
            )
            rows += inference
            if model_name == "mnist_flax":
                cnn_ms = {b: row.value for b, row in zip(batch_sizes, inference, strict=True)}
        rows += bench_gap(cnn_ms, workdir, repeats)
        base = export_for_serving(os.path.join(workdir, "served"), "mnist_flax", warmup=True)
        serving_rows, latencies = bench_serving(
            base, "mnist_flax", workdir, seconds, repeats, 1 if quick else 3
        )
        rows += serving_rows
        rows += bench_batching(base, "mnist_flax", workdir, seconds, 1 if quick else 3, repeats)
        rows += bench_first_request(workdir, "mnist_flax")
    table = render(rows, latencies, time.perf_counter() - start)
    output = _OUTPUT.value or os.path.join(
        ROOT, "bench", "RESULTS.quick.md" if quick else "RESULTS.md"
    )
    with open(output, "w") as f:
        f.write(table + "\n")
    print(f"Wrote {output}.\n")
    print(table)  # Its last line is "targets met: X/Y".


if __name__ == "__main__":
    app.run(main)
