# Two commands matter on a fresh machine: `make dev` (run the storefront locally) and `make test`.
# Both create .venv and install the pinned dependencies from pyproject.toml first.
.DEFAULT_GOAL := help
SHELL := /bin/bash

# The Lambda runtime is python3.13: use it where the machine has it (PATH or pyenv), else 3.12, else 3.11.
PYTHON_FOR_VENV ?= $(shell for p in python3.13 $$(ls -d $$HOME/.pyenv/versions/3.13*/bin/python3.13 2>/dev/null) \
	python3.12 $$(ls -d $$HOME/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null) python3.11 python3; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo "$$p"; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)/layers/storefront:$(CURDIR)
export SAM_CLI_TELEMETRY := 0
export PYTHONDONTWRITEBYTECODE := 1

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON_FOR_VENV)" || { echo "Python 3.11 or newer is needed (3.13 preferred)"; exit 1; }
	@echo "Creating $(VENV) with $(PYTHON_FOR_VENV) ($$($(PYTHON_FOR_VENV) --version))"
	$(PYTHON_FOR_VENV) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

.PHONY: help setup dev test test-fast invoke lint build bench clean

help:
	@echo "make dev      run the whole storefront locally (local cloud + demo data) on http://127.0.0.1:$${PORT:-3000}"
	@echo "make test     run every test (unit, integration, end-to-end, browser, template lint, fuzz, sam build)"
	@echo "make invoke FUNCTION=CatalogFunction EVENT=events/catalog/get-product.json   Docker-free sam local invoke"
	@echo "make lint     cfn-lint and sam validate --lint on template.yaml"
	@echo "make build    sam build (python3.13, arm64)"
	@echo "make bench    the benchmarks in benchmarks/ (results are recorded in docs/benchmarks.md)"

setup: $(VENV)/.installed

dev: setup
	exec $(PY) -m local_cloud serve

test: setup
	scripts/install-chromium  # the browser tests drive Debian's chromium; installed here when missing
	$(PY) -m pytest

test-fast: setup
	scripts/install-chromium
	$(PY) -m pytest -m "not slow"

invoke: setup
	@test -n "$(FUNCTION)" || { echo "usage: make invoke FUNCTION=<logical id> EVENT=<events/...json>"; exit 2; }
	$(PY) -m local_cloud invoke $(FUNCTION) $(if $(EVENT),--event $(EVENT))

lint: setup
	$(VENV)/bin/cfn-lint template.yaml
	$(VENV)/bin/sam validate --lint

build: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/sam build  # sam looks for python3.13 on PATH

bench: setup
	$(PY) -m benchmarks.import_time
	$(PY) -m benchmarks.catalog_latency
	$(PY) -m benchmarks.checkout_throughput
	$(PY) -m benchmarks.order_cost
	$(PY) -m benchmarks.authorizer_latency

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .hypothesis *.egg-info
