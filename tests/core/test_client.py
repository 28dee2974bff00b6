"""The request client: serving_client and mnist_client (in process), model_server_request.py's
exit and output."""

import contextlib
import json
import logging
import re
import socket
import sys
import threading
import time

import numpy as np
import pytest
from conftest import ROOT, answering_version, free_port, local_server, request_cli, run

from clients import mnist_client, serving_client
from models import mnist_data, progress
from serving.env import DEFAULTS

IMAGES = mnist_data.scale_images(mnist_data.synthetic(8, seed=4).images)


def test_importing_the_client_imports_neither_jax_nor_flax_nor_tensorflow():
    # TensorFlow imports jax (tf.lite does), so a REST client must not import TensorFlow;
    # models imports a model's module, and so JAX, only when get_model asks for it.
    code = (
        "import sys, model_server_request, models\n"
        "from clients import image_client, inputs_client, mnist_client, serving_client\n"
        "serving_client.RestClient('localhost:1', 'm', 1)\n"
        "assert not {'jax', 'flax', 'tensorflow'} & set(sys.modules), sorted(sys.modules)\n"
        "assert models.get_model('mnist_pure_jax').name == 'mnist_pure_jax'\n"
        "assert 'jax' in sys.modules and 'flax' not in sys.modules"
    )
    result = run([sys.executable, "-c", code])
    assert result.returncode == 0, result.stderr[-2000:]


# ---- The request loop, with clients that need no server ---------------------------------


