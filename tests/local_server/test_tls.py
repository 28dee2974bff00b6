"""gRPC over TLS (--ssl_config_file, local_server/tls.py) with certificates made here
(trustme, through tools/certs.py): a TLS client gets answers, a plaintext one is refused;
with client_verify, a client without a certificate or with another CA's is refused; a
wrong or unreadable file stops the server at start, saying why."""

import os
import pathlib

import grpc
import pytest
import trustme
from conftest import local_server, module, request_cli, run
from google.protobuf import text_format
from half_plus_two import write_tf2
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

from clients import serving_client
from clients import tls as client_tls
from local_server import tls
from local_server.protos.ssl_config_pb2 import SSLConfig
from serving.status import ServingError
from tools import certs, model_config_files
from tools.server_process import Started


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """make certs' files (client_verify on), and an SSLConfig without client_verify."""
    folder = tmp_path_factory.mktemp("tls")
    paths = certs.write(str(folder))
    config = text_format.Parse(pathlib.Path(paths["ssl.config"]).read_text(), SSLConfig())
    config.client_verify = False
    paths["no_verify.config"] = str(folder / "no_verify.config")
    with open(paths["no_verify.config"], "w") as f:
        f.write(text_format.MessageToString(config))
    other_ca = trustme.CA()
    other = other_ca.issue_cert("tf-serving-client")  # Another CA's client.
    blobs = {"other.crt": other.cert_chain_pems[0], "other.key": other.private_key_pem}
    for name, blob in {**blobs, "other_ca.crt": other_ca.cert_pem}.items():
        paths[name] = str(folder / name)
        blob.write_to_path(paths[name])
    return paths


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    base = tmp_path_factory.mktemp("models") / "default"
    write_tf2(base / "1")
    return base


def status(channel) -> int:
    """The served version, asked over `channel` (GetModelStatus)."""
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "default"
    with channel:
        return stub.GetModelStatus(request, timeout=10).model_version_status[0].version


def refused(channel) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as error:
        status(channel)
    return error.value.code()


def test_client_verify_admits_only_clients_of_its_ca(files, model):
    with local_server("default", model, f"--ssl_config_file={files['ssl.config']}") as server:
        address = server.grpc_address
        ca, cert, key = files["ca.crt"], files["client.crt"], files["client.key"]
        assert status(client_tls.channel(address, ca, cert, key)) == 1
        assert refused(grpc.insecure_channel(address)) == grpc.StatusCode.UNAVAILABLE
        assert refused(client_tls.channel(address, ca)) == grpc.StatusCode.UNAVAILABLE
        other = client_tls.channel(address, ca, files["other.crt"], files["other.key"])
        assert refused(other) == grpc.StatusCode.UNAVAILABLE
        # A client that trusts another CA refuses the server.
        distrust = client_tls.channel(address, files["other_ca.crt"], cert, key)
        assert refused(distrust) == grpc.StatusCode.UNAVAILABLE
        # REST stays plaintext (as in TensorFlow Serving).
        assert server.status()["1"]["state"] == "AVAILABLE"


def test_without_client_verify_any_tls_client_gets_answers(files, model):
    with local_server("default", model, f"--ssl_config_file={files['no_verify.config']}") as server:
        address = server.grpc_address
        assert status(client_tls.channel(address, files["ca.crt"])) == 1
        assert refused(grpc.insecure_channel(address)) == grpc.StatusCode.UNAVAILABLE


def test_model_server_request_over_tls(files, shared_export, tmp_path):
    version = shared_export(model="mnist_pure_jax")
    base = os.path.dirname(version)
    flags = [f"--ssl_config_file={files['ssl.config']}"]
    with local_server("mnist_pure_jax", base, *flags, version=int(os.path.basename(version))) as s:
        common = [
            "--model_spec_name=mnist_pure_jax", f"--prediction_service_addr={s.grpc_address}",
            "--mock_data", "--count_images=32", "--connect_timeout=2",
        ]  # fmt: skip
        tls_flags = [
            f"--ca_cert={files['ca.crt']}",
            f"--client_cert={files['client.crt']}",
            f"--client_key={files['client.key']}",
        ]
        result = request_cli(*common, *tls_flags)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "gRPC: 32 images in 2 requests (0 failed)" in result.stdout
        plaintext = serving_client.GrpcClient(s.grpc_address, "mnist_pure_jax", timeout=10)
        with pytest.raises(serving_client.RequestError) as no_tls:
            plaintext.wait_ready(2)  # What the script says without --ca_cert.
        message = str(no_tls.value)
        assert f"the server at {s.grpc_address} accepts connections, but no gRPC" in message
        assert "A server started with TLS_DIR needs it here too (its ca.crt" in message


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.ClearField("server_key"), "needs server_key and server_cert"),
        (lambda c: setattr(c, "server_cert", "not a certificate"), "must be PEM text"),
        (lambda c: setattr(c, "server_key", c.custom_ca), "must be PEM text"),
        (lambda c: setattr(c, "custom_ca", "not a CA"), "custom_ca is not a PEM certificate"),
        (lambda c: c.ClearField("custom_ca"), "client_verify needs custom_ca"),
    ],
    ids=["no key", "not PEM", "key of another certificate", "CA not PEM", "verify without CA"],
)
def test_a_wrong_ssl_config_is_refused_at_start(files, tmp_path, change, message):
    config = text_format.Parse(pathlib.Path(files["ssl.config"]).read_text(), SSLConfig())
    change(config)
    path = tmp_path / "ssl.config"
    path.write_text(text_format.MessageToString(config))
    with pytest.raises(ServingError, match=message):
        tls.read(str(path))


def test_an_unreadable_ssl_config_stops_the_server_with_a_clear_error(files, model, tmp_path):
    missing = tmp_path / "missing.config"
    with pytest.raises(ServingError, match="No such file or directory"):
        tls.read(str(missing))
    unparsable = tmp_path / "bad.config"
    unparsable.write_text("server_key: unquoted")
    with pytest.raises(ServingError, match="Invalid protobuf file"):
        tls.read(str(unparsable))
    result = run(
        module("local_server", f"--model_base_path={model}", "--port=0", "--rest_api_port=0",
               f"--ssl_config_file={missing}")
    )  # fmt: skip
    assert result.returncode == 1
    assert f"error: {missing}; No such file or directory" in result.stderr


def test_make_reload_over_tls(files, model, tmp_path):
    """`make reload TLS_DIR=...`: the config goes over TLS; a plaintext reload says why it fails."""
    config = tmp_path / "models.config"
    config.write_text(
        'model_config_list { config { name: "default" base_path: "/models/default" '
        'model_platform: "tensorflow" } }\n'
    )
    with local_server("default", model, f"--ssl_config_file={files['ssl.config']}") as server:
        started = Started("local", os.getpid())  # reload reads only its kind.
        args = (str(config), str(model.parent), str(tmp_path / "host.config"), started)
        port = int(server.grpc_address.rsplit(":", 1)[1])
        tls = (files["ca.crt"], files["client.crt"], files["client.key"])
        model_config_files.reload(*args, grpc_port=port, timeout=10, tls_files=tls)
        with pytest.raises(SystemExit, match="A server started with TLS_DIR needs it here too"):
            model_config_files.reload(*args, grpc_port=port, timeout=10)
