"""gRPC over TLS from an --ssl_config_file, as tensorflow_model_server reads it.

The file is an SSLConfig text proto whose fields hold the PEM text itself, not
file names: server_key, server_cert, custom_ca (the CA that signs client
certificates) and client_verify (refuse a client without a certificate of
custom_ca). TensorFlow Serving stops at start on a file it cannot read; so does
this, and it also checks the PEM text first, so that a wrong certificate is an
error at start rather than a failed handshake on the first request.
"""

import os
import ssl
import tempfile

import grpc

from local_server.protos.ssl_config_pb2 import SSLConfig
from serving import model_config
from serving.status import invalid


def read(path: str) -> SSLConfig:
    """The SSLConfig of `path`, checked; ServingError (INVALID_ARGUMENT) says what is wrong."""
    config = model_config.read_text_proto(path, SSLConfig())
    if not config.server_key or not config.server_cert:
        raise invalid(f"{path}: an SSLConfig needs server_key and server_cert (the PEM text)")
    _check_key_pair(path, config.server_cert, config.server_key)
    if config.custom_ca:
        try:
            ssl.create_default_context(cadata=config.custom_ca)
        except (ssl.SSLError, ValueError) as e:
            raise invalid(f"{path}: custom_ca is not a PEM certificate: {e}") from None
    elif config.client_verify:
        raise invalid(f"{path}: client_verify needs custom_ca, the CA of the client certificates")
    return config


def server_credentials(config: SSLConfig) -> grpc.ServerCredentials:
    """TensorFlow Serving's BuildServerCredentialsFromSSLConfigFile, with grpcio."""
    return grpc.ssl_server_credentials(
        [(config.server_key.encode(), config.server_cert.encode())],
        root_certificates=config.custom_ca.encode() or None,
        require_client_auth=config.client_verify,
    )


def _check_key_pair(path: str, cert: str, key: str) -> None:
    """The certificate and key are PEM, and the key is the certificate's."""
    with tempfile.TemporaryDirectory() as folder:
        files = []
        for name, text in (("cert.pem", cert), ("key.pem", key)):
            files.append(os.path.join(folder, name))
            with open(files[-1], "w", opener=lambda p, f: os.open(p, f, 0o600)) as f:
                f.write(text)
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(*files)
        except ssl.SSLError as e:
            raise invalid(
                f"{path}: server_cert and server_key must be PEM text, the key the "
                f"certificate's ({e.reason or e})"
            ) from None
