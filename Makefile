# nbo-stream developer entry points. Each target does its own set-up:
#   make test   - venv + locked deps, local Kafka + Redis, ruff, mypy --strict, every pytest tier
#   make demo   - the main job on the local stack (starts Kafka and Redis unless NBO_* point elsewhere)
SHELL := /bin/bash
UV_VERSION := 0.13.9
TOOLS := .cache/tools
UV := $(TOOLS)/bin/uv
VENV := .venv
NBO := $(VENV)/bin/nbo
DEMO_ARGS ?=

.PHONY: venv lint typecheck test test-unit demo evaluate bench chaos stack-up stack-down stack-status clean \
	prereqs-test prereqs-demo

# One line per missing or too old tool (Python, Java, Maven, redis-server, Go), before any set-up.
prereqs-test:
	@bash scripts/check-prereqs.sh test

prereqs-demo:
	@bash scripts/check-prereqs.sh demo

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen
	touch $@

venv: $(VENV)/.synced

lint: venv
	$(VENV)/bin/ruff check app agents tests
	$(VENV)/bin/ruff format --check app agents tests

typecheck: venv
	$(VENV)/bin/mypy

test: prereqs-test venv
	bash scripts/run-tests.sh

test-unit: venv
	$(VENV)/bin/pytest -m unit

demo: prereqs-demo venv
	$(NBO) demo $(DEMO_ARGS)

MOVIELENS ?= ../shared/datasets/ml-latest-small
evaluate: venv
	$(NBO) evaluate --movielens $(MOVIELENS) --report docs/evaluation/ml-latest-small.json --plot docs/evaluation/ml-latest-small-hit-rate.png --write-calibration docs/evaluation/ml-latest-small-calibration.json

bench: venv
	$(NBO) bench --json bench.json

chaos: venv
	$(NBO) chaos --json chaos.json

stack-up: venv
	$(NBO) stack up

stack-down: venv
	$(NBO) stack down

stack-status: venv
	$(NBO) stack status

clean: stack-down
	rm -rf $(VENV) .stack
