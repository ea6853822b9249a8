# The verbs of the project. Everything goes through uv so a fresh clone needs only `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
UV ?= uv
export UV_LINK_MODE ?= copy

.PHONY: install test test-unit test-integration test-e2e test-ui lint fmt run bench bench-scale bench-smoke help

help:
	@echo "make install | test (= test-unit test-integration test-e2e) | test-ui | lint | fmt | run | up | down | docs | validate-deploy | bench | bench-scale | bench-smoke"

install:
	@command -v $(UV) >/dev/null || python3 -m pip install --quiet "uv==0.13.9"
	$(UV) sync --frozen --all-packages --compile-bytecode

## Test levels, run apart or together. The root conftest.py gives every test one level from what
## it really uses (its fixtures), and a unit test runs with the network raising:
##   unit         no database, no broker, no network (passes with PostgreSQL stopped)
##   integration  real PostgreSQL / database files / the sandbox over HTTP / the local broker
##   e2e          real processes (tests/e2e and tests marked e2e) + the browser tests (tests/ui)
## unit and integration run on pytest-xdist workers (each test makes its own database and picks
## free ports); e2e runs on 2 (whole stacks of processes per test, each picking free ports and its
## own database; they spend most of their time waiting on the processes they drive, so two at once
## keep the CI run under 20 minutes). pytest exits 5 when a level collects nothing; make
## propagates that as a failure.
PYTEST = $(UV) run --frozen pytest
UNIT_WORKERS ?= auto
INTEGRATION_WORKERS ?= 4
E2E_WORKERS ?= 2
XDIST = --dist worksteal -n

test: test-unit test-integration test-e2e

test-unit: install
	$(PYTEST) -m unit $(XDIST) $(UNIT_WORKERS) $(PYTEST_ARGS)

test-integration: install
	$(PYTEST) -m "integration and not e2e" $(XDIST) $(INTEGRATION_WORKERS) $(PYTEST_ARGS)

test-e2e: install
	$(PYTEST) -m e2e $(XDIST) $(E2E_WORKERS) $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-ui

## Browser tests of the web UI (tests/ui): Playwright driving Debian's Chromium against real
## processes, as their own pytest run (pytest-playwright's sync fixtures clash with
## pytest-asyncio, so tests/ui is outside the default testpaths). No Chromium = failure.
UI_PYTEST = $(PYTEST) tests/ui -p no:asyncio -W "ignore:Unknown config option:pytest.PytestConfigWarning"
test-ui: install
	$(UI_PYTEST) $(UI_PYTEST_ARGS)

## mypy covers the tests and their fakes too (relaxations for test modules: pyproject.toml);
## lint-imports checks the layering contracts ([tool.importlinter] in pyproject.toml).
MYPY_PATHS = libs/*/src services/*/src tools/*/src libs/*/tests services/*/tests tools/*/tests tests conftest.py
lint: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy $(MYPY_PATHS)
	$(UV) run --frozen lint-imports

fmt: install
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

## Benchmarks (issues 6, 13): real processes on 127.0.0.1 (PostgreSQL, local broker, sandbox in
## fast mode, workers, API). Prints figures and writes bench/results/latest.{json,md} +
## docs/bench-scaling.png; never asserts timings. bench (~15-20 min on the 2-core VM) runs every
## section but the 5,000-customer point, which is bench-scale (< 15 min; its figures are merged into
## latest.*). bench-smoke is the small CI variant (< 3 min, every section, bench/results/smoke.*).
bench: install
	$(UV) run --frozen python -m bench.run $(BENCH_ARGS)

bench-scale: install
	$(UV) run --frozen python -m bench.run --only scale $(BENCH_ARGS)

bench-smoke: install
	$(UV) run --frozen python -m bench.run --smoke $(BENCH_ARGS)

## The embedded stack in the foreground: local broker, Zuora sandbox, migrations, API, worker,
## scheduler, demo customers (tools/devstack/README.md). Ctrl-C stops every process.
run: install
	$(UV) run --frozen zuora-sync-dev

## docker-compose stack (Apache Kafka KRaft, PostgreSQL, migrations, topics, API, 3 workers,
## scheduler): deploy/README.md. Secrets in .env.compose (cp .env.compose.example .env.compose).
## The Zuora sandbox too: COMPOSE_PROFILES=sandbox make up. `make down V=1` also drops the volumes.
COMPOSE_ENV_FILE ?= .env.compose
COMPOSE = docker compose --env-file $(if $(wildcard $(COMPOSE_ENV_FILE)),$(COMPOSE_ENV_FILE),.env.compose.example)
.PHONY: up down validate-deploy

up:
	@test -f $(COMPOSE_ENV_FILE) || { echo "make up: $(COMPOSE_ENV_FILE) is missing: cp .env.compose.example $(COMPOSE_ENV_FILE) and fill in its secrets (see deploy/README.md)" >&2; exit 1; }
	@! grep -q '=replace-me' $(COMPOSE_ENV_FILE) || { echo "make up: $(COMPOSE_ENV_FILE) still has replace-me placeholders: generate real values (commands in the file)" >&2; exit 1; }
	@docker compose version >/dev/null 2>&1 || { echo "make up: needs Docker with the compose plugin ('docker compose'); without Docker use 'make run'" >&2; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "make up: no Docker engine is reachable (is the daemon running?); without Docker use 'make run'" >&2; exit 1; }
	$(COMPOSE) up -d --build
	@echo "API: http://127.0.0.1:$${API_HOST_PORT:-8000}/docs   logs: docker compose logs -f   stop: make down"

down:
	@if docker compose version >/dev/null 2>&1 && docker info >/dev/null 2>&1; then \
		set -x; $(COMPOSE) --profile sandbox down --remove-orphans $(if $(V),--volumes,); \
	else echo "make down: no Docker engine / compose plugin here; nothing to stop"; fi

## Offline validation of docker-compose.yml, deploy/Dockerfile and deploy/k8s (also run in CI).
validate-deploy:
	bash .ci/validate-deploy

## API and event documents generated from the code: docs/openapi.json (FastAPI) and
## docs/asyncapi.json (FastStream, from the sync worker's subscribers and publishers).
.PHONY: docs
docs: install
	@mkdir -p docs
	$(UV) run --frozen python -m customer_api.openapi docs/openapi.json
	$(UV) run --frozen faststream docs gen --factory sync_worker.asyncapi:docs_app --out docs/asyncapi.json
