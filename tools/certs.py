"""`make certs`: a throwaway CA, server and client certificate, to try gRPC over TLS.

    python -m tools.certs --out=.run/tls

Writes ca.crt, server.crt, server.key, client.crt, client.key and ssl.config,
the SSLConfig text proto that --ssl_config_file reads (the PEM text inside it,
client_verify on). For trying only: the CA's key is thrown away, the keys are
unencrypted, and the names are localhost's and the cluster Service's. For real
use, your own CA issues them (cert-manager, say).
"""

import os

import trustme
from absl import app, flags
from google.protobuf import text_format

from local_server.protos.ssl_config_pb2 import SSLConfig

_OUT = flags.DEFINE_string("out", ".run/tls", "The folder to write the files into.")
# The server's names: this machine, and the gRPC Service of deploy/k8s.
SERVER_NAMES = (
    "localhost",
    "127.0.0.1",
    "tf-serving-grpc",
    "tf-serving-grpc.tf-serving.svc",
    "tf-serving-grpc.tf-serving.svc.cluster.local",
)
SSL_CONFIG = "ssl.config"


def write(out: str, client_verify: bool = True) -> dict[str, str]:
    """The files, written into `out` (keys readable by their owner only); name -> path."""
    ca = trustme.CA()
    server = ca.issue_cert(*SERVER_NAMES)
    client = ca.issue_cert("tf-serving-client")
    os.makedirs(out, exist_ok=True)
    server_key = server.private_key_pem.bytes().decode()
    server_cert = "".join(blob.bytes().decode() for blob in server.cert_chain_pems)
    config = SSLConfig(
        server_key=server_key,
        server_cert=server_cert,
        custom_ca=ca.cert_pem.bytes().decode(),
        client_verify=client_verify,
    )
    texts = {
        "ca.crt": ca.cert_pem.bytes().decode(),
        "server.crt": server_cert,
        "server.key": server_key,
        "client.crt": "".join(blob.bytes().decode() for blob in client.cert_chain_pems),
        "client.key": client.private_key_pem.bytes().decode(),
        SSL_CONFIG: text_format.MessageToString(config),
    }
    paths = {}
    for name, text in texts.items():
        paths[name] = os.path.join(out, name)
        secret = name.endswith(".key") or name == SSL_CONFIG
        with open(paths[name], "w", opener=lambda p, f: os.open(p, f, 0o600)) as f:
            f.write(text)
        os.chmod(paths[name], 0o600 if secret else 0o644)
    return paths


def main(argv: list[str]) -> None:
    del argv
    write(_OUT.value)
    print(
        f"Wrote a throwaway CA, server and client certificate to {_OUT.value}, for trying TLS "
        f"only (client_verify on): make serve TLS_DIR={_OUT.value}; "
        f"make request TLS_DIR={_OUT.value}"
    )


if __name__ == "__main__":
    app.run(main)
