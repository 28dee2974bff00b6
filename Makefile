# The jax2tf -> SavedModel -> TensorFlow Serving walkthrough, one target a step.
# `make help` lists the targets and variables; README.md walks through them.

SHELL := /bin/bash
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

# ---- Variables ---------------------------------------------------------------
# The walkthrough's variables. Their defaults are written once, in env.sh; a
# value from `make VAR=value` or the environment wins, as it does when a person
# sources env.sh. env.sh keeps values already set, so we hand it ours, and one
# shell prints them all back as "VAR := value" lines (joined by a marker, since
# $(shell) turns newlines into spaces) for make to evaluate.
ENV_VARS := MODEL_PATH MODEL SERVING_BATCH_SIZE_SAVE SERVING_BATCH_SIZE MODEL_VERSION \
	COUNT_IMAGES TF_SERVING_VERSION GPU DOCKER_IMAGE GRPC_PORT REST_PORT
_given = $(foreach v,$(ENV_VARS),$(if $(filter command line environment,$(origin $(v))),$(v)='$($(v))';))
# env.sh treats an empty value as unset; `make clean` must not, or an empty
# MODEL_PATH in the environment would clean the default one.
MODEL_PATH_EMPTY := $(if $(filter command line environment,$(origin MODEL_PATH)),$(if $(MODEL_PATH),,yes))
define newline


endef
_env_sh := $(shell $(_given) . ./env.sh && $(foreach v,$(ENV_VARS),printf '%s := %s<NL>' $(v) "$$$(v)";))
$(eval $(subst <NL>,$(newline),$(_env_sh)))

# The walkthrough's stderr goes through tools/quiet_startup.sh, which drops the lines
# TensorFlow prints at start-up on a machine without a GPU (no errors, though
# one looks like one). VERBOSE=1 shows every line, and the export's and the
# request's --verbose ones.
VERBOSE ?=
VERBOSE_ON := $(filter 1 true yes,$(VERBOSE))
VERBOSE_FLAG := $(if $(VERBOSE_ON),--verbose)
QUIET = $(if $(VERBOSE_ON),,2> >(tools/quiet_startup.sh >&2))

# Options of the scripts, passed on only when set (the scripts' flags have the defaults).
NUM_EPOCHS ?=
MOCK_DATA ?=
DATA_DIR ?=
OVERWRITE ?=
PLATFORMS ?=
SERVER ?= auto
PROTOCOL ?= grpc
CONCURRENCY ?=
# TensorFlow Serving releases that `make compat` runs the model with (default: all it knows).
COMPAT_VERSIONS ?=
# The production config files (TensorFlow Serving's formats, in serving/), for
# every server kind: MODEL_CONFIG=serving/models.config serves its models
# (instead of MODEL alone), BATCHING=1 and MONITORING=1 add serving/batching.config
# and serving/monitoring.config. LABEL=canary: `make request` asks that label.
MODEL_CONFIG ?=
BATCHING ?=
MONITORING ?=
LABEL ?=
# How often the server re-reads MODEL_CONFIG (--model_config_file_poll_wait_seconds).
CONFIG_POLL_SECONDS ?= 10

PYTHON3 ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements.stamp
# tools/compat.py's default --venv_dir: one virtualenv per TensorFlow release.
COMPAT_DIR ?= .compat
comma := ,
space := $(subst ,, )

DATA_FLAGS := $(if $(filter 1 true yes,$(MOCK_DATA)),--mock_data) $(if $(DATA_DIR),--data_dir=$(DATA_DIR))
EXPORT_FLAGS := $(if $(NUM_EPOCHS),--num_epochs=$(NUM_EPOCHS)) $(DATA_FLAGS) \
	$(if $(filter 1 true yes,$(OVERWRITE)),--overwrite) $(if $(PLATFORMS),--platforms=$(PLATFORMS)) \
	$(if $(TF_SERVING_VERSION),--tf_serving_version=$(TF_SERVING_VERSION))
GPU_ON := $(filter 1 true yes,$(GPU))
# --model_version only when MODEL_VERSION is set. Otherwise the script takes the
# next free version when it publishes, so that concurrent exports take 1 and 2;
# `make inspect` and `make compat` look at the newest.
VERSION_FLAG := $(if $(MODEL_VERSION),--model_version=$(MODEL_VERSION))

