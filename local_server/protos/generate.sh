#!/usr/bin/env bash
# Regenerates the *_pb2.py beside this script from the vendored .proto files.
# tensorflow-serving-api ships ModelServerConfig but not these three messages.
# Needs grpcio-tools built for the protobuf of requirements.txt:
#   python -m venv /tmp/protoc && /tmp/protoc/bin/pip install grpcio-tools==1.85.1
#   PYTHON=/tmp/protoc/bin/python local_server/protos/generate.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
"${PYTHON:-python}" -m grpc_tools.protoc -I . --python_out=. \
  local_server/protos/monitoring_config.proto local_server/protos/batching_parameters.proto \
  local_server/protos/ssl_config.proto
