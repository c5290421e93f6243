# Two commands matter: `make demo` (the archiver on the local stack) and `make test` (every check).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_STAMP := $(VENV)/.demo-stamp
STAMP := $(VENV)/.dev-stamp
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
# The project and the Lambda package, editable and without dependencies (those come pinned from requirements).
INSTALL_PROJECT := $(PIP) --no-deps -e ./lambdas -e . --config-settings editable_mode=compat
# A machine-wide pip setting here warns about a local index; harmless.
QUIET_PIP := 2> >(grep -v "is ignored: it is neither" >&2)
NODE_STAMP := node_modules/.installed-stamp
# The Lambda asset's lock (`make lock`): every transitive pin with its hashes. Installed first into every venv,
# hashes checked and nothing resolved beyond it, so the tests run on the very files the asset is built from.
LOCK := lambdas/requirements.txt
INSTALL_LOCK := --require-hashes --no-deps -r $(LOCK)
# The Lambda package's tests on the runtime's Python version (infra/archiver.py RUNTIME): its own venv, from the
# interpreter infra/lambda_python.py finds (PYTHON_LAMBDA if set, else python3.X on PATH, else pyenv's newest).
LAMBDA_VENV := .venv-lambda
LAMBDA_PY := $(LAMBDA_VENV)/bin/python
LAMBDA_STAMP := $(LAMBDA_VENV)/.stamp
LAMBDA_PIP := $(LAMBDA_PY) -m pip install --quiet --disable-pip-version-check
PRINT_VERSION := import sys; print("%d.%d" % sys.version_info[:2])
# checkov pins a botocore older than the project's: its own venv, from its own hashed lock, for
# tests/infra/test_checkov.py (which runs .venv-checkov/bin/python).
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.stamp

export PYTHONDONTWRITEBYTECODE := 1
# jsii warns loudly on Node 20; CDK CLI stays offline and quiet.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := 1
export CDK_HOME := $(CURDIR)/.cache/cdk
export JSII_RUNTIME_PACKAGE_CACHE_ROOT := $(CURDIR)/.cache/jsii

.PHONY: venv demo test test-slow lint types pytest pytest-lambda lambda-python lock analyst-policy synth bench bench-day bench-overhead reliability mutants schema-doc clean

## What the demo needs: the Lambda's dependencies, boto3 and moto server (no CDK, linters or type checker).
$(DEMO_STAMP): requirements-demo.txt lambdas/requirements.in $(LOCK) pyproject.toml lambdas/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) $(INSTALL_LOCK) $(QUIET_PIP)
	$(PIP) -r requirements-demo.txt $(QUIET_PIP)
	$(INSTALL_PROJECT) $(QUIET_PIP)
	touch $(DEMO_STAMP)

## Everything: the demo's set plus the CDK app (requirements.txt) and the checks (requirements-dev.txt).
$(STAMP): $(DEMO_STAMP) requirements.txt requirements-dev.txt requirements-test.txt
	$(PIP) -r requirements-dev.txt $(QUIET_PIP)
	touch $(STAMP)

venv: $(STAMP)

## The archiver on the embedded local stack: several scheduled runs, sessions appearing between them.
demo: $(DEMO_STAMP)
	$(PY) -m local.demo

## Every check: lint, format, types, tests (unit, integration, infra, Athena contract, smoke of bench and faults).
test: venv lint types pytest pytest-lambda

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m infra.access --check

types: venv
	$(VENV)/bin/mypy -p archiver -p infra -p local -p bench -p tests
	$(VENV)/bin/mypy app.py

## Two pytest-xdist workers, one per core: ~125 s instead of ~185 s here; each worker has its own local stack.
pytest: venv $(CHECKOV_STAMP)
	$(PY) -m pytest -q -n 2 -m "not slow and not network"

$(CHECKOV_STAMP): requirements-checkov.txt
	rm -rf $(CHECKOV_VENV) && $(PYTHON) -m venv $(CHECKOV_VENV) && \
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes \
	-r requirements-checkov.txt $(QUIET_PIP)
	touch $@

## tests/unit and tests/integration again on the Lambda runtime's Python version, in .venv-lambda (the lock, moto's
## server, the test runner; no CDK: those tests never import infra/). A venv of another version is made anew.
pytest-lambda: $(STAMP)
	@version="$$($(PY) -m infra.lambda_python --version)" || exit 1; \
	if [ -x $(LAMBDA_PY) ] && [ "$$($(LAMBDA_PY) -c '$(PRINT_VERSION)')" != "$$version" ]; then rm -rf $(LAMBDA_VENV); fi
	@$(MAKE) --no-print-directory $(LAMBDA_STAMP)
	$(LAMBDA_PY) -m pytest -q -n 2 -m "not slow and not network" tests/unit tests/integration

$(LAMBDA_STAMP): $(LOCK) requirements-demo.txt lambdas/requirements.in requirements-test.txt pyproject.toml lambdas/pyproject.toml
	rm -rf $(LAMBDA_VENV)
	python="$$($(PY) -m infra.lambda_python)" && "$$python" -m venv $(LAMBDA_VENV)
	$(LAMBDA_PIP) $(INSTALL_LOCK) $(QUIET_PIP)
	$(LAMBDA_PIP) -r requirements-demo.txt -r requirements-test.txt $(QUIET_PIP)
	$(LAMBDA_PIP) --no-deps -e ./lambdas -e . --config-settings editable_mode=compat $(QUIET_PIP)
	touch $@

## The interpreter pytest-lambda and the bundler use (the runtime's version), or how to name one.
lambda-python: $(STAMP)
	@$(PY) -m infra.lambda_python

## Compile lambdas/requirements.in into the hashed lock lambdas/requirements.txt for the function's platform.
lock: $(STAMP)
	$(PY) -m infra.lock

## Render the analyst role's IAM policy, generated from the default stack, into docs/QUERY.md (`lint` checks it).
analyst-policy: venv
	$(PY) -m infra.access --write

## What `make test` leaves out: the slow tests (reliability at size, repeated kills, the memory bound) and the
## ones that need the package registry (the real pip bundling of the Lambda asset, `make lock` leaving the lock as is).
test-slow: venv
	$(PY) -m pytest -q -m "slow or network"

## Regenerate the tables of docs/schema.md (columns, DynamoDB item) from records.SCHEMA and LEDGER_ATTRIBUTES.
schema-doc: venv
	$(PY) -m local.schema_doc

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

## Synthesize with the CDK CLI pinned in package.json (no global install, telemetry off).
synth: venv $(NODE_STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" npx --no-install cdk synth --quiet --no-notices

## Throughput against the naive script, the simulated day, the reconcile overhead; writes docs/PERFORMANCE.md.
bench: venv
	$(PY) -m bench.run
	$(PY) -m bench.day
	$(PY) -m bench.overhead --write

## A simulated day, 15-minute polling against events + a 6-hour reconcile; writes docs/day.json and its PERFORMANCE.md section.
bench-day: venv
	$(PY) -m bench.day

## The reconcile run's fixed overhead: N=1,200, k=200 at the Lambda's default pacing, 5 fresh runs.
bench-overhead: venv
	$(PY) -m bench.overhead --write

## Fault matrix, kill tests and property tests at full size; writes docs/RELIABILITY.md.
reliability: venv
	$(PY) -m local.reliability

## Deliberate bugs in a copy of the archiver, each of which tests/unit must catch (not part of `make test`).
mutants: venv
	$(PY) -m tests.mutants

clean:
	rm -rf cdk.out .cache .pytest_cache .mypy_cache .ruff_cache
