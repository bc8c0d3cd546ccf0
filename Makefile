# Two commands on a machine with only Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: install run test lint fuzz openapi bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The published DCAT-US 1.1 JSON Schemas (tests only), from GSA's own package; its
	# dependencies are pinned far in the past and not needed to read the schema files.
	$(BIN)/python -m pip install --quiet --no-deps 'ckanext-datajson==0.1.29'
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

test: lint
	$(BIN)/pytest

# A longer Schemathesis run than the 1,000 cases per store of `make test`.
fuzz: install
	FUZZ_CASES=$${FUZZ_CASES:-20000} $(BIN)/pytest tests/reliability/test_fuzz.py

openapi: install
	$(BIN)/python -m api.openapi > openapi/openapi.json

bench: install
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache .pytest_cache
