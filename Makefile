# The jax2tf -> SavedModel -> TensorFlow Serving walkthrough, one target a step.
# `make help` lists the targets and variables; README.md walks through them.

SHELL := /bin/bash
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

# ---- Variables ---------------------------------------------------------------
# The walkthrough's variables. Their defaults are written once, in env.sh; a
# value from `make VAR=value` or the environment wins, as it does when a person
# sources env.sh. env.sh keeps values already set, so we hand it ours.
ENV_VARS := MODEL_PATH MODEL SERVING_BATCH_SIZE_SAVE SERVING_BATCH_SIZE MODEL_VERSION \
	COUNT_IMAGES DOCKER_IMAGE GRPC_PORT REST_PORT
_given = $(foreach v,$(ENV_VARS),$(if $(filter command line environment,$(origin $(v))),$(v)='$($(v))';))
# MODEL_VERSION as the user gave it; empty when env.sh picks the next free one.
MODEL_VERSION_GIVEN := $(if $(filter command line,$(origin MODEL_VERSION)),$(MODEL_VERSION),$(if \
	$(filter environment,$(origin MODEL_VERSION)),$(filter-out $(ENV_SH_MODEL_VERSION),$(MODEL_VERSION))))
$(foreach v,$(ENV_VARS),$(eval $(v) := $(shell $(_given) . ./env.sh && printf '%s' "$$$(v)")))

# Options of the scripts, passed on only when set (the scripts' flags have the defaults).
NUM_EPOCHS ?=
MOCK_DATA ?=
DATA_DIR ?=
OVERWRITE ?=
PLATFORMS ?=

PYTHON3 ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements.stamp

DATA_FLAGS := $(if $(filter 1 true yes,$(MOCK_DATA)),--mock_data) $(if $(DATA_DIR),--data_dir=$(DATA_DIR))
EXPORT_FLAGS := $(if $(NUM_EPOCHS),--num_epochs=$(NUM_EPOCHS)) $(DATA_FLAGS) \
	$(if $(filter 1 true yes,$(OVERWRITE)),--overwrite) $(if $(PLATFORMS),--platforms=$(PLATFORMS))

.PHONY: help env setup export inspect clean distclean test lint

help: ## List the targets and the variables
	@echo "Targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-10s %s\n", $$1, $$2}'
	@echo
	@echo "Variables (make VAR=value, or export VAR=value; defaults in env.sh):"
	@$(foreach v,$(ENV_VARS),printf '  %-24s %s\n' '$(v)' '$($(v))';)
	@echo "Options: NUM_EPOCHS=3 MOCK_DATA=1 DATA_DIR=dir OVERWRITE=1 PLATFORMS=cpu,cuda (export)"

env: ## Print the effective values of the variables
	@$(foreach v,$(ENV_VARS),echo '$(v)=$($(v))';)

# ---- Setup -------------------------------------------------------------------
setup: $(STAMP) ## Create .venv with the pinned packages (quick when nothing changed)

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
export: $(STAMP) ## Train MODEL and export it to MODEL_PATH/MODEL/MODEL_VERSION
	$(PY) saved_model_main.py --model=$(MODEL) --model_path=$(MODEL_PATH) \
		--model_version=$(MODEL_VERSION) --serving_batch_size=$(SERVING_BATCH_SIZE_SAVE) \
		--compile_model --noshow_model $(strip $(EXPORT_FLAGS))

# The newest version, unless MODEL_VERSION was given.
INSPECT_VERSION = $(or $(MODEL_VERSION_GIVEN),$(shell MODEL_PATH='$(MODEL_PATH)'; MODEL='$(MODEL)'; \
	. ./env.sh && latest_model_version))
inspect: $(STAMP) ## Show the SavedModel's signatures (newest version, or MODEL_VERSION)
	@[ -d "$(MODEL_PATH)/$(MODEL)/$(INSPECT_VERSION)" ] || { echo "error: no SavedModel at" \
	  "$(MODEL_PATH)/$(MODEL)/$(INSPECT_VERSION). Run 'make export' first, or set MODEL_VERSION." >&2; exit 1; }
	$(VENV)/bin/saved_model_cli show --all --dir $(MODEL_PATH)/$(MODEL)/$(INSPECT_VERSION)

# ---- Clean -------------------------------------------------------------------
# Only what the export wrote: versions that carry assets.extra/export_info.json,
# and staging directories left by a killed export; then directories left empty.
clean: ## Delete the SavedModels that `make export` wrote under MODEL_PATH
	@path=$$(realpath -m -- "$(MODEL_PATH)"); \
	case "$$path" in ""|/|"$$(realpath -m ~)") echo "error: refusing to clean MODEL_PATH='$(MODEL_PATH)'" >&2; exit 1;; esac; \
	[ -d "$$path" ] || { echo "Nothing to clean: $$path does not exist."; exit 0; }; \
	for marker in "$$path"/*/*/assets.extra/export_info.json; do \
	  [ -f "$$marker" ] || continue; version=$${marker%/assets.extra/export_info.json}; \
	  echo "rm -r $$version"; rm -r -- "$$version"; done; \
	for staging in "$$path"/*/.staging-*; do [ -d "$$staging" ] && echo "rm -r $$staging" && rm -r -- "$$staging"; done; \
	for dir in "$$path"/*/ "$$path"; do rmdir -- "$$dir" 2>/dev/null && echo "rmdir $$dir"; done; true

distclean: clean ## `make clean`, and delete .venv
	rm -rf $(VENV)

# ---- Checks ------------------------------------------------------------------
test: $(STAMP) ## Run the tests (offline; a few minutes)
	$(PY) -m pytest -q tests

lint: $(STAMP) ## ruff check and ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
