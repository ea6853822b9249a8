# The verbs of the project. Everything goes through uv so a fresh clone needs only `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
UV ?= uv
export UV_LINK_MODE ?= copy

.PHONY: install test test-unit test-integration lint fmt run bench bench-smoke clean-db help

help:
	@echo "make install | test | lint | fmt | run | bench | bench-smoke"

install:
	@command -v $(UV) >/dev/null || python3 -m pip install --quiet "uv==0.13.9"
	$(UV) sync --frozen --all-packages --compile-bytecode

## The whole suite: unit + integration (real PostgreSQL, sandbox over HTTP, local broker).
## pytest exits 5 when it collects nothing; make propagates that as a failure.
test: install
	$(UV) run --frozen pytest $(PYTEST_ARGS)

test-unit: install
	$(UV) run --frozen pytest -m "not integration and not e2e" $(PYTEST_ARGS)

lint: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy libs/*/src services/*/src tools/*/src

fmt: install
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .
