# Two commands: `make run` serves the product, `make test` checks it. Both build .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The CPU build of torch. On this project's machines the wheel lies on the local disk; elsewhere
# add TORCH_INDEX=https://download.pytorch.org/whl/cpu so pip never pulls the multi-GB CUDA build.
TORCH_SPEC  ?= torch==2.13.0
TORCH_INDEX ?=
MODEL ?=
PYTEST_ARGS ?=

.PHONY: run test venv lint format train bench bench-env bench-tools browser image-test base-image clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

venv: $(BIN)/.installed

run: venv
	$(BIN)/python -m app.server --host 127.0.0.1 --port 8000

# Debian's chromium for the browser tests: installed when missing and we can (root + apt).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "could not install chromium: browser tests will skip"; \
	  else echo "browser tests will skip: install Debian's chromium (apt-get install chromium)"; fi; }

test: venv browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

train: venv
	@test -n "$(MODEL)" || { echo "usage: make train MODEL=<model-id>"; exit 2; }
	$(BIN)/attnviz train $(MODEL)

bench: venv bench-env bench-tools
	$(BIN)/python bench/bench_api.py
	$(BIN)/python bench/bench_overload.py

# wrk, the load generator of the benchmarks: installed when missing and we can (root + apt).
bench-tools:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else echo "the benchmarks need wrk: apt-get install wrk"; exit 1; fi; }

# bertviz + transformers for the peer comparison, outside the project's dependencies.
bench-env: venv
	test -d bench/.pkgs || $(BIN)/pip install -q --no-deps --target bench/.pkgs -r bench/requirements.txt

# Build the Docker image with podman and check it for real (see deploy/README.md). Builds the
# venv first and, as root, installs what it needs with apt-get (podman, runc, nginx, wrk, hey,
# debootstrap for the base image).
image-test: venv
	VENV=$(CURDIR)/$(VENV) bash deploy/image-test.sh

base-image:
	bash deploy/make-base-image.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-results
