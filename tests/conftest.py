"""Shared helpers: exports, scripts, servers. pyproject.toml puts the repository on sys.path."""

import contextlib
import dataclasses
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from local_server.harness import LocalServer, ThreadServer, free_port
from local_server.options import ServerOptions

if TYPE_CHECKING:  # Imported where a test exports: see export_options.
    import saved_model_main

ROOT = pathlib.Path(__file__).resolve().parent.parent

# What a reader's shell may hold after the walkthrough (`export MOCK_DATA=1`, `source
# env.sh`): env.sh's variables and the options of single targets (make/*.mk). The tests
# set what they need, so `make test` starts from none of them.
WALKTHROUGH_VARIABLES = (
    "MODEL_PATH", "MODEL", "SERVING_BATCH_SIZE_SAVE", "SERVING_BATCH_SIZE", "MODEL_VERSION",
    "COUNT_IMAGES", "TF_SERVING_VERSION", "GPU", "DOCKER_IMAGE", "GRPC_PORT", "REST_PORT",
    "NUM_EPOCHS", "MOCK_DATA", "DATA_DIR", "OVERWRITE", "PLATFORMS", "PROTOCOL", "CONCURRENCY",
    "LABEL", "VERBOSE", "SERVER", "MODEL_CONFIG", "BATCHING", "MONITORING",
    "CONFIG_POLL_SECONDS", "COMPAT_VERSIONS", "COMPAT_DIR", "RUN_DIR", "DEPLOY_OUT", "OVERLAY",
    "MODELS_URI", "QUICK", "IMAGES", "CORS", "WEB_PORT", "DIGITS_DIR", "CHECKPOINT", "INPUTS",
    "WARMUP_BATCH_SIZES",
)  # fmt: skip
for _name in WALKTHROUGH_VARIABLES:
    os.environ.pop(_name, None)
# A shell's background job (`make test &`) starts with SIGINT ignored, and so would every
# process it starts; the tests send SIGINT to the exports they start, so take it back.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


# make test's work units (pytest -n N --dist loadfile --no-loadscope-reorder): a test file
# runs on one worker, so that its module fixtures are made once, except the cases of these
# tests, which share nothing and run each on a worker of its own.
OWN_UNITS = ("tests/docs/test_docs_pages.py::test_the_page_runs_as_written[",)


def work_unit(nodeid: str) -> str:
    return nodeid if nodeid.startswith(OWN_UNITS) else nodeid.split("::", 1)[0]


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """--dist loadfile, in work_unit's units (pytest-xdist's own scheduler otherwise)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return Scheduling(config, log)


def pytest_collection_modifyitems(items):
    """The units holding a slow test first, so that no long one starts last and leaves the
    other workers idle; the order is otherwise kept (xdist sends the units in this order)."""
    slow = {work_unit(item.nodeid) for item in items if any(item.iter_markers("slow"))}
    items.sort(key=lambda item: work_unit(item.nodeid) not in slow)


# The batch sizes the tests' exports are warmed up at, as make's WARMUP_BATCH_SIZES: a
# server compiles each warmup size of each version it loads (test_serving.py replays the
# default sizes). In-process exports, the docs' sessions and the demo's test take it.
WARMUP_BATCH_SIZES = "1"


def export_options(model_path, **overrides) -> "saved_model_main.ExportOptions":
    """The options of a quick export under model_path: mock data, 1 epoch, and warmup at
    WARMUP_BATCH_SIZES."""
    # Imported here, with TensorFlow and JAX, by the workers whose tests export: make test's
    # controller loads this file too, and starts the workers sooner without them.
    import saved_model_main

    warmup = [int(n) for n in WARMUP_BATCH_SIZES.split(",")]
    settings = dict(
        mock_data=True, num_epochs=1, model_path=str(model_path), warmup_batch_sizes=warmup
    )
    settings.update(overrides)
    for name in ("platforms", "warmup_batch_sizes"):
        if name in settings:
            settings[name] = tuple(settings[name])
    return dataclasses.replace(saved_model_main.ExportOptions(), **settings)


def export_model(model_path, **overrides) -> str:
    """Trains on mock data and exports, in this process; returns the version path."""
    import saved_model_main

    return saved_model_main.train_and_export(export_options(model_path, **overrides))


@pytest.fixture
def export(tmp_path):
    """export(**flags) -> version path, under tmp_path."""
    return lambda **overrides: export_model(tmp_path, **overrides)


@pytest.fixture(scope="session")
def shared_export(tmp_path_factory):
    """shared_export(**flags) -> version path of a quick export, made once a session.

    Each distinct set of options is exported once, alone in its own MODEL_PATH, and every
    test that asks for the same options gets the same version: read it, never change it
    (copy it first, e.g. with shutil.copytree).
    """
    paths: dict = {}  # ExportOptions -> version path

    def shared(**overrides) -> str:
        key = export_options("", **overrides)
        if key not in paths:
            paths[key] = export_model(tmp_path_factory.mktemp("shared"), **overrides)
        return paths[key]

    return shared


@pytest.fixture(scope="session")
def untrained_mlp(shared_export) -> str:
    """The version path of the model most of the tests' servers serve: mnist_pure_jax, not
    trained (its answers are checked against its SavedModel's, not for accuracy). Read it,
    never change it: copy_version makes a copy to serve."""
    return shared_export(model="mnist_pure_jax", num_epochs=0)


def copy_version(version_path: str, base_path, version: int = 1) -> pathlib.Path:
    """A copy of an export's version (a shared_export's, say) as `version` in base_path, a
    model's directory of versions, for a test to serve, change or publish; its path."""
    return pathlib.Path(shutil.copytree(version_path, pathlib.Path(base_path) / str(version)))


