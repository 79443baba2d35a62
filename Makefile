# Ferry — common tasks. `make test` and `make demo` install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: help venv testbed crds lint test test-unit test-integration clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $@

venv: $(STAMP) ## create .venv and install Ferry with its test extras

testbed: venv ## build/fetch the test bed: kube-apiserver, etcd, kubectl, helm, OpenSearch, Elasticsearch
	bash hack/build-testbed-go.sh
	bash hack/fetch-kube-tools.sh
	bash hack/fetch-search-engines.sh

crds: venv ## regenerate crds/ from the models
	$(VENV)/bin/ferry crds --out crds

lint: venv ## ruff
	$(VENV)/bin/ruff check operator tests hack

test: testbed ## unit + integration tests against the real test bed
	$(PY) -m pytest tests

test-unit: venv ## unit tests only (no test bed)
	$(PY) -m pytest tests/unit

test-integration: testbed ## integration tests only
	$(PY) -m pytest tests/integration

clean: ## remove the venv and everything built
	rm -rf $(VENV) build

# -- benchmarks (scripts that print figures; never part of `make test`) ----------------------
.PHONY: bench-backfill
bench-backfill: testbed ## Backfill throughput: Ferry workers 1/2/4 vs _reindex from remote vs bulk ceiling
	cd hack && ../$(PY) -m bench.backfill --json ../build/bench/backfill.json
