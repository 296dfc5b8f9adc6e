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
# checkov pins an older boto3 than the stack's (pyproject.toml, "iac-scan"): it gets a virtual environment of its own.
CHECKOV_VENV := .venv-checkov
export PYTHONPATH := $(CURDIR)/layers/storefront:$(CURDIR)
export SAM_CLI_TELEMETRY := 0
export PYTHONDONTWRITEBYTECODE := 1

# uv installs the same pinned packages as pip in under half the time (no cache: 20 s instead of 45 s; docs/benchmarks.md,
# Part 15); pip puts the pinned uv into each environment first. Bytecode is compiled at install: with
# PYTHONDONTWRITEBYTECODE every process would otherwise compile the dependencies it imports again.
UV_VERSION := 0.13.9
define install_into
env -u PYTHONPATH $(1)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
env -u PYTHONPATH $(1)/bin/uv pip install --quiet --python $(1)/bin/python --compile-bytecode $(2)
endef

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON_FOR_VENV)" || { echo "Python 3.11 or newer is needed (3.13 preferred)"; exit 1; }
	@echo "Creating $(VENV) with $(PYTHON_FOR_VENV) ($$($(PYTHON_FOR_VENV) --version))"
	$(PYTHON_FOR_VENV) -m venv $(VENV)
	$(call install_into,$(VENV),-e '.[dev]')
	@touch $@

$(CHECKOV_VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON_FOR_VENV)" || { echo "Python 3.11 or newer is needed (3.13 preferred)"; exit 1; }
	@echo "Creating $(CHECKOV_VENV) for checkov, which pins an older boto3"
	$(PYTHON_FOR_VENV) -m venv $(CHECKOV_VENV)
	$(call install_into,$(CHECKOV_VENV),"$$($(PYTHON_FOR_VENV) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["iac-scan"])')")
	@touch $@

ENVIRONMENTS := $(VENV)/.installed $(CHECKOV_VENV)/.installed

# The browser tests drive Debian's chromium: scripts/install-chromium installs it where it is missing (with apt-get
# on a fresh machine, side by side with the environments; elsewhere Playwright's, which needs .venv first).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM): $(if $(shell command -v apt-get),,$(VENV)/.installed)
	scripts/install-chromium

.PHONY: help setup dev test test-fast fuzz invoke openapi lint format build deploy smoke bench capacity load clean

# Every target, one line each (tests/unit/test_makefile.py holds this list to the targets below).
help:
	@echo "make dev        run the whole storefront locally (local cloud + demo data) on http://127.0.0.1:$${PORT:-3000}"
	@echo "make test       ruff check and ruff format --check first, then every test (unit, integration, e2e, browser, fuzz, template lint, sam build) with mypy beside them"
	@echo "make test-fast  the tests without the slow ones (browser, fuzz, races, template build/lint/scan, child processes)"
	@echo "make invoke FUNCTION=CatalogFunction EVENT=events/catalog/get-product.json [DECODE_BODY=1]   Docker-free sam local invoke"
	@echo "make fuzz       the OpenAPI fuzz with random examples, longer than make test runs it"
	@echo "make openapi    write openapi.json, the API's OpenAPI document (a test keeps it current)"
	@echo "make lint       ruff (lint + format check), mypy (strict on the layer and handlers), cfn-lint, sam validate --lint, checkov"
	@echo "make format     ruff format + ruff check --fix: rewrite the code the way make lint wants it"
	@echo "make build      sam build (python3.13, arm64) [ENV=dev|prod]"
	@echo "make deploy     sam build + sam deploy: ENV=dev|prod (samconfig.toml), or --guided without ENV [REGION=...]"
	@echo "make smoke API=<url> | STACK=<name> ADMIN_USER=<email>   the smoke test of a running stack (docs/deploy.md)"
	@echo "make bench      the benchmarks in benchmarks/ (results are recorded in docs/benchmarks.md)"
	@echo "make capacity ORDERS=100 VIEWS=2000   the quotas a peak meets, the first limit, the ceiling (docs/capacity.md)"
	@echo "make load HOST=http://127.0.0.1:3000 USERS=20 RUN_TIME=60s   the Locust load test against a running stack"
	@echo "make setup      create .venv (and .venv-checkov) with the pinned dependencies (the targets that need them run it)"
	@echo "make clean      remove the virtual environments, the sam build and the test caches"
	@echo "make help       this list"

# The two environments are independent: made side by side, a fresh machine's setup takes the longer one's time.
setup:
	@$(MAKE) --no-print-directory --silent -j2 $(ENVIRONMENTS)

dev: setup
	exec $(PY) -m local_cloud serve

# The Python checks, in seconds (ruff and mypy keep caches in .ruff_cache and .mypy_cache): make lint runs all
# three before the template checks; make test runs ruff first and mypy beside the tests (below).
define ruff_checks
$(VENV)/bin/ruff check .
$(VENV)/bin/ruff format --check .
endef

# Tests run in parallel, one local cloud per worker (pytest-xdist); the ten slowest are listed at the end. Four
# workers on two cores: much of a test's time is waiting for queues, streams and workflows, which the other workers
# use (docs/benchmarks.md, "make test from a clean clone").
TEST_WORKERS ?= 4