def rival_takes_the_first_version(monkeypatch) -> list[int]:
    """Another export publishes the version ours first tries, between its choice and its
    rename; returns the versions ours tried, in order."""
    from serving import versions

    publish, tried = versions.publish_version, []

    def rival_publishes_first(staging, base_dir, version, **kwargs):
        if not tried:
            os.makedirs(os.path.join(base_dir, str(version)))
            open(os.path.join(base_dir, str(version), "saved_model.pb"), "w").close()
        tried.append(version)
        return publish(staging, base_dir, version, **kwargs)

    monkeypatch.setattr(versions, "publish_version", rival_publishes_first)
    return tried


def script(name: str, *args: str) -> list[str]:
    """The command line that runs one of the repository's scripts with this Python."""
    return [sys.executable, name, *args]


def module(name: str, *args: str) -> list[str]:
    """The command line that runs one of the repository's modules (python -m) with this Python."""
    return [sys.executable, "-m", name, *args]


def export_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """saved_model_main.py, without its saved_model_cli listing."""
    return run(script("saved_model_main.py", "--noshow_model", *args), **kwargs)


def request_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return run(script("model_server_request.py", *args), **kwargs)


def compat_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return run(module("tools.compat", *args), **kwargs)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Runs a command in the repository with the venv's Python first on PATH."""
    env = dict(os.environ, **kwargs.pop("env", {}))
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, **kwargs)


def wait_until(predicate, seconds: float = 10) -> None:
    """Polls `predicate` every millisecond until it holds; fails after `seconds`."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def heavy_imports(module: str) -> list[str]:
    """Which of TensorFlow and JAX a fresh Python has loaded once it imports `module`."""
    code = f"import sys, {module}; print(*sorted({{'tensorflow', 'jax'}} & set(sys.modules)))"
    result = run([sys.executable, "-c", code])
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split()


def answering_version(client, input_name: str, images) -> int:
    """The version of the model that answers a Predict of `images` (a serving_client.GrpcClient)."""
    return client.send(client.predict_request({input_name: images})).model_spec.version.value


def server_options(*flags: str) -> dict:
    """ServerOptions fields from the server's flags (each flag is named after its field):
    --name=value, --name (true) or --noname (false)."""
    types = {f.name: f.type for f in dataclasses.fields(ServerOptions)}
    options = {}
    for flag in flags:
        name, has_value, value = flag.removeprefix("--").partition("=")
        if not has_value and name not in types and name.startswith("no"):
            name, value = name.removeprefix("no"), "false"
        if name not in types:
            raise ValueError(f"{flag}: no ServerOptions field is named {name}")
        if types[name] is bool:
            options[name] = {"": True, "true": True, "false": False}[value.lower()]
        else:
            options[name] = types[name](value)
    return options


@contextlib.contextmanager
def local_server(
    model_name: str,
    base_path,
    *extra_flags: str,
    version: int | None = 1,
    process: bool = False,
):
    """A started server, serving `version` (None: do not wait), stopped on exit, which must
    be clean. In a thread of this process (ThreadServer), for tests of the API; with
    process=True `python -m local_server` (LocalServer), for tests of the process itself:
    its log, pid, signals, exit code."""
    flags = ("--file_system_poll_wait_seconds=0.2", *extra_flags)
    if process:
        log_path = pathlib.Path(base_path).parent / f"server-{free_port()}.log"
        server = LocalServer(model_name, base_path, log_path, *flags)
    else:
        server = ThreadServer(model_name, base_path, **server_options(*flags))
    try:
        if version is not None:
            server.wait_for(version)
        yield server
    finally:
        code = server.stop()
    assert code == 0, f"server exit code {code}:\n{server.log()}"


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    """`make manifests`' objects for serving/models.config, as (file, object) pairs, the way
    `make deploy-check` reads them. Shared: a test that changes them changes a deep copy."""
    from deploy import check, render

    out = str(tmp_path_factory.mktemp("deploy") / "out")
    models_config = str(ROOT / "serving" / "models.config")
    image = "tensorflow/serving:2.20.0"
    render.render(out, models_config, str(ROOT / "serving"), image, "gs://bucket/models")
    return check.load_applied(out, render.KUBECTL)