# Files of the server that `make serve` started; `make stop` stops only that one.
RUN_DIR ?= .run
PID_FILE := $(RUN_DIR)/server.pid
LOG_FILE := $(RUN_DIR)/server.log
KIND_FILE := $(RUN_DIR)/server.kind
CONTAINER := serving
SERVING_DIR := serving
# MODEL_CONFIG names the container's paths (/models/...); the binary and the
# local server read this copy with MODEL_PATH in their place.
HOST_MODEL_CONFIG := $(RUN_DIR)/models.config
BATCHING_ON := $(filter 1 true yes,$(BATCHING))
MONITORING_ON := $(filter 1 true yes,$(MONITORING))
# The config files' flags, for a server that sees serving/ at $(1) and the model config at $(2).
# Labels in a config file at start need --allow_version_labels_for_unavailable_models.
CONFIG_FLAGS = $(if $(MODEL_CONFIG),--model_config_file=$(2) \
	--model_config_file_poll_wait_seconds=$(CONFIG_POLL_SECONDS) \
	--allow_version_labels_for_unavailable_models=true) \
	$(if $(BATCHING_ON),--enable_batching=true --batching_parameters_file=$(1)/batching.config) \
	$(if $(MONITORING_ON),--monitoring_config_file=$(1)/monitoring.config)
# tensorflow_model_server's flags; the local server (python -m local_server) takes the same.
SERVER_FLAGS = --port=$(GRPC_PORT) --rest_api_port=$(REST_PORT) $(if $(MODEL_CONFIG),,--model_name=$(MODEL) \
	--model_base_path=$(MODEL_PATH)/$(MODEL)) --xla_cpu_compilation_enabled=true \
	$(if $(GPU_ON),--xla_gpu_compilation_enabled=true) \
	$(call CONFIG_FLAGS,$(abspath $(SERVING_DIR)),$(abspath $(HOST_MODEL_CONFIG)))
# Docker: the walkthrough's one model; with MODEL_CONFIG, all of MODEL_PATH at
# /models and the config's folder at /model_config; serving/ at /serving. Read-only.
MOUNT_MODEL = --mount type=bind,source=$(MODEL_PATH)/$(MODEL)/,target=/models/$(MODEL)
MOUNT_MODELS = --mount type=bind,source=$(abspath $(MODEL_PATH)),target=/models,readonly \
	--mount type=bind,source=$(abspath $(dir $(MODEL_CONFIG))),target=/model_config,readonly
MOUNT_SERVING = --mount type=bind,source=$(abspath $(SERVING_DIR)),target=/serving,readonly
DOCKER_MOUNTS = $(if $(MODEL_CONFIG),$(MOUNT_MODELS),$(MOUNT_MODEL)) \
	$(if $(BATCHING_ON)$(MONITORING_ON),$(MOUNT_SERVING))
DOCKER_CONFIG_FLAGS = $(call CONFIG_FLAGS,/serving,/model_config/$(notdir $(MODEL_CONFIG)))
MODEL_CONFIG_FLAG = $(if $(MODEL_CONFIG),--model_config_file=$(MODEL_CONFIG))
SERVER_CTL = $(PY) -m tools.server_ctl --model_name=$(MODEL)
WAIT_AVAILABLE = $(SERVER_CTL) wait --rest_port=$(REST_PORT) --log=$(LOG_FILE) $(MODEL_CONFIG_FLAG)
# The files that name the server `make serve` started, for tools/server_ctl.py
# running (is one up?) and stop (stop it, and nothing else).
RUN_FILES = --pid_file=$(PID_FILE) --kind_file=$(KIND_FILE) --container=$(CONTAINER)
STOP_SERVER = $(PY) -m tools.server_ctl stop $(RUN_FILES)

.PHONY: help env setup export inspect compat serve serve-docker serve-binary serve-local serve-check \
	reload stop status request demo bench clean distclean test stress lint manifests deploy-check deploy

