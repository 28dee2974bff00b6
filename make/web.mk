# Real images: sample digit files for `make request IMAGES=...`, and web/'s page to
# draw a digit on, which calls the REST API of a server started with `make serve CORS=1`.

# The page's own port: another origin than REST_PORT's, as a real page would be.
WEB_PORT ?= 8000
# Where `make digits` writes its PNG files.
DIGITS_DIR ?= digits

.PHONY: digits web

digits: $(STAMP) ## Write 10 MNIST test digits as PNG files into DIGITS_DIR (MOCK_DATA=1: synthetic)
	$(PY) -m tools.sample_digits --out=$(DIGITS_DIR) $(strip $(DATA_FLAGS)) $(QUIET)

web: ## Serve web/, a page to draw a digit on, on WEB_PORT (needs make serve CORS=1)
	@echo "Open http://localhost:$(WEB_PORT)/?rest=localhost:$(REST_PORT)&model=$(MODEL) (Ctrl-C stops)."
	$(PYTHON3) -m http.server --bind 127.0.0.1 --directory web $(WEB_PORT)
