# Two entry points on a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install -q --disable-pip-version-check

# Debian packages the tests need — interop peers (libcoap, openssl), SoftHSM2, pcscd with the
# vpcd virtual reader, and what pyscard, DTLSSocket (tinydtls) and Wakaama (cmake) need to
# build, redis-server for the Redis store backend and Chromium for the web UI — installed only
# when missing.
TEST_DEBS := libcoap3-bin openssl softhsm2 pcscd vsmartcard-vpcd libpcsclite-dev swig redis-server \
             chromium \
             autoconf automake libtool cmake

# The Node.js test peer (lwm2m-node-lib, an independent LwM2M implementation), pinned by its
# package-lock.json; npm comes with Debian's nodejs when the machine has no Node.js yet.
NODE_PEER := tests/e2e/node_peer

.PHONY: demo test lint typecheck imports unit fuzz bench system-deps clean

$(VENV)/.base: pyproject.toml setup.py src/lwm2m/codec/_senml_cbor_fast.c
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(PIP) --upgrade pip
	@$(PIP) -e .
	@touch $@

# The test environment needs the Debian packages first (pyscard builds against libpcsclite).
$(VENV)/.dev: pyproject.toml setup.py $(VENV)/.base
	@scripts/ensure-system-deps.sh $(TEST_DEBS)
	@$(PIP) -e '.[dev]'
	@touch $@

system-deps:
	@scripts/ensure-system-deps.sh $(TEST_DEBS)

# Eclipse Wakaama's example client and server (C, LwM2M 1.0), built from the tree an npm package
# carries (checked by SHA-256) into build/wakaama.
build/wakaama/.built: scripts/build-wakaama.sh
	@scripts/build-wakaama.sh build/wakaama

$(NODE_PEER)/node_modules/.installed: $(NODE_PEER)/package-lock.json
	@command -v npm >/dev/null || scripts/ensure-system-deps.sh nodejs npm
	@cd $(NODE_PEER) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

demo: $(VENV)/.base
	$(BIN)/lwm2m demo

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.dev
	$(BIN)/mypy --strict src

imports: $(VENV)/.dev
	$(BIN)/lint-imports

unit: $(VENV)/.dev system-deps $(NODE_PEER)/node_modules/.installed build/wakaama/.built
	$(BIN)/python -m pytest --cov=lwm2m --cov-branch --cov-report=term:skip-covered

test: lint typecheck imports unit

fuzz: $(VENV)/.dev
	LWM2M_FUZZ_ITERATIONS=1000000 $(BIN)/python -m pytest -m fuzz -q -p no:cacheprovider

# bench/coaps_cost.py counts instructions under valgrind.
bench: $(VENV)/.dev
	@scripts/ensure-system-deps.sh valgrind
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(NODE_PEER)/node_modules .pytest_cache .mypy_cache .ruff_cache .coverage build src/*.egg-info
