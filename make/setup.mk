# `make setup`'s check of the Python it builds .venv with, `make requirements` and
# `make distclean`.

# Python 3.11 or newer (jax, jaxlib, flax and numpy's pins need it), with the venv
# module. README.md, "Requirements".
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

# Every package pinned and hashed, so that `make setup` installs exactly the files
# tested here (pip refuses any other). The pip of `python3 -m venv` runs it; pip
# itself is pinned in the file like the rest.
.PHONY: requirements
PIP_COMPILE = CUSTOM_COMPILE_COMMAND='make requirements' $(VENV)/bin/pip-compile --quiet \
	--generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links
requirements: $(STAMP) ## Pin and hash requirements.in (and deploy/'s checkov) with every dependency into requirements.txt
	$(PIP_COMPILE) --output-file=requirements.txt requirements.in
	$(PIP_COMPILE) --output-file=deploy/checkov-requirements.txt deploy/checkov-requirements.in
