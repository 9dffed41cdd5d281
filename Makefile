# Everything a fresh Debian machine with Python 3.11 needs: `make run`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

# uv makes the lock; installs need only pip, which checks every file against its hash.
UV_VERSION ?= 0.13.9

.PHONY: run test install lock services worker lint typecheck schema web-assets bench bench-quick clean

# Exactly the locked versions (hashes checked), then the project itself without its
# dependencies: an install never picks up a version the lock does not name.
$(STAMP): requirements-dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes --no-deps -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

## Resolve the dependencies of pyproject.toml again (from PyPI) into uv.lock, and export
## it with hashes: requirements.txt (the image) and requirements-dev.txt (make install).
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q uv==$(UV_VERSION)
	$(BIN)/uv lock
	$(BIN)/uv export --frozen --no-emit-project --format requirements-txt -q -o requirements.txt
	$(BIN)/uv export --frozen --no-emit-project --extra dev --format requirements-txt -q \
		-o requirements-dev.txt

## Serve the API on the embedded default (SQLite file, in-process jobs).
run: install
	$(BIN)/pim serve --host $(HOST) --port $(PORT)

## The whole suite, on PostgreSQL + Redis and on the embedded default.
test: install services
	$(BIN)/ruff check .
	$(BIN)/mypy pim models resolvers schema rest_compat jobs connectors service
	$(BIN)/pytest

services:
	bash scripts/ensure-services.sh

worker: install
	$(BIN)/pim worker

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy pim models resolvers schema rest_compat jobs connectors service

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
