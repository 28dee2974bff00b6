# How the variables become the scripts' flags: each option only when it is set
# (the scripts' flags hold the defaults).

# The walkthrough's stderr goes through tools/quiet_startup.sh, which drops the
# lines TensorFlow prints at start-up on a machine without a GPU (no errors,
# though one looks like one). VERBOSE=1 shows every line, and passes --verbose.
VERBOSE_ON := $(filter 1 true yes,$(VERBOSE))
VERBOSE_FLAG := $(if $(VERBOSE_ON),--verbose)
QUIET = $(if $(VERBOSE_ON),,2> >(tools/quiet_startup.sh >&2))

DATA_FLAGS := $(if $(filter 1 true yes,$(MOCK_DATA)),--mock_data) $(if $(DATA_DIR),--data_dir=$(DATA_DIR))
EXPORT_FLAGS := $(if $(NUM_EPOCHS),--num_epochs=$(NUM_EPOCHS)) $(DATA_FLAGS) \
	$(if $(filter 1 true yes,$(OVERWRITE)),--overwrite) $(if $(PLATFORMS),--platforms=$(PLATFORMS)) \
	$(if $(CHECKPOINT),--checkpoint=$(CHECKPOINT)) $(if $(INPUTS),--inputs=$(INPUTS)) \
	$(if $(WARMUP_BATCH_SIZES),--warmup_batch_sizes=$(WARMUP_BATCH_SIZES))
# --model_version only when MODEL_VERSION is set. Otherwise the export takes the
# next free version when it publishes, so that concurrent exports take 1 and 2;
# `make inspect` and `make compat` look at the newest.
VERSION_FLAG := $(if $(MODEL_VERSION),--model_version=$(MODEL_VERSION))
GPU_ON := $(filter 1 true yes,$(GPU))

REQUEST_API = $(if $(filter rest,$(PROTOCOL)),--nouse_grpc --prediction_service_addr=localhost:$(REST_PORT),$(if \
	$(filter grpc,$(PROTOCOL)),--use_grpc --prediction_service_addr=localhost:$(GRPC_PORT),$(error \
	PROTOCOL=$(PROTOCOL): choose grpc or rest)))
REQUEST_FLAGS = $(DATA_FLAGS) $(if $(CONCURRENCY),--concurrency=$(CONCURRENCY)) \
	$(if $(LABEL),--model_version_label=$(LABEL)) $(TLS_FLAGS) \
	$(if $(IMAGES),--images='$(IMAGES)')
# gRPC over TLS (make/serving.mk, TLS_DIR): the CA, and the client's certificate if there.
TLS_FLAGS = $(if $(TLS_DIR),--ca_cert=$(TLS_DIR)/ca.crt $(if $(wildcard $(TLS_DIR)/client.crt), \
	--client_cert=$(TLS_DIR)/client.crt --client_key=$(TLS_DIR)/client.key))
