# Two commands matter: `make demo` (the archiver on the local stack) and `make test` (every check).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp

export PYTHONPATH := $(CURDIR):$(CURDIR)/lambdas
export PYTHONDONTWRITEBYTECODE := 1
# jsii warns loudly on Node 20; CDK CLI stays offline and quiet.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := 1
export CDK_HOME := $(CURDIR)/.cache/cdk
export JSII_RUNTIME_PACKAGE_CACHE_ROOT := $(CURDIR)/.cache/jsii

.PHONY: venv demo test lint types pytest synth bench reliability schema-doc clean

$(STAMP): requirements.txt requirements-dev.txt lambdas/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt 2> >(grep -v "is ignored: it is neither" >&2)
	touch $(STAMP)

venv: $(STAMP)

## The archiver on the embedded local stack: several scheduled runs, sessions appearing between them.
demo: venv
	$(PY) -m local.demo

## Every check: lint, format, types, tests (unit, integration, infra, Athena contract, smoke of bench and faults).
test: venv lint types pytest

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: venv
	$(VENV)/bin/mypy lambdas/archiver infra local $(wildcard bench) app.py tests

pytest: venv
	$(PY) -m pytest -q -m "not slow"

## Regenerate the column table in docs/schema.md from records.SCHEMA.
schema-doc: venv
	$(PY) -m local.schema_doc

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

## Synthesize with the CDK CLI pinned in package.json (no global install, telemetry off).
synth: venv $(NODE_STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" npx --no-install cdk synth --quiet --no-notices

## Throughput benchmark against the naive script; writes docs/PERFORMANCE.md.
bench: venv
	$(PY) -m bench.run

## Fault matrix, kill tests and property tests at full size; writes docs/RELIABILITY.md.
reliability: venv
	$(PY) -m local.reliability

clean:
	rm -rf cdk.out .cache .pytest_cache .mypy_cache .ruff_cache
