# What `make help` prints after the targets, and `make env`.

define HELP_VARIABLES
@echo
@echo "Variables (make VAR=value, or export VAR=value; defaults in env.sh):"
@$(foreach v,$(ENV_VARS),printf '  %-24s %s\n' '$(v)' '$(or $($(v)),(empty))';)
@echo "TF_SERVING_VERSION: a release with an image in serving/releases.tsv (default: the newest),"
@echo "                    or nightly (JAX's newest format, the tensorflow/serving:nightly image)"
@echo "MODEL:              mnist_flax, mnist_pure_jax, or package.module:attribute, a model of"
@echo "                    models/base.py's protocol (export; the other targets take its name)"
@echo "Options: NUM_EPOCHS=3 MOCK_DATA=1 DATA_DIR=dir OVERWRITE=1 PLATFORMS=cpu,cuda (export)"
@echo "         CHECKPOINT=dir (export: the parameters of an Orbax checkpoint, no training)"
@echo "         INPUTS=file.npz (export: real inputs to check the SavedModel on)"
@echo "         WARMUP_BATCH_SIZES=1,8,16 (export: the batch sizes a server compiles before it serves)"
@echo "         JAX_CACHE_DIR=.venv/jax-cache (export, test: JAX's compilation cache; empty: none)"
@echo "         TESTS=tests/core TEST_WORKERS=3 (test: one folder; workers, default one more than cores)"
@echo "         COMPAT_VERSIONS='2.16 2.21' (compat), VERBOSE=1 (every line, a line per batch)"
@echo "         MODEL_CONFIG=serving/models.config BATCHING=1 MONITORING=1 (serve, reload)," \
  "LABEL=canary (request)"
@echo "         TLS_DIR=.run/tls (serve, request, reload: gRPC over TLS; make certs makes one)"
@echo "         IMAGES='digits/*.png' (request), CORS=1 (serve), WEB_PORT=8000 (web)," \
  "DIGITS_DIR=digits (digits)"
@echo "         MODELS_URI=gs://bucket/models OVERLAY=gcs DEPLOY_OUT=dir KUBECTL=kubectl" \
  "CHECKOV=path (manifests, deploy-check, deploy)"
@echo
@echo "What a server that \`make serve\` started answers (TensorFlow Serving's API; any SERVER kind):"
@echo "  gRPC on GRPC_PORT: PredictionService Predict, Classify, Regress, MultiInference,"
@echo "                     GetModelMetadata; ModelService GetModelStatus, HandleReloadConfigRequest"
@echo "  REST on REST_PORT: POST /v1/models/MODEL[/versions/N|/labels/L]:predict | :classify | :regress"
@echo "                     GET  /v1/models/MODEL[/versions/N][/metadata]"
@echo "                     GET  /monitoring/prometheus/metrics (MONITORING=1)"
endef

.PHONY: env
env: ## Print the effective values of the variables
	@$(foreach v,$(ENV_VARS),echo '$(v)=$($(v))';)
