"""Hostile input, limits, process and export faults: clear errors, nothing lost."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from conftest import (
    ROOT,
    copy_version,
    local_server,
    module,
    rival_takes_the_first_version,
    run,
    script,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

import saved_model_main
from models import mnist_data

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1000"))
GOOD = mnist_data.scale_images(mnist_data.synthetic(4, seed=9).images)

pytestmark = pytest.mark.slow  # Its tests of processes add up to minutes.


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory, untrained_mlp):
    base = tmp_path_factory.mktemp("fuzz") / "mnist_pure_jax"
    copy_version(untrained_mlp, base)
    with local_server("mnist_pure_jax", base, "--max_batch_size=64", process=True) as server:
        yield server


# ---- Hostile REST input ------------------------------------------------------------

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=20,
)
deep_nesting = st.integers(2, 5000).map(lambda depth: "[" * depth + "1.0" + "]" * depth)
ragged = st.lists(st.lists(st.floats(0, 1), min_size=1, max_size=3), min_size=2, max_size=4)
wrong_rank = st.integers(0, 5).map(lambda rank: np.zeros((2,) * rank).tolist())
bodies = st.one_of(
    st.binary(max_size=64),  # Not JSON, or not UTF-8.
    json_values.map(json.dumps),  # Any JSON at all.
    st.sampled_from(["", "{}", "[]", "null", '{"instances": []}', '{"inputs": {}}']),
    st.builds(lambda v: json.dumps({"instances": v}), json_values),
    st.builds(lambda v: json.dumps({"inputs": v}), json_values),
    st.builds(lambda v: json.dumps({"instances": v}), ragged),
    st.builds(lambda v: json.dumps({"inputs": v}), wrong_rank),
    st.builds(lambda s: f'{{"instances": {s}}}', deep_nesting),
    st.builds(lambda s: f'{{"inputs": {{"inputs": {s}}}}}', deep_nesting),
    st.builds(
        lambda v, both: json.dumps({"instances": v, **({"inputs": v} if both else {})}),
        json_values,
        st.booleans(),
    ),
    # Right shape, wrong element types: strings, booleans, nulls where floats belong.
    st.builds(
        lambda bad: json.dumps({"instances": [[[[bad]] * 28] * 28]}),
        st.one_of(st.text(max_size=3), st.booleans(), st.none()),
    ),
    st.builds(lambda v: json.dumps({"signature_name": v, "instances": [1.0]}), json_values),
)
path_part = st.text(alphabet="abcdefgh0123456789:/._-", max_size=12)
urls = st.one_of(
    st.just("/v1/models/mnist_pure_jax:predict"),
    st.builds(lambda p: f"/v1/models/mnist_pure_jax{p}", path_part),
    st.builds(lambda v: f"/v1/models/mnist_pure_jax/versions/{v}:predict", path_part),
    st.builds(lambda verb: f"/v1/models/mnist_pure_jax:{verb}", path_part),
    st.builds(lambda p: f"/{p}", path_part),
)
READS = re.compile(r"/v1/models/mnist_pure_jax(/versions/1)?(/metadata)?/?")
methods = st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS"])


def server_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_fuzz_rest_with_hostile_requests(fuzz_server):
    base = f"http://localhost:{fuzz_server.rest_port}"
    session = requests.Session()
    counts = {"sent": 0}

    def good_request_still_served():
        response = session.post(
            f"{fuzz_server.rest_url}:predict", json={"instances": GOOD.tolist()}, timeout=10
        )
        assert response.status_code == 200 and len(response.json()["predictions"]) == len(GOOD)

    good_request_still_served()
    rss_before = server_rss_kib(fuzz_server.process.pid)

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(method=methods, url=urls, body=bodies)
    def hostile(method, url, body):
        data = body.encode() if isinstance(body, str) else body
        response = session.request(method, base + url, data=data, timeout=10)
        counts["sent"] += 1
        if response.status_code == 200:  # Only a status or metadata read may be valid.
            assert method == "GET" and READS.fullmatch(url), (url, response.text)
        else:
            assert 400 <= response.status_code < 500, (method, url, data[:80], response.text)
            assert isinstance(response.json()["error"], str)
        if counts["sent"] % 50 == 0:
            good_request_still_served()

    hostile()
    good_request_still_served()
    assert counts["sent"] >= FUZZ_EXAMPLES
    assert fuzz_server.process.poll() is None  # Still up.
    growth_mib = (server_rss_kib(fuzz_server.process.pid) - rss_before) / 1024
    print(
        f"\nfuzz: {counts['sent']} hostile requests, all 4xx (or valid reads); "
        f"server RSS grew {growth_mib:.0f} MiB"
    )
    assert growth_mib < 300


RAW_GARBAGE = [
    pytest.param(b"NONSENSE\r\n\r\n", id="no request line"),
    pytest.param(b"GET /v1/models/mnist_pure_jax HTTP/9.9\r\n\r\n", id="HTTP/9.9"),
    pytest.param(
        b"POST /v1/models/mnist_pure_jax:predict HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        id="Content-Length not a number",
    ),
    pytest.param(
        b"POST /v1/models/mnist_pure_jax:predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\n",
        id="bad chunk size",
    ),
    pytest.param(b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", id="70 kB path"),
]


@pytest.mark.parametrize("raw", RAW_GARBAGE)
def test_raw_http_garbage_gets_4xx_and_the_server_keeps_serving(fuzz_server, raw):
    """The HTTP parser's own errors (plain text, as TensorFlow Serving's evhttp's are)."""
    with socket.create_connection(("localhost", fuzz_server.rest_port), timeout=30) as s:
        s.sendall(raw)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    status_line = reply.partition(b"\r\n")[0]
    assert status_line.split()[1].startswith(b"4"), (raw[:60], reply[:200])
    assert requests.get(fuzz_server.rest_url, timeout=10).status_code == 200


