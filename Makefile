# gstjobs: `make demo` runs the product on a local cluster, `make test` runs the whole suite.
# Both start from nothing on Debian bookworm (root or sudo) and are quick the second time.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test stop deps venv lint test-only clean-test-cluster

demo: venv
	@scripts/demo.sh

test: venv lint test-only

stop:
	@scripts/cluster.sh stop demo
	@scripts/mail-sink.sh stop

deps:
	@scripts/install-deps.sh

venv: deps $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	@touch $@

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test-only: venv
	$(PY) -m pytest

# Removes the tests' cluster (not the demo's); the next `make test` builds it again.
clean-test-cluster:
	@scripts/cluster.sh stop test
	@scripts/cluster.sh remove test
