# Two entry points on a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install -q --disable-pip-version-check

# Debian packages the tests need — interop peers (libcoap, openssl), SoftHSM2, pcscd with the
# vpcd virtual reader, and what pyscard and DTLSSocket (tinydtls) need to build — installed
# only when missing.
TEST_DEBS := libcoap3-bin openssl softhsm2 pcscd vsmartcard-vpcd libpcsclite-dev swig \
             autoconf automake libtool

.PHONY: demo test lint typecheck imports unit fuzz bench system-deps clean

$(VENV)/.base: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(PIP) --upgrade pip
	@$(PIP) -e .
	@touch $@

# The test environment needs the Debian packages first (pyscard builds against libpcsclite).
$(VENV)/.dev: pyproject.toml $(VENV)/.base
	@scripts/ensure-system-deps.sh $(TEST_DEBS)
	@$(PIP) -e '.[dev]'
	@touch $@

system-deps:
	@scripts/ensure-system-deps.sh $(TEST_DEBS)

demo: $(VENV)/.base
	$(BIN)/lwm2m demo

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.dev
	$(BIN)/mypy --strict src

imports: $(VENV)/.dev
	$(BIN)/lint-imports

unit: $(VENV)/.dev system-deps
	$(BIN)/python -m pytest --cov=lwm2m --cov-branch --cov-report=term:skip-covered

test: lint typecheck imports unit

fuzz: $(VENV)/.dev
	LWM2M_FUZZ_ITERATIONS=1000000 $(BIN)/python -m pytest -m fuzz -q -p no:cacheprovider

bench: $(VENV)/.dev
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage build src/*.egg-info