help: ## List the targets and the variables
	@echo "Targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-13s %s\n", $$1, $$2}'
	@echo
	@echo "Variables (make VAR=value, or export VAR=value; defaults in env.sh):"
	@$(foreach v,$(ENV_VARS),printf '  %-24s %s\n' '$(v)' '$(or $($(v)),(empty))';)
	@echo "Options: NUM_EPOCHS=3 MOCK_DATA=1 DATA_DIR=dir OVERWRITE=1 PLATFORMS=cpu,cuda (export)"
	@echo "         COMPAT_VERSIONS='2.16 2.21' (compat), VERBOSE=1 (every line, a line per batch)"
	@echo "         MODEL_CONFIG=serving/models.config BATCHING=1 MONITORING=1 (serve, reload)," \
	  "LABEL=canary (request)"
	@echo
	@echo "What a server that \`make serve\` started answers (TensorFlow Serving's API; any SERVER kind):"
	@echo "  gRPC on GRPC_PORT: PredictionService Predict, Classify, Regress, MultiInference,"
	@echo "                     GetModelMetadata; ModelService GetModelStatus, HandleReloadConfigRequest"
	@echo "  REST on REST_PORT: POST /v1/models/MODEL[/versions/N|/labels/L]:predict | :classify | :regress"
	@echo "                     GET  /v1/models/MODEL[/versions/N][/metadata]"
	@echo "                     GET  /monitoring/prometheus/metrics (MONITORING=1)"

env: ## Print the effective values of the variables
	@$(foreach v,$(ENV_VARS),echo '$(v)=$($(v))';)

# ---- Setup -------------------------------------------------------------------
setup: $(STAMP) ## Create .venv with the pinned packages, pull DOCKER_IMAGE if Docker runs
	@if $(PY) -m tools.server_ctl docker_engine; then docker pull $(DOCKER_IMAGE); else echo "No Docker engine" \
	  "answers: skipped 'docker pull $(DOCKER_IMAGE)'. make serve will use" \
	  "tensorflow_model_server or the local server."; fi

$(STAMP): requirements.txt
	@$(PYTHON3) -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null || { \
	  echo "error: '$(PYTHON3)' is missing or older than Python 3.10. Install Python 3.10-3.12" \
	       "(tested: 3.11), or pass one: make setup PYTHON3=python3.11" >&2; exit 1; }
	@$(PYTHON3) -c 'import venv, ensurepip' 2>/dev/null || { \
	  echo "error: $(PYTHON3) has no venv/ensurepip module. On Debian or Ubuntu:" \
	       "apt-get install python3-venv" >&2; exit 1; }
	$(PYTHON3) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@
	@echo "Set up $(VENV) with the packages of requirements.txt."

# ---- Export ------------------------------------------------------------------
export: $(STAMP) ## Train MODEL, export it as the next version under MODEL_PATH/MODEL (or MODEL_VERSION)
	$(PY) saved_model_main.py --model=$(MODEL) --model_path=$(MODEL_PATH) $(VERSION_FLAG) \
		--serving_batch_size=$(SERVING_BATCH_SIZE_SAVE) \
		--compile_model --noshow_model $(strip $(EXPORT_FLAGS) $(VERBOSE_FLAG)) $(QUIET)

# tools/server_ctl.py prints the directory of the newest version (or MODEL_VERSION's),
# or says why there is none.
inspect: $(STAMP) ## Show the SavedModel's signatures (newest version, or MODEL_VERSION)
	$(eval INSPECT_DIR := $(shell $(PY) -m tools.server_ctl version_dir --model_base_path=$(MODEL_PATH)/$(MODEL) \
		$(if $(MODEL_VERSION),--version=$(MODEL_VERSION)) $(QUIET)))
	@[ -n "$(INSPECT_DIR)" ]
	$(VENV)/bin/saved_model_cli show --all --dir $(INSPECT_DIR)
	@$(PY) -m tools.compat --norun --model_path=$(MODEL_PATH) --model=$(MODEL) $(VERSION_FLAG) $(QUIET)

compat: $(STAMP) ## Run MODEL's newest version with each TF Serving release's TensorFlow
	$(PY) -m tools.compat --model_path=$(MODEL_PATH) --model=$(MODEL) --venv_dir=$(COMPAT_DIR) $(strip $(VERSION_FLAG) \
		$(if $(TF_SERVING_VERSION),--tf_serving_version=$(TF_SERVING_VERSION)) \
		$(if $(strip $(COMPAT_VERSIONS)),--versions=$(subst $(space),$(comma),$(strip $(COMPAT_VERSIONS))))) \
		$(QUIET)

