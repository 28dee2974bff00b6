# `make bench`: each step of the walkthrough measured against its bound (bench/).
QUICK ?=

.PHONY: bench
bench: $(STAMP) ## Measure each step against its bound (QUICK=1: under 2 minutes)
	$(PY) -m bench.bench $(if $(filter 1 true yes,$(QUICK)),--quick)
