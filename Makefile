# The jax2tf -> SavedModel -> TensorFlow Serving walkthrough, a target a step:
#   make setup; make export; make inspect; make serve; make request; make stop
# or all at once, offline: make demo MOCK_DATA=1. `make help` lists every target and
# variable, `make -n TARGET` prints its commands; the other targets are in make/*.mk.
SHELL := /bin/bash
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

# Defaults in env.sh, read once by make/env.mk; `make VAR=value` and the environment win.
ENV_VARS := MODEL_PATH MODEL SERVING_BATCH_SIZE_SAVE SERVING_BATCH_SIZE MODEL_VERSION \
	COUNT_IMAGES TF_SERVING_VERSION GPU DOCKER_IMAGE GRPC_PORT REST_PORT
include make/env.mk
# Options, passed on only when set (make/flags.mk makes them flags): export takes
# NUM_EPOCHS MOCK_DATA DATA_DIR OVERWRITE PLATFORMS CHECKPOINT INPUTS WARMUP_BATCH_SIZES;
# request PROTOCOL CONCURRENCY LABEL IMAGES; VERBOSE=1 shows every line.
SERVER ?= auto
PROTOCOL ?= grpc
PYTHON3 ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements.stamp
# checkov (deploy/checkov-requirements.txt), which make deploy-check runs, in a
# virtualenv of its own: its pins conflict with requirements.txt's.
CHECKOV_VENV ?= .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.requirements.stamp

.PHONY: help setup export inspect serve request demo test clean
help: ## List the targets and the variables
	@echo "Targets:"
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-13s %s\n", $$1, $$2}'
	$(HELP_VARIABLES)

setup: $(STAMP) $(CHECKOV_STAMP) ## Create .venv (and .venv-checkov) with the pinned packages, pull DOCKER_IMAGE if Docker runs
	@$(PY) -m tools.server_process check_release --tf_serving_version='$(TF_SERVING_VERSION)'
	@if $(PY) -m tools.server_process docker_engine; then docker pull $(DOCKER_IMAGE); else echo "No Docker engine" \
	  "answers: skipped 'docker pull $(DOCKER_IMAGE)'. make serve will use" \
	  "tensorflow_model_server or the local server."; fi
$(STAMP): requirements.txt
	$(CHECK_PYTHON3)
	$(PYTHON3) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements.txt
	@touch $@
	@echo "Set up $(VENV) with the packages of requirements.txt."

# JAX's persistent compilation cache (JAX reads these variables): a re-export, and the
# tests' exports, skip the XLA compiles done before. JAX_CACHE_DIR= turns it off.
JAX_CACHE_DIR ?= $(VENV)/jax-cache
ifneq ($(JAX_CACHE_DIR),)
test export: export JAX_COMPILATION_CACHE_DIR ?= $(abspath $(JAX_CACHE_DIR))
test export: export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS ?= 0
endif

export: $(STAMP) ## Train MODEL (or restore CHECKPOINT), export the next version under MODEL_PATH/NAME
	$(PY) saved_model_main.py --model=$(MODEL) --model_path=$(MODEL_PATH) $(VERSION_FLAG) \
		--serving_batch_size=$(SERVING_BATCH_SIZE_SAVE) --tf_serving_version=$(TF_SERVING_VERSION) \
		--compile_model --noshow_model $(strip $(EXPORT_FLAGS) $(VERBOSE_FLAG)) $(QUIET)

inspect: $(STAMP) ## Show the SavedModel's signatures (newest version, or MODEL_VERSION)
	$(eval INSPECT_DIR := $(shell $(PY) -m tools.exports version_dir --model_base_path=$(MODEL_PATH)/$(MODEL) \
		$(if $(MODEL_VERSION),--version=$(MODEL_VERSION)) $(QUIET)))
	@[ -n "$(INSPECT_DIR)" ]
	$(VENV)/bin/saved_model_cli show --all --dir $(INSPECT_DIR) $(QUIET)
	@$(PY) -m tools.compat --norun --model_path=$(MODEL_PATH) --model=$(MODEL) $(VERSION_FLAG) $(QUIET)

# Runs make serve-docker, serve-binary or serve-local (make/serving.mk).
serve: $(STAMP) ## Serve MODEL on GRPC_PORT and REST_PORT (SERVER=auto|docker|binary|local)
	@$(PY) -m tools.server_process check_release --tf_serving_version='$(TF_SERVING_VERSION)'
	@$(PY) -m tools.server_process refuse_if_running $(RUN_FILES)
	@chosen=$$($(PY) -m tools.server_process choose_kind --server=$(SERVER)) && read -r kind why <<< "$$chosen" \
	  && echo "Serving $(if $(MODEL_CONFIG),the models of $(MODEL_CONFIG),$(MODEL)) with the $$kind server ($$why)." && $(MAKE) --no-print-directory serve-$$kind

request: $(STAMP) ## Send COUNT_IMAGES test images to the server (PROTOCOL=grpc|rest; IMAGES='digits/*.png')
	$(PY) model_server_request.py --model_spec_name=$(MODEL) $(REQUEST_API) \
		--serving_batch_size=$(SERVING_BATCH_SIZE) --count_images=$(COUNT_IMAGES) \
		$(strip $(REQUEST_FLAGS) $(VERBOSE_FLAG)) $(QUIET)

demo: $(STAMP) ## export, serve, request over gRPC and REST, stop (MOCK_DATA=1: offline)
	$(MAKE) --no-print-directory export
	$(MAKE) --no-print-directory serve
	$(MAKE) --no-print-directory request PROTOCOL=grpc && \
	  $(MAKE) --no-print-directory request PROTOCOL=rest; \
	  status=$$?; $(MAKE) --no-print-directory stop; exit $$status

# TESTS=tests/core: one folder (tests/README.md). A test file per worker, the slow ones
# first (tests/conftest.py), and a worker more than cores: the tests spend part of their
# time waiting on servers and subprocesses.
TESTS ?= tests
TEST_WORKERS ?= $(shell $(PYTHON3) -c 'import os; print((os.cpu_count() or 1) + 1)')
test: $(STAMP) ## Run the tests (offline; TESTS=tests/core for the core's alone)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(TESTS)

# Only what the export wrote, never a running export's files (tools/exports.py).
clean: ## Delete the SavedModels that `make export` wrote under MODEL_PATH
	@[ -x $(PY) ] || { echo "error: make clean needs $(VENV) to tell the exports of this" \
	  "project from other files: make setup" >&2; exit 1; }
	@$(PY) -m tools.exports clean --exports_path='$(if $(MODEL_PATH_EMPTY),,$(MODEL_PATH))'

include make/flags.mk make/help.mk make/setup.mk make/serving.mk make/compat.mk make/deploy.mk \
	make/bench.mk make/checks.mk make/web.mk
