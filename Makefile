# Ferry — common tasks. `make test` and `make demo` install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: help venv testbed crds docs lint test test-unit test-integration clean
.PHONY: chart-lint chart-template image image-local e2e-kind

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $@

venv: $(STAMP) ## create .venv and install Ferry with its test extras

testbed: venv ## build/fetch the test bed: kube-apiserver, etcd, kubectl, helm, OpenSearch, Elasticsearch
	@for step in build-testbed-go fetch-kube-tools fetch-search-engines testbed-node image/build; do \
	    start=$$SECONDS; bash hack/$$step.sh || exit 1; echo "testbed-step: $$step $$((SECONDS - start))s"; \
	done

crds: venv ## regenerate crds/ from the models (and the Helm chart's copy)
	$(VENV)/bin/ferry crds --out crds
	rm -f charts/ferry/files/crds/*.yaml && cp crds/*.yaml charts/ferry/files/crds/

docs: venv ## regenerate the API reference docs/api/ from the models
	$(VENV)/bin/ferry docs --out docs/api

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

# -- packaging ----------------------------------------------------------------------------
HELM ?= $(if $(wildcard build/bin/helm),build/bin/helm,helm)
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE ?= ferry-operator:$(VERSION)

chart-lint: ## helm lint the chart (strict)
	$(HELM) lint --strict charts/ferry

chart-template: ## render the chart with its default values
	$(HELM) template ferry charts/ferry --namespace ferry-system

image: ## build the operator image with Docker (IMAGE=ferry-operator:<version>)
	docker build -t $(IMAGE) .

image-local: ## the image without Docker or network (buildah, Debian base): build/image/ferry-operator-<version>.tar
	bash hack/image/build.sh

e2e-kind: ## end to end on a kind cluster (needs Docker, kind, kubectl, helm; not run by `make test`)
	IMAGE=$(IMAGE) bash hack/e2e-kind.sh

# -- benchmarks (scripts that print figures; never part of `make test`) ----------------------
.PHONY: bench bench-backfill bench-operator bench-docs
bench: bench-backfill bench-operator ## every benchmark: prints tables, writes build/bench/*.json

bench-operator: testbed ## 1,000 Clusters: time to Ready, RSS, API load, status writes; snapshot tracking cost
	cd hack && ../$(PY) -m bench.operator_scale --json ../build/bench/operator.json

bench-backfill: testbed ## Backfill throughput: Ferry 1/2/4 workers vs _reindex, the read/write ceilings R, W and L; scale and index-count series
	cd hack && ../$(PY) -m bench.backfill --json ../build/bench/backfill.json

bench-docs: ## the benchmark table in docs/benchmarks.md, from docs/bench/backfill.json (copy a run's JSON there first)
	cd hack && ../$(PY) -m bench.report --json ../docs/bench/backfill.json --docs ../docs/benchmarks.md

.PHONY: compat-docs
compat-docs: ## docs/compatibility.md (and .json) from the last test run's version-matrix results
	cd hack && ../$(PY) -m compat_table --save

# -- the demo -----------------------------------------------------------------------------
.PHONY: demo demo-down
demo: testbed ## the main job on a local stack: ES 7.10 -> OpenSearch 2.19, 100k documents
	cd hack && ../$(PY) -m demo up

demo-down: ## stop the demo stack and remove build/demo
	cd hack && ../$(PY) -m demo down
