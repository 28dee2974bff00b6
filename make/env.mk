# Reads env.sh, once: the walkthrough's variables (ENV_VARS), and the image that
# deploy/ pins. env.sh keeps values already set, so a value from `make
# VAR=value` or the environment is handed to it and wins, as it does when a
# person sources env.sh. One shell prints "VAR := value" lines, joined by a
# marker since $(shell) turns newlines into spaces, for make to evaluate.
_given = $(foreach v,$(ENV_VARS),$(if $(filter command line environment,$(origin $(v))),$(v)='$($(v))';))
# env.sh treats an empty value as unset; `make clean` must not, or an empty
# MODEL_PATH in the environment would clean the default one.
MODEL_PATH_EMPTY := $(if $(filter command line environment,$(origin MODEL_PATH)),$(if $(MODEL_PATH),,yes))
# TF_SERVING_VERSION as you set it, before env.sh's default: `make compat`
# checks against it, and otherwise against the release the export was made for.
TF_SERVING_VERSION_SET := $(if $(filter command line environment,$(origin TF_SERVING_VERSION)),$(strip $(TF_SERVING_VERSION)))
define newline


endef
_env_sh := $(shell $(_given) . ./env.sh && $(foreach v,$(ENV_VARS),printf '%s := %s<NL>' $(v) "$$$(v)";) \
	printf 'DEPLOY_IMAGE := %s<NL>' "$$(tf_serving_image)")
$(eval $(subst <NL>,$(newline),$(_env_sh)))
