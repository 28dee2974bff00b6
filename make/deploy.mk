# Scaling out (deploy/): Kubernetes manifests and KServe InferenceServices for
# the models of serving/models.config, on TensorFlow Serving's image for the
# release the export targets: DEPLOY_IMAGE, which make/env.mk reads from env.sh
# (TF_SERVING_VERSION's image). A cluster pins a release: render refuses nightly.
DEPLOY_OUT ?= deploy/out
OVERLAY ?= pvc
MODELS_URI ?= gs://YOUR-BUCKET/models

.PHONY: manifests deploy-check deploy
manifests: $(STAMP) ## Render deploy/ (Kubernetes, KServe) into DEPLOY_OUT for MODELS_URI
	$(PY) -m deploy render --out=$(DEPLOY_OUT) --image=$(DEPLOY_IMAGE) --tf_serving_version='$(TF_SERVING_VERSION)' \
		--models_uri=$(MODELS_URI) $(QUIET)

deploy-check: manifests ## Validate the rendered manifests (schemas, strict) and their policies
	$(PY) -m deploy check --out=$(DEPLOY_OUT) --tf_serving_version='$(TF_SERVING_VERSION)' $(QUIET)

deploy: deploy-check ## kubectl apply the OVERLAY (pvc|gcs) of DEPLOY_OUT to your cluster
	kubectl apply -k $(DEPLOY_OUT)/k8s/overlays/$(OVERLAY)