# ---- Limits ------------------------------------------------------------------------


def test_limits_on_body_message_and_batch_sizes(tmp_path, untrained_mlp):
    copy_version(untrained_mlp, tmp_path / "mnist_pure_jax")
    limits = (
        "--rest_max_body_bytes=100000",
        "--grpc_max_message_bytes=100000",
        "--max_batch_size=8",
    )
    with local_server("mnist_pure_jax", tmp_path / "mnist_pure_jax", *limits) as server:
        big = mnist_data.scale_images(mnist_data.synthetic(40).images)  # ~125 kB as float32.
        response = requests.post(f"{server.rest_url}:predict", json={"instances": big.tolist()})
        assert response.status_code == 429  # RESOURCE_EXHAUSTED, as TensorFlow Serving maps it
        assert "--rest_max_body_bytes" in response.json()["error"]

        channel = grpc.insecure_channel(server.grpc_address)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "mnist_pure_jax"
        request.inputs["inputs"].CopyFrom(tf.make_tensor_proto(big))
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(request, timeout=10)
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

        request.inputs["inputs"].CopyFrom(tf.make_tensor_proto(big[:9]))
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(request, timeout=10)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "--max_batch_size" in error.value.details()

        request.inputs["inputs"].CopyFrom(tf.make_tensor_proto(big[:8]))
        assert stub.Predict(request, timeout=10).outputs["output_0"].tensor_shape.dim[0].size == 8


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on `port`, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in list(f)[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    found.add(address)
    return found


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="needs Linux's /proc/net/tcp")
def test_server_binds_to_localhost_only(fuzz_server):
    # 127.0.0.1, ::1 and ::ffff:127.0.0.1, as /proc/net/tcp{,6} spell them.
    loopback = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}
    for port in (fuzz_server.grpc_port, fuzz_server.rest_port):
        addresses = listening_addresses(port)
        assert addresses and addresses <= loopback, (port, addresses)


# ---- Process faults ----------------------------------------------------------------


