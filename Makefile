# governance-assets: `make demo`, `make test`, `make ui`. Each sets up what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin

export GOVERN_HOME ?= $(CURDIR)/.govern
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
export GX_ANALYTICS_ENABLED := False
export DO_NOT_TRACK := 1
export PATH := $(BIN):$(PATH)

.PHONY: setup demo lint test snapshot ui bench clean browser

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check pip==25.3
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

setup: $(VENV)/.installed

# Debian's chromium for the real-browser UI test (never a browser download).
browser:
	@command -v chromium >/dev/null || { echo "installing Debian chromium for the UI test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "warning: could not install chromium; the browser test will be skipped"; }

demo: setup
	$(BIN)/govern demo

# Before any test: ruff's lint and format check over the repository and mypy over the core (pyproject.toml).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint browser
	$(BIN)/python -m pytest

# After reviewing a change to the code location: rewrite tests/snapshots/asset_graph.json (the test never does).
snapshot: setup
	$(BIN)/python -m tests.snapshots update

ui: setup
	$(BIN)/govern ui

bench: setup
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(GOVERN_HOME)
