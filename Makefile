# Two commands: `make run` serves the product, `make test` checks it. Both build .venv first;
# `make test` also installs the front end's tooling (node_modules, from package-lock.json).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
NPM    ?= npm
JS_BIN := node_modules/.bin
# What prettier formats: the browser UI's modules (and the linter's own config).
JS_FILES := static/js eslint.config.js
# The CPU build of torch. On this project's machines the wheel lies on the local disk; elsewhere
# add TORCH_INDEX=https://download.pytorch.org/whl/cpu so pip never pulls the multi-GB CUDA build.
TORCH_SPEC  ?= torch==2.13.0
TORCH_INDEX ?=
MODEL ?=
PYTEST_ARGS ?=

.PHONY: run test venv js lint-js lint format train bench bench-env browser image-test base-image clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

venv: $(BIN)/.installed

# eslint, prettier and axe-core (the browser tests' accessibility checks), pinned exactly.
node_modules/.installed: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	touch $@

js: node_modules/.installed

lint-js: js
	$(JS_BIN)/eslint .
	$(JS_BIN)/prettier --check $(JS_FILES)

run: venv
	$(BIN)/uvicorn app.main:app --host 127.0.0.1 --port 8000

# Debian's chromium for the browser tests: installed when missing and we can (root + apt).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "could not install chromium: browser tests will skip"; \
	  else echo "browser tests will skip: install Debian's chromium (apt-get install chromium)"; fi; }

test: venv browser lint-js
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv lint-js
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv js
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(JS_BIN)/eslint --fix .
	$(JS_BIN)/prettier --write $(JS_FILES)

train: venv
	@test -n "$(MODEL)" || { echo "usage: make train MODEL=<model-id>"; exit 2; }
	$(BIN)/attnviz train $(MODEL)

# The API benchmark rewrites bench/RESULTS.md (keeping the sections other writers own); the
# browser's time to first heatmap then writes its own section there.
bench: venv bench-env browser js
	$(BIN)/python bench/bench_api.py
	ATTNVIZ_BENCH_RESULTS=bench/RESULTS.md $(BIN)/python -m pytest -q tests/e2e/test_timing.py

# bertviz + transformers for the peer comparison, outside the project's dependencies.
bench-env: venv
	test -d bench/.pkgs || $(BIN)/pip install -q --no-deps --target bench/.pkgs -r bench/requirements.txt

# Build the Docker image with podman and check it for real (see deploy/README.md).
image-test:
	bash deploy/image-test.sh

base-image:
	bash deploy/make-base-image.sh

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache test-results
