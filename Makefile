# Everything a fresh Debian machine with Python 3.11 needs: `make run`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install services worker lint typecheck schema web-assets bench bench-quick clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## Serve the API on the embedded default (SQLite file, in-process jobs).
run: install
	$(BIN)/pim serve --host $(HOST) --port $(PORT)

## The whole suite, on PostgreSQL + Redis and on the embedded default.
test: install services
	$(BIN)/ruff check .
	$(BIN)/mypy pim models resolvers schema rest_compat jobs connectors
	$(BIN)/pytest

services:
	bash scripts/ensure-services.sh

worker: install
	$(BIN)/pim worker

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy pim models resolvers schema rest_compat jobs connectors

## Regenerate the checked-in GraphQL SDL after a schema change.
schema: install
	$(BIN)/python -m schema.export > schema.graphql

## Rebuild pim/static (GraphiQL, React, Swagger UI at pinned versions) from npm; commit the result.
web-assets:
	bash scripts/build-web-assets.sh

## Benchmarks on the real stack (PostgreSQL, Redis, uvicorn with 2 workers).
bench: install services
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)
	$(BIN)/python -m bench.run --scale full

bench-quick: install services
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)
	$(BIN)/python -m bench.run --scale quick

clean:
	rm -rf $(VENV) data
