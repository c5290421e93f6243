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

export PYTHONDONTWRITEBYTECODE := 1
# jsii warns loudly on Node 20; CDK CLI stays offline and quiet.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := 1
export CDK_HOME := $(CURDIR)/.cache/cdk
export JSII_RUNTIME_PACKAGE_CACHE_ROOT := $(CURDIR)/.cache/jsii

.PHONY: venv demo test test-slow lint types pytest synth bench bench-day bench-overhead reliability mutants schema-doc clean

## What the demo needs: the Lambda's dependencies, boto3 and moto server (no CDK, linters or type checker).
$(DEMO_STAMP): requirements-demo.txt lambdas/requirements.txt pyproject.toml lambdas/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements-demo.txt $(QUIET_PIP)
	$(INSTALL_PROJECT) $(QUIET_PIP)
	touch $(DEMO_STAMP)

## Everything: the demo's set plus the CDK app (requirements.txt) and the checks (requirements-dev.txt).
$(STAMP): $(DEMO_STAMP) requirements.txt requirements-dev.txt
	$(PIP) -r requirements-dev.txt $(QUIET_PIP)
	touch $(STAMP)

venv: $(STAMP)

## The archiver on the embedded local stack: several scheduled runs, sessions appearing between them.
demo: $(DEMO_STAMP)
	$(PY) -m local.demo

## Every check: lint, format, types, tests (unit, integration, infra, Athena contract, smoke of bench and faults).
test: venv lint types pytest

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: venv
	$(VENV)/bin/mypy -p archiver -p infra -p local -p bench -p tests
	$(VENV)/bin/mypy app.py

## Two pytest-xdist workers, one per core: ~125 s instead of ~185 s here; each worker has its own local stack.
pytest: venv
	$(PY) -m pytest -q -n 2 -m "not slow and not network"

## What `make test` leaves out: the slow tests (reliability at size, repeated kills, the memory bound) and the
## one that needs the package registry (the real pip bundling of the Lambda asset).
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
