"""gRPC channels over TLS, to a server started with TLS_DIR (`make certs`, `make serve`).

    channel = tls.channel("localhost:8500", "ca.crt")  # + "client.crt", "client.key"
    client = serving_client.GrpcClient("localhost:8500", "mnist_flax", 30, channel=channel)

A server that verifies clients (client_verify) needs this client's certificate and key too.
"""

import pathlib

import grpc

from clients.serving_client import CHANNEL_OPTIONS, RequestError


def channel(address: str, ca_cert="", client_cert="", client_key="") -> grpc.Channel:
    """A channel to host:port, over TLS when ca_cert names the CA file (PEM) of the server's
    certificate; client_cert and client_key (PEM files): both or neither. Plaintext without."""
    if not ca_cert:
        if client_cert or client_key:
            raise RequestError("a client certificate needs TLS: give --ca_cert too")
        return grpc.insecure_channel(address, CHANNEL_OPTIONS)
    if bool(client_cert) != bool(client_key):
        raise RequestError("give both --client_cert and --client_key, or neither")
    try:
        pems = [
            pathlib.Path(p).read_bytes() if p else None for p in (ca_cert, client_key, client_cert)
        ]
    except OSError as e:
        raise RequestError(
            f"cannot read {e.filename}: {e.strerror}. TLS_DIR names the folder of the server's "
            "ca.crt (and client.crt, client.key): make certs TLS_DIR=DIR writes a set for trying."
        ) from None
    return grpc.secure_channel(address, grpc.ssl_channel_credentials(*pems), CHANNEL_OPTIONS)
