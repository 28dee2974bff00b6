# The checks beside `make test`: the long stress and fuzz runs, and the linters.

.PHONY: stress lint
stress: $(STAMP) ## The long stress and fuzz runs (2 min of load, 5000 hostile requests, 2000 idle sockets)
	STRESS_SECONDS=120 FUZZ_EXAMPLES=5000 HOSTILE_CONNECTIONS=2000 HOSTILE_SECONDS=30 \
		$(PY) -m pytest -q -s tests/local_server/test_stress.py \
		tests/local_server/test_reliability.py::test_fuzz_rest_with_hostile_requests

lint: $(STAMP) ## ruff check and ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