# ---- Serve -------------------------------------------------------------------
serve: $(STAMP) ## Serve MODEL on GRPC_PORT and REST_PORT (SERVER=auto|docker|binary|local)
	@$(PY) -m tools.server_ctl running $(RUN_FILES)
	@picked=$$($(SERVER_CTL) pick --server=$(SERVER)) && read -r kind why <<< "$$picked" && \
	  echo "Serving $(MODEL) with the $$kind server ($$why)." && $(MAKE) --no-print-directory serve-$$kind

serve-check:
	@$(SERVER_CTL) check --model_base_path=$(MODEL_PATH)/$(MODEL) --ports=$(GRPC_PORT),$(REST_PORT) \
		--serving_release='$(TF_SERVING_VERSION)' $(if $(GPU_ON),--gpu) $(MODEL_CONFIG_FLAG) $(QUIET)
	@mkdir -p $(RUN_DIR)
	@$(if $(MODEL_CONFIG),$(PY) -m tools.server_ctl config $(MODEL_CONFIG_FLAG) --exports_path=$(MODEL_PATH) \
		--out=$(HOST_MODEL_CONFIG) $(QUIET))

# The walkthrough's command, detached (-d) so that make returns; `docker logs
# -f` keeps the log in LOG_FILE, since --rm deletes it with the container.
serve-docker: serve-check
	docker run -d -p $(GRPC_PORT):8500 -p $(REST_PORT):8501 $(if $(GPU_ON),--gpus all) \
		$(strip $(DOCKER_MOUNTS)) \
		-e MODEL_NAME=$(MODEL) -t --rm --name=$(CONTAINER) $(DOCKER_IMAGE) \
		--xla_cpu_compilation_enabled=true $(strip $(if $(GPU_ON),--xla_gpu_compilation_enabled=true) \
		$(DOCKER_CONFIG_FLAGS))
	@echo docker > $(KIND_FILE)
	@nohup docker logs -f $(CONTAINER) > $(LOG_FILE) 2>&1 &
	@$(WAIT_AVAILABLE) --container=$(CONTAINER) || { $(STOP_SERVER); exit 1; }

serve-binary: serve-check
	nohup tensorflow_model_server $(strip $(SERVER_FLAGS)) > $(LOG_FILE) 2>&1 & echo $$! > $(PID_FILE)
	@echo binary > $(KIND_FILE)
	@$(WAIT_AVAILABLE) --pid=$$(cat $(PID_FILE)) || { $(STOP_SERVER); exit 1; }

serve-local: serve-check
	nohup $(PY) -m local_server $(strip $(SERVER_FLAGS)) > $(LOG_FILE) 2>&1 & echo $$! > $(PID_FILE)
	@echo local > $(KIND_FILE)
	@$(WAIT_AVAILABLE) --pid=$$(cat $(PID_FILE)) || { $(STOP_SERVER); exit 1; }

reload: $(STAMP) ## Apply an edited MODEL_CONFIG to the running server (models, versions, labels)
	@[ -n "$(MODEL_CONFIG)" ] || { echo "error: make reload needs MODEL_CONFIG=serving/models.config" \
	  "(the file the server was started with, edited)" >&2; exit 1; }
	@$(PY) -m tools.server_ctl reload $(MODEL_CONFIG_FLAG) --exports_path=$(MODEL_PATH) --out=$(HOST_MODEL_CONFIG) \
		--grpc_port=$(GRPC_PORT) $(RUN_FILES) $(QUIET)

stop: ## Stop the model server that `make serve` started
	@$(STOP_SERVER)

status: $(STAMP) ## Print the version states of MODEL on the running server
	@if [ -f $(KIND_FILE) ]; then echo "Started by make serve: the $$(cat $(KIND_FILE)) server" \
	  "(pid $$(cat $(PID_FILE) 2>/dev/null)), log in $(LOG_FILE)."; fi
	@$(SERVER_CTL) status --rest_port=$(REST_PORT)

# ---- Request -----------------------------------------------------------------
REQUEST_API = $(if $(filter rest,$(PROTOCOL)),--nouse_grpc --prediction_service_addr=localhost:$(REST_PORT),$(if \
	$(filter grpc,$(PROTOCOL)),--use_grpc --prediction_service_addr=localhost:$(GRPC_PORT),$(error \
	PROTOCOL=$(PROTOCOL): choose grpc or rest)))