def test_requests_while_the_server_restarts_fail_clearly_and_are_counted(
    tmp_path, caplog, untrained_mlp
):
    from clients import mnist_client, serving_client
    from local_server.harness import free_port

    base = tmp_path / "mnist_pure_jax"
    copy_version(untrained_mlp, base)
    with local_server("mnist_pure_jax", base, process=True) as server:
        client = serving_client.GrpcClient(server.grpc_address, "mnist_pure_jax", timeout=2)

        class StopsTheServerAfterThreeRequests:
            calls = 0

            def predict(self, inputs):
                self.calls += 1
                if self.calls == 4:
                    server.stop()
                return client.predict(inputs)

        data = mnist_data.synthetic(64)
        summary = mnist_client.send_batches(StopsTheServerAfterThreeRequests(), "inputs", data, 4)
    failed = [r.getMessage() for r in caplog.records if "failed:" in r.getMessage()]
    assert summary["failed"] == len(failed) == 16 - 3
    assert summary["requests"] == 3 and summary["images"] == 12
    assert all("answered UNAVAILABLE" in line for line in failed), failed[:2]

    # ...and a restarted server on the same port serves the same client again.
    restarted = subprocess.Popen(
        module("local_server", f"--port={server.grpc_port}",
               f"--rest_api_port={free_port()}", "--model_name=mnist_pure_jax",
               f"--model_base_path={base}"),
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                client.predict({"inputs": GOOD})
                break
            except serving_client.RequestError:
                assert time.monotonic() < deadline, "no answer after the restart"
                time.sleep(0.2)
    finally:
        restarted.terminate()
        restarted.wait(timeout=30)


def test_request_script_exit_status_and_count_when_the_server_is_gone(tmp_path, untrained_mlp):
    copy_version(untrained_mlp, tmp_path / "mnist_pure_jax")
    with local_server("mnist_pure_jax", tmp_path / "mnist_pure_jax") as server:
        client = subprocess.Popen(
            script("model_server_request.py", "--model_spec_name=mnist_pure_jax",
                   f"--prediction_service_addr={server.grpc_address}", "--serving_batch_size=1",
                   "--count_images=256", "--mock_data", "--request_timeout=2", "--verbose"),
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        # Stop the server once the script has sent its first batches. The script
        # is paused meanwhile: its 256 requests take well under a second, so it
        # could otherwise finish before the server has stopped.
        try:
            for line in client.stderr:
                if "batch 5:" in line:
                    break
            client.send_signal(signal.SIGSTOP)
            server.stop()
            client.send_signal(signal.SIGCONT)
            stdout, stderr = client.communicate(timeout=120)
        finally:
            client.kill()  # Only if the test failed before the script ended: ours, by pid.
            client.wait()
    assert client.returncode == 1
    assert "Traceback" not in stderr
    assert "failed: the server at" in stderr
    assert "requests failed" in stderr and "images in" in stdout


# ---- Export faults -----------------------------------------------------------------


def export_process(*flags_: str) -> subprocess.Popen:
    return subprocess.Popen(
        script("saved_model_main.py", "--mock_data", "--noshow_model", *flags_),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigint_during_training_leaves_nothing(tmp_path):
    process = export_process(f"--model_path={tmp_path}", "--model=mnist_flax", "--num_epochs=50")
    for line in process.stderr:
        if "epoch 1/50" in line:
            break
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    assert process.returncode != 0
    assert not (tmp_path / "mnist_flax").exists()


# Each signal at each moment of the export: SIGINT while training is the test above.
@pytest.mark.parametrize(
    "moment, sig",
    [("converting", signal.SIGTERM), ("saving", signal.SIGINT)],
    ids=["converting-SIGTERM", "saving-SIGINT"],
)
def test_signal_while_converting_or_saving_leaves_nothing(tmp_path, sig, moment):
    process = export_process(f"--model_path={tmp_path}", "--model=mnist_flax", "--num_epochs=0")
    # Drain stderr in a thread, so that the export never blocks on a full pipe.
    converting, lines = threading.Event(), []

    def read_stderr():
        for line in process.stderr:
            lines.append(line)
            if "Converting with jax2tf and saving" in line:
                converting.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    base = tmp_path / "mnist_flax"
    assert converting.wait(timeout=120), "".join(lines[-20:])
    deadline = time.monotonic() + 120
    while moment == "saving" and not list(base.glob(".staging-*/variables")):
        assert process.poll() is None and time.monotonic() < deadline, "".join(lines[-20:])
        time.sleep(0.002)
    # Freeze it where it is, check that this is mid-export, then signal it.
    process.send_signal(signal.SIGSTOP)
    (staging,) = base.glob(".staging-*")
    if moment == "saving":
        assert (staging / "variables").is_dir()
    process.send_signal(sig)
    process.send_signal(signal.SIGCONT)
    process.wait(timeout=120)
    reader.join(timeout=10)
    assert process.returncode == 128 + sig
    assert not base.exists(), "".join(lines[-20:])
    assert "Traceback" not in "".join(lines)
    if sig == signal.SIGINT:
        assert lines[-1] == "Interrupted: no version was published.\n"


def test_failing_disk_write_gives_a_clear_error_and_leaves_nothing(tmp_path):
    # Files may not grow past 128 KiB (ulimit -f counts 1,024-byte blocks), so the
    # variables file cannot be written,
    # as on a full disk; with SIGXFSZ ignored the write fails with EFBIG.
    command = (
        f"ulimit -f 128; trap '' XFSZ; exec {sys.executable} saved_model_main.py --mock_data "
        f"--noshow_model --model_path={tmp_path} --model=mnist_pure_jax --num_epochs=0"
    )
    result = run(["bash", "-c", command], timeout=120)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "error: writing the SavedModel under" in result.stderr
    assert "free space" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "mnist_pure_jax").exists()


def test_concurrent_exports_of_one_explicit_version_publish_one(tmp_path):
    # Without a version they take 1 and 2: test_concurrent_make_exports_take_1_and_2.
    flags_ = [f"--model_path={tmp_path}", "--model=mnist_pure_jax", "--num_epochs=0"]
    processes = [export_process(*flags_, "--model_version=1") for _ in range(2)]
    results = [(p.communicate(timeout=300)[1], p.returncode) for p in processes]
    assert sorted(code for _, code in results) == [0, 1]
    (failure,) = [err for err, code in results if code == 1]
    assert "version 1 of" in failure and "exists; nothing was changed" in failure
    assert os.listdir(tmp_path / "mnist_pure_jax") == ["1"]
    assert (tmp_path / "mnist_pure_jax" / "1" / "saved_model.pb").exists()


def test_concurrent_make_exports_take_1_and_2(tmp_path):
    command = ["make", "--no-print-directory", "export", "MOCK_DATA=1", "NUM_EPOCHS=0",
               "MODEL=mnist_pure_jax", f"MODEL_PATH={tmp_path}"]  # fmt: skip
    processes = [
        subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    errors = [p.communicate(timeout=300)[1] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [e[-500:] for e in errors]
    assert sorted(os.listdir(tmp_path / "mnist_pure_jax")) == ["1", "2"]


@pytest.mark.parametrize("explicit_version", [False, True])
def test_a_version_taken_while_exporting(export, tmp_path, monkeypatch, explicit_version):
    """Another export publishes our version between our choice and our rename."""
    tried = rival_takes_the_first_version(monkeypatch)
    if explicit_version:
        with pytest.raises(saved_model_main.ExportError, match=r"version 1 of .* exists"):
            export(model="mnist_pure_jax", num_epochs=0, model_version=1)
        assert tried == [1]
        assert sorted(os.listdir(tmp_path / "mnist_pure_jax")) == ["1"]
    else:
        path = export(model="mnist_pure_jax", num_epochs=0)
        assert tried == [1, 2] and path == str(tmp_path / "mnist_pure_jax" / "2")
        assert (tmp_path / "mnist_pure_jax" / "2" / "variables").is_dir()
