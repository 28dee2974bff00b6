# Defaults of the walkthrough's shell variables: the one place they are written.
#
#   source env.sh     # in your shell, from the repository's root (it reads serving/releases.tsv)
#
# The Makefile reads its defaults from this file too. Every default yields to a
# value already set, so `MODEL=mnist_pure_jax source env.sh`, `make VAR=value`
# and exported variables win. Plain POSIX sh: bash and dash can source it.

# Where SavedModels go: one directory per model, one numbered version below it.
: "${MODEL_PATH:=/tmp/jax2tf/saved_models}"
# The model: mnist_flax (CNN) or mnist_pure_jax (MLP); for `make export`, also
# package.module:attribute, a model of models/base.py's protocol (examples/README.md),
# whose name the other targets then take.
: "${MODEL:=mnist_flax}"
# Batch size of the exported serving signature: -1 for any batch size.
: "${SERVING_BATCH_SIZE_SAVE:=-1}"
# Batch size of each request; must equal SERVING_BATCH_SIZE_SAVE unless that is -1.
: "${SERVING_BATCH_SIZE:=16}"
# How many test images `make request` sends.
: "${COUNT_IMAGES:=128}"
# The newest release with a Docker image: the last such row of serving/releases.tsv,
# which lists the oldest first.
tf_serving_newest_release() {
  awk '!/^#/ && NF && $4 != "-" { r = $1 } END { print r }' serving/releases.tsv
}
# The oldest TensorFlow Serving release that must serve what `make export`
# writes, and the one `make serve` runs: the export writes the format that
# release reads. Default (also when empty): the newest release with a Docker
# image. Any release of serving/releases.tsv with an image (2.19, or a full
# 2.19.1); nightly: JAX's newest format and the tensorflow/serving:nightly
# image, which changes daily. A release listed without an image (TensorFlow
# 2.21, whose TensorFlow Serving is not out) is refused by `make export` and
# `make serve`; `make compat` runs exports with its TensorFlow all the same.
: "${TF_SERVING_VERSION:=$(tf_serving_newest_release)}"
# 1: `make serve` runs the model on a GPU (Docker's -gpu image). The export
# must then include it: make export PLATFORMS=cpu,cuda
: "${GPU:=}"

# TensorFlow Serving's Docker image for TF_SERVING_VERSION and GPU: the
# release's image in serving/releases.tsv (the releases' one table), a full
# release number (2.19.1) as its own tag, nightly as itself. A release the
# table has no image for keeps its number, which no image has: `make setup`,
# `make serve` and `make manifests` refuse it with the reason first.
tf_serving_image() {
  case "$TF_SERVING_VERSION" in
    *.*.*) _tag=$TF_SERVING_VERSION ;;
    *) _tag=$(awk -v r="$TF_SERVING_VERSION" '!/^#/ && $1 == r && $4 != "-" { print $4 }' \
         serving/releases.tsv)
       _tag=${_tag:-$TF_SERVING_VERSION} ;;
  esac
  case "$GPU" in
    1 | true | yes) _tag=$_tag-gpu ;;
  esac
  echo "tensorflow/serving:$_tag"
  unset _tag
}
: "${DOCKER_IMAGE:=$(tf_serving_image)}"
# TensorFlow Serving's own ports: gRPC and REST.
: "${GRPC_PORT:=8500}"
: "${REST_PORT:=8501}"

# The version `make export` writes. Empty: the export takes the next free
# version when it publishes (serving/versions.py's next_version, the rule TensorFlow
# Serving reads versions by), so that a running server picks it up and two
# concurrent exports take two versions; `make inspect` and `make compat` look
# at the newest. Set it to export, inspect or run that version.
: "${MODEL_VERSION:=}"

# DOCKER_IMAGE is derived, so it is not exported: make derives it again from a
# TF_SERVING_VERSION or GPU you change later (export DOCKER_IMAGE to pin one).
export MODEL_PATH MODEL SERVING_BATCH_SIZE_SAVE SERVING_BATCH_SIZE COUNT_IMAGES \
  TF_SERVING_VERSION GPU GRPC_PORT REST_PORT MODEL_VERSION
