# `make compat`: runs the export with the TensorFlow of each TensorFlow Serving
# release (tools/compat.py), in a virtualenv per release under COMPAT_DIR.

# The releases to run the model with (default: all that serving/releases.tsv knows,
# 2.21 too: its TensorFlow exists, though its TensorFlow Serving does not yet).
COMPAT_VERSIONS ?=
COMPAT_DIR ?= .compat
comma := ,
space := $(subst ,, )

# The releases that must run it: TF_SERVING_VERSION and newer if you set it
# (make/env.mk), else the export's own target and newer.
.PHONY: compat
compat: $(STAMP) ## Run MODEL's newest version with each TF Serving release's TensorFlow
	$(PY) -m tools.compat --model_path=$(MODEL_PATH) --model=$(MODEL) --venv_dir=$(COMPAT_DIR) $(strip $(VERSION_FLAG) \
		$(if $(TF_SERVING_VERSION_SET),--tf_serving_version=$(TF_SERVING_VERSION_SET)) \
		$(if $(strip $(COMPAT_VERSIONS)),--versions=$(subst $(space),$(comma),$(strip $(COMPAT_VERSIONS))))) \
		$(QUIET)
