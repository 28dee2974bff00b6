"""TLS_DIR with `make`: every server kind's command line gets TensorFlow Serving's
--ssl_config_file (Docker a read-only mount of it), `make request` the CA and the client
certificate, `make certs` writes a set, and `make serve` without one stops before starting
(the local server over TLS itself: tests/local_server/test_tls.py)."""

import shlex

import pytest
from conftest import run
from test_make import dry_run, make, server_vars

from tools import certs


def command(lines: list[str], start: str) -> list[str]:
    (line,) = [line for line in lines if start in line]
    return shlex.split(line.split(" > ")[0].split(" 2> >(")[0])


@pytest.mark.parametrize(
    "kind, program", [("binary", "nohup tensorflow_model_server"), ("local", "-m local_server")]
)
def test_the_binary_and_the_local_server_read_the_ssl_config(tmp_path, kind, program):
    lines = dry_run("serve", f"TLS_DIR={tmp_path}/tls", *server_vars(tmp_path, server=kind))
    args = command(lines, program)
    assert args[-1] == f"--ssl_config_file={tmp_path}/tls/ssl.config"
    lines = dry_run("serve", *server_vars(tmp_path, server=kind))
    assert not any("ssl_config_file" in arg for arg in command(lines, program))


def test_docker_mounts_the_ssl_config_read_only(tmp_path):
    lines = dry_run("serve", "TLS_DIR=tls", *server_vars(tmp_path, server="docker"))
    args = command(lines, "docker run")
    mounts = [args[i + 1] for i, a in enumerate(args) if a == "--mount"]
    tls = [m for m in mounts if "ssl.config" in m]
    assert len(tls) == 1 and tls[0].endswith("/tls/ssl.config,target=/tls/ssl.config,readonly")
    assert tls[0].startswith("type=bind,source=/")  # Docker needs an absolute path.
    assert args[-1] == "--ssl_config_file=/tls/ssl.config"


@pytest.mark.parametrize(
    "target, program",
    [("request", "model_server_request"), ("reload", "tools.model_config_files")],
)
def test_request_and_reload_pass_the_ca_and_the_client_certificate(tmp_path, target, program):
    given = [target, "MODEL_CONFIG=serving/models.config"]
    (args,) = [c for c in dry_run(*given, f"TLS_DIR={tmp_path}") if program in c]
    assert f"--ca_cert={tmp_path}/ca.crt" in args and "--client_cert" not in args
    certs.write(str(tmp_path))
    (args,) = [c for c in dry_run(*given, f"TLS_DIR={tmp_path}") if program in c]
    assert f"--client_cert={tmp_path}/client.crt --client_key={tmp_path}/client.key" in args
    (args,) = [c for c in dry_run(*given) if program in c]
    assert "--ca_cert" not in args


def test_make_certs_writes_a_set_for_trying(tmp_path):
    result = make("certs", f"TLS_DIR={tmp_path}/tls")
    assert "for trying TLS only" in result
    written = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "tls").iterdir()}
    assert written == {
        "ca.crt": 0o644, "server.crt": 0o644, "client.crt": 0o644,
        "server.key": 0o600, "client.key": 0o600, "ssl.config": 0o600,
    }  # fmt: skip
    assert "client_verify: true" in (tmp_path / "tls" / "ssl.config").read_text()


def test_serve_without_an_ssl_config_stops_before_starting(tmp_path):
    result = run(
        ["make", "--no-print-directory", "serve", f"TLS_DIR={tmp_path}", *server_vars(tmp_path)]
    )
    assert result.returncode != 0
    assert f"TLS_DIR={tmp_path} holds no readable ssl.config: make certs TLS_DIR=" in result.stderr
    assert not (tmp_path / "run" / "server.pid").exists()
