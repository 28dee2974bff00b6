"""TensorFlow Serving's inference API in Python: the stand-in for TensorFlow Serving.

    python -m local_server --port=8500 --rest_api_port=8501 --model_name=M --model_base_path=DIR


One job a module, the API apart from its transports (the layout of KServe's
Python model server):

- `__main__`: the command line (tensorflow_model_server's flags), read there only.
- `options`: the server's settings.
- `startup`: the options with the files they name (model config, TLS, batching,
  monitoring) read and checked, before TensorFlow is imported.
- `errors`: how serving.status.ServingError's codes map to HTTP statuses, in one place.
- `servable`: one loaded version; runs signatures in a TF1 Session by tensor
  name, as TensorFlow Serving's SavedModelBundle does; Predict's checks.
- `tf_example`: Classify, Regress and MultiInference on tf.Example inputs.
- `inference`: each call on one version, request proto in, response proto out.
- `warmup`: replays a version's warmup requests before it takes traffic.
- `versions`: which versions are on disk, loaded, and served (version policies).
- `api`: the whole API on protos; the models and their labels; which version
  answers a ModelSpec; config reloads.
- `batching`: --enable_batching, TensorFlow Serving's batch scheduler.
- `metrics`: TensorFlow Serving's metrics and its Prometheus page.
- `protos/`: the batching, monitoring and SSL messages, generated from TensorFlow
  Serving's .proto files.
- `tls`: --ssl_config_file, gRPC over TLS with grpcio's SSL credentials.
- `grpc_service`: the gRPC transport.
- `rest_api` (paths and checks, no sockets), `rest_codec` (the JSON formats,
  pure functions), `rest_server` (the asyncio HTTP transport).
- `server`: starts and stops it all.
- `harness`: the server on free ports, in a thread or a subprocess, for the tests and the
  benchmark.

TensorFlow Serving's files (versions on disk, the model config file) are read
with the `serving` package, which deploy/ and tools/ share.
"""
