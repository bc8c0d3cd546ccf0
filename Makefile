# Two commands on a machine with only Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: install run test lint audit-deps openapi bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

run: install
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

openapi: install
	$(BIN)/python -m api.openapi > openapi/openapi.json

bench: install
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache .pytest_cache
