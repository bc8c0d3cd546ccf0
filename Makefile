# Two commands on a machine with only Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
HASH := $(shell cksum < pyproject.toml | cut -d' ' -f1)
# Two installs in the same .venv: the runtime dependencies alone (make run) and with the dev
# tools (make test, lint, openapi). Each stamp is named after pyproject.toml's checksum.
RUN_STAMP := $(VENV)/.installed-run-$(HASH)
DEV_STAMP := $(VENV)/.installed-dev-$(HASH)

.PHONY: install install-run run test lint fuzz audit-deps openapi bench mutation clean

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e .
	rm -f $(VENV)/.installed-run-* && touch $(RUN_STAMP)

$(DEV_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The published DCAT-US 1.1 JSON Schemas (tests only), from GSA's own package; its
	# dependencies are pinned far in the past and not needed to read the schema files.
	$(BIN)/python -m pip install --quiet --no-deps 'ckanext-datajson==0.1.29'
	rm -f $(VENV)/.installed-* && touch $(DEV_STAMP) $(RUN_STAMP)

install: $(DEV_STAMP)

install-run: $(RUN_STAMP)

run: install-run
	$(BIN)/cityscore db upgrade
	$(BIN)/cityscore demo --if-empty
	$(BIN)/cityscore serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# pip-audit of the installed environment: a known vulnerability fails the build; an unreachable
# vulnerability service is reported loudly but passes unless PIP_AUDIT_REQUIRED=1.
# Accept a vulnerability only deliberately: PIP_AUDIT_FLAGS += --ignore-vuln ID  # why, until when
PIP_AUDIT_FLAGS ?=
audit-deps: install
	$(BIN)/python .ci/audit_deps.py $(PIP_AUDIT_FLAGS)

test: lint audit-deps
	$(BIN)/pytest

# A longer Schemathesis run than the 1,000 cases per store of `make test`.
fuzz: install
	FUZZ_CASES=$${FUZZ_CASES:-20000} $(BIN)/pytest tests/reliability/test_fuzz.py

# Mutation check of api/scoring and api/http (mutmut; settings in pyproject.toml
# [tool.mutmut]) against the fast tests that exercise them, on SQLite. Not part of `make test`.
# Resumes where it stopped; `rm -rf mutants` to start over. Score in docs/mutation.md.
MUTMUT_CHILDREN ?= 2
mutation: install
	HYPOTHESIS_PROFILE=mutation $(BIN)/mutmut run --max-children $(MUTMUT_CHILDREN)
	$(BIN)/mutmut export-cicd-stats && cat mutants/mutmut-cicd-stats.json && echo

openapi: install
	$(BIN)/python -m api.openapi > openapi/openapi.json

bench: install
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/run.py
	$(BIN)/python bench/as_known_at.py

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache .pytest_cache mutants