request: $(STAMP) ## Send COUNT_IMAGES test images to the server (PROTOCOL=grpc|rest)
	$(PY) model_server_request.py --model_spec_name=$(MODEL) $(REQUEST_API) \
		--serving_batch_size=$(SERVING_BATCH_SIZE) --count_images=$(COUNT_IMAGES) \
		$(strip $(DATA_FLAGS) $(if $(CONCURRENCY),--concurrency=$(CONCURRENCY)) \
		$(if $(LABEL),--model_version_label=$(LABEL)) $(VERBOSE_FLAG)) $(QUIET)

demo: $(STAMP) ## export, serve, request over gRPC and REST, stop (MOCK_DATA=1: offline)
	$(MAKE) --no-print-directory export
	$(MAKE) --no-print-directory serve
	$(MAKE) --no-print-directory request PROTOCOL=grpc && \
	  $(MAKE) --no-print-directory request PROTOCOL=rest; \
	  status=$$?; $(MAKE) --no-print-directory stop; exit $$status

# ---- Clean -------------------------------------------------------------------
# Only what the export wrote, and what that left empty; never a running export's
# files (tools/server_ctl.py clean says how it tells).
clean: ## Delete the SavedModels that `make export` wrote under MODEL_PATH
	@[ -x $(PY) ] || { echo "error: make clean needs $(VENV) to tell the exports of this" \
	  "project from other files: make setup" >&2; exit 1; }
	@$(PY) -m tools.server_ctl clean --exports_path='$(if $(MODEL_PATH_EMPTY),,$(MODEL_PATH))'

distclean: ## `make clean`, and delete .venv and the virtualenvs of `make compat`
	@if [ -x $(PY) ]; then $(MAKE) --no-print-directory clean; fi
	rm -rf $(VENV) $(COMPAT_DIR)

# ---- Scale out (deploy/) -------------------------------------------------------
# Kubernetes manifests and KServe InferenceServices for the models of
# serving/models.config, on TensorFlow Serving's image for the release the
# export targets (TF_SERVING_VERSION; empty: the newest with an image).
DEPLOY_OUT ?= deploy/out
OVERLAY ?= pvc
MODELS_URI ?= gs://YOUR-BUCKET/models
DEPLOY_RELEASE = $(shell TF_SERVING_VERSION='$(TF_SERVING_VERSION)' bash -c '. ./env.sh && tf_serving_pinned_release')
DEPLOY_IMAGE = $(shell TF_SERVING_VERSION='$(DEPLOY_RELEASE)' GPU='$(GPU)' bash -c '. ./env.sh && tf_serving_image')
manifests: $(STAMP) ## Render deploy/ (Kubernetes, KServe) into DEPLOY_OUT for MODELS_URI
	$(PY) -m deploy render --out=$(DEPLOY_OUT) --image=$(DEPLOY_IMAGE) --models_uri=$(MODELS_URI) $(QUIET)

deploy-check: manifests ## Validate the rendered manifests (schemas, strict) and their policies
	$(PY) -m deploy check --out=$(DEPLOY_OUT) --tf_serving_version='$(TF_SERVING_VERSION)' $(QUIET)

deploy: deploy-check ## kubectl apply the OVERLAY (pvc|gcs) of DEPLOY_OUT to your cluster
	kubectl apply -k $(DEPLOY_OUT)/k8s/overlays/$(OVERLAY)

# ---- Benchmark ---------------------------------------------------------------
QUICK ?=
bench: $(STAMP) ## Measure each step against its bound (QUICK=1: under 2 minutes)
	$(PY) -m bench.bench $(if $(filter 1 true yes,$(QUICK)),--quick)

# ---- Checks ------------------------------------------------------------------
test: $(STAMP) ## Run the tests (offline; a few minutes)
	$(PY) -m pytest -q tests

stress: $(STAMP) ## The long stress and fuzz runs (2 min of load, 5000 hostile requests, 2000 idle sockets)
	STRESS_SECONDS=120 FUZZ_EXAMPLES=5000 HOSTILE_CONNECTIONS=2000 HOSTILE_SECONDS=30 \
		$(PY) -m pytest -q -s tests/test_stress.py \
		tests/test_reliability.py::test_fuzz_rest_with_hostile_requests

lint: $(STAMP) ## ruff check and ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