class Digits:
    """Answers each image's label (the synthetic digit's row); fails the batches in `fail`."""

    def __init__(self, fail=(), delay=0.0):
        self.fail, self.delay, self.calls, self.in_flight, self.most = fail, delay, 0, 0, 0
        self.lock = threading.Lock()

    def predict(self, inputs):
        (images,) = inputs.values()
        with self.lock:
            batch, self.calls = self.calls, self.calls + 1
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        time.sleep(self.delay)
        with self.lock:
            self.in_flight -= 1
        if batch in self.fail:
            raise serving_client.RequestError("the server at x answered UNAVAILABLE: gone")
        rows = np.argmax(images[:, :, 4:24, 0].mean(axis=2), axis=1)  # The bright bar's row.
        return np.eye(10, dtype=np.float32)[(rows - 2) // 2]


DATA = mnist_data.synthetic(8, seed=1)


def test_send_batches_counts_accuracy_and_latency():
    summary = mnist_client.send_batches(Digits(), "inputs", DATA, 2)
    assert summary["images"] == 8 and summary["requests"] == 4 and summary["failed"] == 0
    assert summary["accuracy"] == 1.0
    assert 0 < summary["p50_ms"] <= summary["p90_ms"] <= summary["p99_ms"]
    assert summary["images_per_s"] > 0


def test_a_failed_batch_is_logged_counted_and_skipped(caplog):
    summary = mnist_client.send_batches(Digits(fail={1}), "inputs", DATA, 2)
    assert summary["failed"] == 1 and summary["requests"] == 3 and summary["images"] == 6
    assert summary["accuracy"] == 1.0
    (failure,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert failure == "batch 1: failed: the server at x answered UNAVAILABLE: gone"


def test_when_every_batch_fails_the_summary_has_no_numbers():
    summary = mnist_client.send_batches(Digits(fail={0, 1}), "inputs", DATA, 4)
    assert (summary["failed"], summary["requests"], summary["images"]) == (2, 0, 0)
    assert np.isnan(summary["accuracy"]) and np.isnan(summary["p99_ms"])


def test_the_bar_moves_per_batch_and_verbose_logs_each_batch_instead(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="absl")
    calls = []
    monkeypatch.setattr(progress, "bar", lambda *args: calls.append(args))
    mnist_client.send_batches(Digits(), "inputs", DATA, 2)
    assert calls == [("requests", i, 4) for i in (1, 2, 3, 4)]
    assert not [r for r in caplog.records if "running accuracy" in r.getMessage()]
    calls.clear()
    mnist_client.send_batches(Digits(), "inputs", DATA, 2, verbose=True)
    assert calls == []
    lines = [r.getMessage() for r in caplog.records if "running accuracy" in r.getMessage()]
    assert len(lines) == 4 and lines[-1].endswith("running accuracy 100.00%")
    assert lines[0].startswith("batch 0: predicted [")


def test_concurrency_keeps_that_many_requests_in_flight_and_the_order_of_batches(caplog):
    caplog.set_level(logging.INFO, logger="absl")
    client = Digits(delay=0.05)
    mnist_client.send_batches(client, "inputs", DATA, 1, concurrency=4, verbose=True)
    assert client.most == 4
    lines = [r.getMessage() for r in caplog.records if "running accuracy" in r.getMessage()]
    assert [line.split(":")[0] for line in lines] == [f"batch {i}" for i in range(8)]


def test_the_rest_body_carries_each_float32_exactly():
    values = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    body = json.loads(serving_client.RestClient.predict_body({"inputs": values}))
    assert body["signature_name"] == "serving_default"
    np.testing.assert_array_equal(np.asarray(body["inputs"], dtype=np.float32), values)
    two = json.loads(serving_client.RestClient.predict_body({"a": values, "b": values}))
    assert set(two["inputs"]) == {"a", "b"}  # Named, when a single input would not be.


@pytest.mark.parametrize("client_type", [serving_client.GrpcClient, serving_client.RestClient])
def test_without_a_server_the_client_says_to_start_one(client_type):
    client = client_type(f"localhost:{free_port()}", "mnist_pure_jax", 1)  # Nothing listens.
    with pytest.raises(serving_client.RequestError, match="no model server answers") as error:
        client.wait_ready(0.5)
    assert "make serve" in str(error.value) and "TLS" not in str(error.value)


# ---- Against the local server ------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory, shared_export, untrained_mlp):
    """One server of four models: any batch size (labelled stable), batch 8 only, features."""
    root = tmp_path_factory.mktemp("client")
    bases = {
        "mlp": untrained_mlp,
        "fixed8": shared_export(model="mnist_pure_jax", num_epochs=0, serving_batch_size=8),
        "features": shared_export(
            model="mnist_pure_jax", num_epochs=0, model_classifier_layer=False
        ),
    }
    config = root / "models.config"
    config.write_text(
        "model_config_list {\n"
        + "".join(
            f'  config {{ name: "{name}" base_path: "{path.rsplit("/", 1)[0]}" '
            'model_platform: "tensorflow" model_version_policy { specific { versions: 1 } } '
            'version_labels { key: "stable" value: 1 } }\n'
            for name, path in bases.items()
        )
        + "}\n"
    )
    flags = f"--model_config_file={config}", "--allow_version_labels_for_unavailable_models"
    with local_server("mlp", root, *flags) as server:
        for name in bases:
            server.wait_for(None, model=name)
        yield server


def clients(server, model="mlp", label=""):
    return [
        serving_client.GrpcClient(server.grpc_address, model, 30, label),
        serving_client.RestClient(f"localhost:{server.rest_port}", model, 30, label),
    ]


def test_both_clients_learn_the_input_and_predict_the_same(server):
    grpc_client, rest_client = clients(server)
    for client in (grpc_client, rest_client):
        client.wait_ready(5)
        assert mnist_client.check_model(client, len(IMAGES)) == "inputs"
    by_grpc, by_rest = (client.predict({"inputs": IMAGES}) for client in (grpc_client, rest_client))
    assert by_grpc.shape == (len(IMAGES), 10) and by_grpc.dtype == np.float32
    assert by_rest.dtype == np.float64  # JSON carries no dtype.
    np.testing.assert_allclose(by_grpc, by_rest, rtol=1e-6)
    assert answering_version(grpc_client, "inputs", IMAGES) == 1


def test_the_snippet_of_the_clients_readme_runs(server, capsys):
    text = (ROOT / "clients" / "README.md").read_text()
    snippet = text.split("```python\n", 1)[1].split("```", 1)[0]
    assert '"localhost:8500", "mnist_flax"' in snippet
    exec(snippet.replace('"localhost:8500", "mnist_flax"', f'"{server.grpc_address}", "mlp"'), {})
    assert re.fullmatch(r"digits \[[\d\s]+\] labels \[[\d\s]+\]\n", capsys.readouterr().out)


def test_a_label_asks_the_version_it_names(server):
    for client in clients(server, label="stable"):
        assert client.predict({"inputs": IMAGES}).shape == (len(IMAGES), 10)
    assert answering_version(clients(server, label="stable")[0], "inputs", IMAGES) == 1
    for client in clients(server, label="nope"):
        with pytest.raises(serving_client.RequestError, match="nope"):
            client.predict({"inputs": IMAGES})


def test_check_model_stops_a_batch_size_the_export_does_not_take(server):
    for client in clients(server, "fixed8"):
        with pytest.raises(serving_client.RequestError) as error:
            mnist_client.check_model(client, 16)
        message = str(error.value)
        assert "'fixed8' was exported with batch size 8, but requests would carry 16" in message
        assert "SERVING_BATCH_SIZE=8" in message and "SERVING_BATCH_SIZE_SAVE=-1" in message
        assert mnist_client.check_model(client, 8) == "inputs"


def test_check_model_refuses_a_model_that_is_no_classifier(server):
    for client in clients(server, "features"):
        with pytest.raises(serving_client.RequestError) as error:
            mnist_client.check_model(client, 16)
        assert (
            "model 'features' answers shape [-1, 512], not the log-probabilities of 10 digits"
        ) in str(error.value)


def test_check_model_says_what_to_do_for_an_unknown_model(server):
    for client in clients(server, "mnist_resnet"):
        with pytest.raises(serving_client.RequestError) as error:
            mnist_client.check_model(client, 16)
        assert "the server has no model 'mnist_resnet'" in str(error.value)
        assert "make request MODEL=" in str(error.value)


# ---- model_server_request.py: its output and exit status ---------------------------------


def test_request_script_over_grpc_and_rest(server):
    for api, address, verbose in (
        ("--use_grpc", server.grpc_address, "--noverbose"),
        ("--nouse_grpc", f"localhost:{server.rest_port}", "--verbose"),
    ):
        result = request_cli(
            "--model_spec_name=mlp", api, f"--prediction_service_addr={address}",
            "--serving_batch_size=16", "--count_images=64", "--mock_data", "--concurrency=2",
            verbose,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "64 images in 4 requests (0 failed), accuracy" in result.stdout
        assert "p50" in result.stdout and "p99" in result.stdout and "images/s" in result.stdout
        assert ("running accuracy" in result.stderr) == (verbose == "--verbose")


def test_request_script_stops_with_the_preflight_message(server):
    result = request_cli(
        "--model_spec_name=fixed8", "--nouse_grpc", f"--prediction_service_addr=localhost:"
        f"{server.rest_port}", "--serving_batch_size=16", "--count_images=32", "--mock_data",
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "error: model 'fixed8' was exported with batch size 8" in result.stderr


def test_request_script_takes_its_defaults_from_env_sh():
    result = request_cli("--helpshort")
    defaults = dict(re.findall(r"--(\w+):.*?\(default: '([^']*)'\)", result.stdout, re.S))
    assert defaults["model_spec_name"] == DEFAULTS["MODEL"]
    assert defaults["serving_batch_size"] == DEFAULTS["SERVING_BATCH_SIZE"]
    assert defaults["count_images"] == DEFAULTS["COUNT_IMAGES"]
    assert defaults["prediction_service_addr"] == ""
    grpc, rest = (f"localhost:{DEFAULTS[port]}" for port in ("GRPC_PORT", "REST_PORT"))
    assert f"empty: {grpc} for gRPC, {rest} for REST" in " ".join(result.stdout.split())


def test_rest_without_an_address_asks_the_rest_port():
    port = int(DEFAULTS["REST_PORT"])
    with contextlib.suppress(OSError), socket.create_connection(("localhost", port), timeout=2):
        pytest.skip(f"a server of this machine listens on port {port}")
    result = request_cli("--nouse_grpc", "--connect_timeout=0.3")
    assert result.returncode == 1
    assert f"no model server answers REST at localhost:{DEFAULTS['REST_PORT']}" in result.stderr


def test_request_script_refuses_a_count_the_batch_does_not_divide():
    result = request_cli("--count_images=100")
    assert result.returncode == 1
    assert (
        "not a multiple of --serving_batch_size=16: use --count_images=96 (make request "
        "COUNT_IMAGES=96)." in result.stderr
    )
