# runner: make example (install everything, run examples/argecho.py), make test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The base image made locally from Debian's packages (no registry is needed): see images/python/build.sh.
BASE_IMAGE ?= runner-python:3.11
export RUNNER_BASE_IMAGE ?= $(BASE_IMAGE)

.PHONY: help install docker-up docker-down base-image setup example test unit integration e2e faults ui-deps ui-test check typecheck lint bench bench-kube bench-ui bench-build clean

help:
	@echo "make example      install everything (Python packages, Docker engine, base image) and run examples/argecho.py"
	@echo "make test         unit, integration (real Docker) and cluster tests, plus type and layer checks"
	@echo "make unit         unit tests only (no engine)"
	@echo "make e2e          Kubernetes target end to end (brings the local cluster up)"
	@echo "make ui-test      runner ui in headless Chromium against real local runs"
	@echo "make bench        benchmarks in bench/ (bench-kube: the Kubernetes target)"
	@echo "make docker-up / docker-down   start / stop the Docker engine runner uses"
	@echo "make cluster-up / cluster-down start / stop the local Kubernetes cluster (tests/cluster/README.md)"

$(BIN)/runner: pyproject.toml
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq -o DPkg::Lock::Timeout=600 python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,ui]' --config-settings editable_mode=compat  # a .pth, not an import hook: 7 ms less per call
	@touch $@

install: $(BIN)/runner

docker-up:
	scripts/docker-up.sh

docker-down:
	scripts/docker-down.sh

base-image: docker-up
	images/python/build.sh $(BASE_IMAGE)

setup: install base-image

example: setup
	$(BIN)/runner run --local examples/argecho.py --arg1 1

unit: install
	$(BIN)/pytest -q tests/unit

integration: setup
	$(BIN)/pytest -q tests/integration

# Headless Chromium and its driver from the OS packages, for the browser tests of `runner ui`
# (Selenium drives them; browser downloads from the internet are neither needed nor possible).
ui-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { apt-get update -qq && \
		apt-get install -y -qq -o DPkg::Lock::Timeout=600 chromium chromium-driver; }

ui-test: setup ui-deps
	$(BIN)/pytest -q tests/ui

# Kubernetes target end to end: the real local cluster, its registry, the Docker engine.
e2e: setup ui-deps cluster-up
	$(BIN)/pytest -q tests/e2e

check: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The cluster stays up afterwards for development; .ci/run stops what it started.
test: setup check ui-deps cluster-up
	RUNNER_TEST_REQUIRE=1 $(BIN)/pytest -q tests/unit tests/integration tests/ui tests/cluster tests/e2e tests/faults

# Faults injected mid-run on both targets (a private dockerd; the cluster's components restarted): tests/faults.
faults: setup cluster-up
	$(BIN)/pytest -q tests/faults

bench: setup
	$(BIN)/python bench/bench_local.py

bench-kube: setup cluster-up
	$(BIN)/python bench/bench_kube.py

bench-ui: install ui-deps
	$(BIN)/python bench/bench_ui.py

bench-build: setup
	$(BIN)/python bench/bench_build.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache

# The development Kubernetes cluster: cluster-up, cluster-down, cluster-build, cluster-status, cluster-test.
include tests/cluster/cluster.mk
