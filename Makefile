# OpenNMES: two commands on a fresh machine, `make demo` and `make test`.
# Each creates (or reuses) the virtual environment in .venv and installs what it needs.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.opennmes-installed

.PHONY: demo test lint typecheck pytest bench install clean lock drift

# Installs are locked: constraints.txt holds the exact versions (`make lock` refreshes it).
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,web,postgres,research]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/nmes demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP)
	@scripts/ensure-chromium.sh   # Debian's chromium for the browser tests (idempotent)
	@scripts/ensure-test-js.sh    # axe-core and PDF.js from npm for them (pinned, idempotent)
	$(PY) -m pytest -q $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(STAMP)
	$(PY) bench/run.py

lock:
	scripts/lock.sh

drift:
	scripts/drift.sh

clean:
	rm -rf $(VENV) .venv-drift build dist .pytest_cache .mypy_cache .ruff_cache
