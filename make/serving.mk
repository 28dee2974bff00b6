# `make serve`'s kinds of server and their checks, the model config and
# `make reload`, `make status`, `make stop`. tools/server_process.py and
# tools/model_config_files.py do the bookkeeping; the commands are here.

# The production config files (TensorFlow Serving's formats, in serving/), for
# every server kind: MODEL_CONFIG=serving/models.config serves its models
# (instead of MODEL alone), BATCHING=1 and MONITORING=1 add serving/batching.config
# and serving/monitoring.config. LABEL=canary: `make request` asks that label.
MODEL_CONFIG ?=
BATCHING ?=
MONITORING ?=
# CORS=1: REST answers carry CORS headers, so that a page of another origin (make web) may call it.
CORS ?=
CORS_FLAG = $(if $(filter 1 true yes,$(CORS)),--rest_api_enable_cors_support=true)
# How often the server re-reads MODEL_CONFIG (--model_config_file_poll_wait_seconds).
CONFIG_POLL_SECONDS ?= 10
# gRPC over TLS, for every server kind: TLS_DIR/ssl.config is TensorFlow Serving's
# --ssl_config_file (an SSLConfig holding the PEM text); `make request` reads
# TLS_DIR/ca.crt, and client.crt and client.key if there. `make certs` makes a
# throwaway set. REST stays plaintext: TensorFlow Serving has no TLS for it.
TLS_DIR ?=
SSL_CONFIG = $(abspath $(TLS_DIR))/ssl.config

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
	$(call CONFIG_FLAGS,$(abspath $(SERVING_DIR)),$(abspath $(HOST_MODEL_CONFIG))) \
	$(if $(TLS_DIR),--ssl_config_file=$(SSL_CONFIG)) $(CORS_FLAG)
# Docker: the walkthrough's one model; with MODEL_CONFIG, all of MODEL_PATH at
# /models and the config's folder at /model_config; serving/ at /serving. Read-only.
MOUNT_MODEL = --mount type=bind,source=$(MODEL_PATH)/$(MODEL)/,target=/models/$(MODEL)
MOUNT_MODELS = --mount type=bind,source=$(abspath $(MODEL_PATH)),target=/models,readonly \
	--mount type=bind,source=$(abspath $(dir $(MODEL_CONFIG))),target=/model_config,readonly
MOUNT_SERVING = --mount type=bind,source=$(abspath $(SERVING_DIR)),target=/serving,readonly
MOUNT_TLS = --mount type=bind,source=$(SSL_CONFIG),target=/tls/ssl.config,readonly
DOCKER_MOUNTS = $(if $(MODEL_CONFIG),$(MOUNT_MODELS),$(MOUNT_MODEL)) \
	$(if $(BATCHING_ON)$(MONITORING_ON),$(MOUNT_SERVING)) $(if $(TLS_DIR),$(MOUNT_TLS))
DOCKER_CONFIG_FLAGS = $(call CONFIG_FLAGS,/serving,/model_config/$(notdir $(MODEL_CONFIG))) \
	$(if $(TLS_DIR),--ssl_config_file=/tls/ssl.config)
MODEL_CONFIG_FLAG = $(if $(MODEL_CONFIG),--model_config_file=$(MODEL_CONFIG))

SERVER_PROCESS = $(PY) -m tools.server_process
# The files that name the server `make serve` started: is one up, stop it and nothing else.
RUN_FILES = --pid_file=$(PID_FILE) --kind_file=$(KIND_FILE) --container=$(CONTAINER)
WAIT_AVAILABLE = $(SERVER_PROCESS) wait --model_name=$(MODEL) --rest_port=$(REST_PORT) --log=$(LOG_FILE) \
	$(MODEL_CONFIG_FLAG)
STOP_SERVER = $(SERVER_PROCESS) stop $(RUN_FILES)

.PHONY: serve-check serve-docker serve-binary serve-local reload status stop certs

