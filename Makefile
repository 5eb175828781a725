# Two entry points on a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Debian packages the tests need (interop peers and services), installed only when missing.
TEST_DEBS := libcoap3-bin

.PHONY: demo test lint typecheck imports unit fuzz bench system-deps venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

system-deps:
	@scripts/ensure-system-deps.sh $(TEST_DEBS)

demo: venv
	$(BIN)/lwm2m demo

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: venv
	$(BIN)/mypy --strict src

imports: venv
	$(BIN)/lint-imports

unit: venv system-deps
	$(BIN)/python -m pytest --cov=lwm2m --cov-branch --cov-report=term:skip-covered

test: lint typecheck imports unit

fuzz: venv
	LWM2M_FUZZ_ITERATIONS=1000000 $(BIN)/python -m pytest -m fuzz -q

bench: venv
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage build src/*.egg-info
