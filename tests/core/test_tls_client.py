"""clients/tls.py: the files a TLS channel needs, checked before anything connects (the
channels themselves, against a server over TLS: tests/local_server/test_tls.py)."""

import concurrent.futures

import grpc
import pytest

from clients import serving_client, tls


def test_a_missing_tls_file_says_where_the_files_come_from(tmp_path):
    with pytest.raises(serving_client.RequestError) as missing:
        tls.channel("localhost:1", str(tmp_path / "ca.crt"))
    assert str(missing.value) == (
        f"cannot read {tmp_path}/ca.crt: No such file or directory. TLS_DIR names the folder "
        "of the server's ca.crt (and client.crt, client.key): make certs TLS_DIR=DIR writes a "
        "set for trying."
    )


@pytest.mark.parametrize(
    "files, message",
    [
        (("", "client.crt", "client.key"), "a client certificate needs TLS: give --ca_cert too"),
        (("ca.crt", "client.crt", ""), "give both --client_cert and --client_key, or neither"),
        (("ca.crt", "", "client.key"), "give both --client_cert and --client_key, or neither"),
    ],
)
def test_a_client_certificate_needs_its_key_and_tls(tmp_path, files, message):
    for name in ("ca.crt", "client.crt", "client.key"):
        (tmp_path / name).write_text("not read: the flags are refused first")
    paths = [str(tmp_path / name) if name else "" for name in files]
    with pytest.raises(serving_client.RequestError) as refused:
        tls.channel("localhost:1", *paths)
    assert str(refused.value) == message


def test_without_a_ca_certificate_the_channel_is_plaintext():
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=1))
    port = server.add_insecure_port("localhost:0")
    server.start()
    try:
        with tls.channel(f"localhost:{port}") as channel:  # A TLS one would never be ready.
            grpc.channel_ready_future(channel).result(timeout=10)
    finally:
        server.stop(None)
