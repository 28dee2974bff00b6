# `make setup`'s check of the Python it builds .venv with, and `make distclean`.

# Python 3.11 or newer (jax, jaxlib, flax and numpy's pins need it), with the venv
# module. README.md, "Supported Pythons".
define CHECK_PYTHON3
@$(PYTHON3) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
  echo "error: '$(PYTHON3)' is missing or older than Python 3.11, which jax and flax" \
       "need. Install Python 3.11 (tested), or pass one: make setup PYTHON3=python3.11" >&2; \
  exit 1; }
@$(PYTHON3) -c 'import venv, ensurepip' 2>/dev/null || { \
  echo "error: $(PYTHON3) has no venv/ensurepip module. On Debian or Ubuntu:" \
       "apt-get install python3-venv" >&2; exit 1; }
endef

.PHONY: distclean
distclean: ## `make clean`, and delete .venv, .venv-checkov and the virtualenvs of `make compat`
	@if [ -x $(PY) ]; then $(MAKE) --no-print-directory clean; fi
	rm -rf $(VENV) $(CHECKOV_VENV) $(COMPAT_DIR)