# ruff first (a second); mypy (12 s on a clean clone) beside the tests, its findings printed when they end: either
# failing fails make test.
test:
	@$(MAKE) --no-print-directory --silent -j3 $(ENVIRONMENTS) $(CHROMIUM)
	$(ruff_checks)
	@typed=$$(mktemp); $(VENV)/bin/mypy > "$$typed" 2>&1 & mypy=$$!; \
	echo "$(PY) -m pytest -n $(TEST_WORKERS) --durations=10   (mypy beside it)"; \
	$(PY) -m pytest -n $(TEST_WORKERS) --durations=10; tests=$$?; \
	wait $$mypy; types=$$?; echo "mypy: $$(cat "$$typed")"; rm -f "$$typed"; \
	exit $$(( tests != 0 ? tests : types ))

# Everything but the tests marked slow (tests/README.md, "Slow tests"); says how long it took.
test-fast: setup
	@started=$$(date +%s); STOREFRONT_TEST_BUDGET_ENFORCED=1 $(PY) -m pytest -n $(TEST_WORKERS) -m "not slow" --durations=5; status=$$?; \
	echo "make test-fast took $$(( $$(date +%s) - started )) s; make test runs the slow tests too"; exit $$status

# The OpenAPI fuzz at random, for longer than `make test` runs it (30 fixed examples per route and mode); its tests
# spread over the workers one by one (`make test` hands out whole modules).
fuzz: setup
	STOREFRONT_FUZZ_RANDOM=1 STOREFRONT_FUZZ_EXAMPLES=$${STOREFRONT_FUZZ_EXAMPLES:-500} $(PY) -m pytest -n $(TEST_WORKERS) --dist load tests/e2e/test_fuzz_openapi.py

# Only the function's result reaches stdout (pipe it to jq); logs, the REPORT line and any setup go to stderr.
invoke:
	@test -n "$(FUNCTION)" -a -n "$(EVENT)" || { echo "usage: make invoke FUNCTION=<logical id> EVENT=<events/...json> [DECODE_BODY=1]" >&2; exit 2; }
	@$(MAKE) --no-print-directory setup >&2
	@$(PY) -m local_cloud invoke $(FUNCTION) --event $(EVENT) $(if $(DECODE_BODY),--decode-body)

# The merged OpenAPI document of every route in template.yaml; tests/integration/test_openapi_document.py compares.
openapi: setup
	$(PY) -m local_cloud openapi > openapi.json

# The Python checks first (the same as make test's), then the templates.
lint: setup
	$(ruff_checks)
	$(VENV)/bin/mypy
	$(VENV)/bin/cfn-lint template.yaml edge/web-acl.yaml
	$(VENV)/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml edge/web-acl.yaml
	$(VENV)/bin/sam validate --lint
	env -u PYTHONPATH HTTPS_PROXY=http://127.0.0.1:9 $(CHECKOV_VENV)/bin/checkov -f template.yaml -f edge/web-acl.yaml --framework cloudformation --skip-download --compact --quiet

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# sam looks for python3.13 on PATH: the .venv's, when it was made with 3.13 (docs/deploy.md, "Prerequisites").
SAM := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/sam
# ENV picks one of samconfig.toml's named environments ([dev], [prod]); only from the command line, since some
# shells export an ENV of their own (POSIX sh's startup file). REGION overrides the AWS CLI's region.
SAMCONFIG_ENVS := $(shell sed -n 's/^\[\([a-z0-9_-]*\)\]$$/\1/p' samconfig.toml)
DEPLOY_ENV := $(if $(filter command line,$(origin ENV)),$(ENV))
ifneq ($(DEPLOY_ENV),)
ifeq ($(filter $(DEPLOY_ENV),$(SAMCONFIG_ENVS)),)
$(error ENV=$(DEPLOY_ENV): samconfig.toml has the environments $(SAMCONFIG_ENVS))
endif
endif

build: setup
	$(SAM) build $(if $(DEPLOY_ENV),--config-env $(DEPLOY_ENV))

# Without ENV the first deploy is guided (it asks for the stack name, region and parameters and saves them to
# samconfig.toml's [default]); with ENV it deploys that environment as samconfig.toml describes it.
deploy: build
	$(SAM) deploy $(if $(DEPLOY_ENV),--config-env $(DEPLOY_ENV),--guided) $(if $(REGION),--region $(REGION))

smoke:
	@test -n "$(API)$(STACK)" || { echo "usage: make smoke API=<url> [TOKEN=...] | STACK=<name> [REGION=...] ADMIN_USER=<email>" >&2; exit 2; }
	@$(MAKE) --no-print-directory setup
	$(PY) -m ops.smoke $(if $(API),--api $(API)) $(if $(STACK),--stack $(STACK)) $(if $(REGION),--region $(REGION)) \
		$(if $(ADMIN_USER),--admin-user $(ADMIN_USER)) $(if $(TOKEN),--token $(TOKEN))

bench: setup
	$(PY) -m benchmarks.import_time
	$(PY) -m benchmarks.catalog_latency
	$(PY) -m benchmarks.checkout_throughput
	$(PY) -m benchmarks.order_cost
	$(PY) -m benchmarks.authorizer_latency
	$(PY) -m benchmarks.edge_gate

capacity: setup
	$(PY) -m benchmarks.capacity --orders-per-second $${ORDERS:-100} --views-per-second $${VIEWS:-2000}

load: setup
	$(PY) -m benchmarks.load --host $${HOST:-http://127.0.0.1:$${PORT:-3000}} --users $${USERS:-20} \
		--spawn-rate $${SPAWN_RATE:-5} --run-time $${RUN_TIME:-60s}

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .aws-sam .pytest_cache .hypothesis .mypy_cache .ruff_cache *.egg-info
