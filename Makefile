# Two commands: `make run` and `make test`. Both create .venv and install into it first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONHASHSEED := 0
export OMP_NUM_THREADS ?= 2
export MKL_NUM_THREADS ?= 2

.PHONY: install run test lint bench clean chromium dashboard

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -m aitrader.backtest.kernel
	$(BIN)/python -m aitrader.backtest.portfolio_kernel
	touch $(STAMP)

run: install
	$(BIN)/python -m aitrader.demo

dashboard: install
	$(BIN)/aitrader dashboard

lint: install
	$(BIN)/ruff check aitrader tests bench scripts *.py
	$(BIN)/mypy

test: install lint chromium
	$(BIN)/python -m pytest

# Headless Chromium for the dashboard's end-to-end test; the test skips with a message if this fails.
chromium:
	@command -v chromium >/dev/null 2>&1 || ( (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) 2>/dev/null || echo "chromium could not be installed; the browser test will be skipped" )

bench: install
	$(BIN)/pip install -q -r bench/requirements.txt
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