# The TLS files if asked; a version to serve, exported for this server's device and release;
# free ports.
serve-check:
	@$(if $(TLS_DIR),[ -r $(SSL_CONFIG) ] || { echo "error: TLS_DIR=$(TLS_DIR) holds no readable" \
	  "ssl.config: make certs TLS_DIR=$(TLS_DIR) makes one (for trying)" >&2; exit 1; })
	@$(SERVER_PROCESS) preflight --model_name=$(MODEL) --model_base_path=$(MODEL_PATH)/$(MODEL) \
		--ports=$(GRPC_PORT),$(REST_PORT) --tf_serving_version='$(TF_SERVING_VERSION)' \
		$(if $(GPU_ON),--gpu) $(MODEL_CONFIG_FLAG) $(QUIET)
	@mkdir -p $(RUN_DIR)
	@$(if $(MODEL_CONFIG),$(PY) -m tools.model_config_files host_copy $(MODEL_CONFIG_FLAG) \
		--exports_path=$(MODEL_PATH) --out=$(HOST_MODEL_CONFIG) $(QUIET))

# The walkthrough's command, detached (-d) so that make returns; `docker logs
# -f` keeps the log in LOG_FILE, since --rm deletes it with the container.
serve-docker: serve-check
	@$(PY) -m tools.server_process docker_engine || { echo "error: SERVER=docker, but no Docker" \
	  "engine answers ('docker info' fails). Start Docker, or leave SERVER out: make serve" \
	  "then runs tensorflow_model_server or the local server." >&2; exit 1; }
	docker run -d -p $(GRPC_PORT):8500 -p $(REST_PORT):8501 $(if $(GPU_ON),--gpus all) \
		$(strip $(DOCKER_MOUNTS)) \
		-e MODEL_NAME=$(MODEL) -t --rm --name=$(CONTAINER) $(DOCKER_IMAGE) \
		--xla_cpu_compilation_enabled=true $(strip $(if $(GPU_ON),--xla_gpu_compilation_enabled=true) \
		$(DOCKER_CONFIG_FLAGS) $(CORS_FLAG))
	@echo docker $(GRPC_PORT) $(REST_PORT) > $(KIND_FILE)
	@nohup docker logs -f $(CONTAINER) > $(LOG_FILE) 2>&1 &
	@$(WAIT_AVAILABLE) --container=$(CONTAINER) || { $(STOP_SERVER); exit 1; }

serve-binary: serve-check
	nohup tensorflow_model_server $(strip $(SERVER_FLAGS)) > $(LOG_FILE) 2>&1 & echo $$! > $(PID_FILE)
	@echo binary $(GRPC_PORT) $(REST_PORT) > $(KIND_FILE)
	@$(WAIT_AVAILABLE) --pid=$$(cat $(PID_FILE)) || { $(STOP_SERVER); exit 1; }

serve-local: serve-check
	nohup $(PY) -m local_server $(strip $(SERVER_FLAGS)) > $(LOG_FILE) 2>&1 & echo $$! > $(PID_FILE)
	@echo local $(GRPC_PORT) $(REST_PORT) > $(KIND_FILE)
	@$(WAIT_AVAILABLE) --pid=$$(cat $(PID_FILE)) || { $(STOP_SERVER); exit 1; }

reload: $(STAMP) ## Apply an edited MODEL_CONFIG to the running server (models, versions, labels)
	@[ -n "$(MODEL_CONFIG)" ] || { echo "error: make reload needs MODEL_CONFIG=serving/models.config" \
	  "(the config to apply: the one make serve was given, edited, or an edited copy)" >&2; exit 1; }
	@$(PY) -m tools.model_config_files reload $(MODEL_CONFIG_FLAG) --exports_path=$(MODEL_PATH) \
		--out=$(HOST_MODEL_CONFIG) --grpc_port=$(GRPC_PORT) --pid_file=$(PID_FILE) --kind_file=$(KIND_FILE) \
		$(TLS_FLAGS) $(QUIET)

status: $(STAMP) ## Print the version states of MODEL on the running server
	@$(SERVER_PROCESS) status --model_name=$(MODEL) --rest_port=$(REST_PORT) $(RUN_FILES) --log=$(LOG_FILE)

stop: ## Stop the model server that `make serve` started
	@$(STOP_SERVER)

certs: $(STAMP) ## Make a throwaway CA, server and client certificate in TLS_DIR (.run/tls), to try TLS
	@$(PY) -m tools.certs --out=$(or $(TLS_DIR),$(RUN_DIR)/tls) $(QUIET)
