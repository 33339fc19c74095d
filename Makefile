# gstjobs: `make demo` runs the product on a local cluster, `make test` runs the whole suite.
# Both start from nothing on Debian bookworm (root or sudo) and are quick the second time.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test stop bench soak deps venv lint test-only clean-test-cluster

demo: venv
	@scripts/demo.sh

test: venv lint test-only

# Each job against the bare-SQL limit and the replaced design; writes bench/results.json.
# BENCH_ARGS="--size seed --only sla-check" for a quick partial run.
bench: venv
	$(PY) bench/run.py $(BENCH_ARGS)

# Ten minutes of real pg_cron scheduling under 100 changes a second; writes bench/soak.json.
# SOAK_ARGS="--minutes 2 --rate 50" for a shorter run.
soak: venv
	$(PY) bench/soak.py $(SOAK_ARGS)

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
