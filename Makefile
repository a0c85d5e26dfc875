# badgateway.k8s — the two commands a newcomer needs are `make demo` and `make test`.
# Everything else here is what those two are made of.

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# pip's notes about this machine's extra (absent) package folders are noise, not news.
PIP_QUIET := 2>&1 | sed -u '/^WARNING: Location .* is ignored/d'
.DEFAULT_GOAL := help

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $$HOME/.pyenv)
# The newest ansible-core (2.21) needs Python >= 3.12; the oldest one we claim runs on 3.11.
PY312 ?= $(firstword $(wildcard $(PYENV_ROOT)/versions/3.12*/bin/python3.12) $(shell command -v python3.12))
PY311 ?= $(firstword $(wildcard $(PYENV_ROOT)/versions/3.11*/bin/python3.11) $(shell command -v python3.11))

VENV := $(ROOT)/.venv
VENV_MIN := $(ROOT)/.venv-min
# ansible-rulebook (Event-Driven Ansible) in a virtualenv of its own: its pins stay out of .venv.
VENV_EDA := $(ROOT)/.venv-eda
PY := $(VENV)/bin/python
COLL_LINK := $(ROOT)/build/collections/ansible_collections/badgateway/k8s
export ANSIBLE_COLLECTIONS_PATH := $(ROOT)/build/collections
export PYTHONPATH := $(ROOT)/tests/lab:$(ROOT)/build/collections
export ANSIBLE_NOCOLOR := 1
export ANSIBLE_DEPRECATION_WARNINGS := 0

# Newest: ansible-core 2.21 on Python 3.12 with kubernetes 37. Oldest claimed by
# meta/runtime.yml (requires_ansible >= 2.19): ansible-core 2.19 on Python 3.11 with kubernetes 31.
ANSIBLE_NEW := ansible-core>=2.21,<2.22
ANSIBLE_OLD := ansible-core>=2.19,<2.20
K8S_OLD := kubernetes>=31,<32

LAB_DIR ?= $(ROOT)/build/lab
SCENARIO ?= tests/lab/scenarios/stale_upstream.yml
REPORT ?=

.PHONY: help
help:
	@echo "make demo    - the seed incident on the lab: 502, diagnosis, reload, 200 (REPORT=path for the JSON result)"
	@echo "make test    - everything CI runs"
	@echo "make lab-up SCENARIO=file LAB_DIR=dir / make lab-down LAB_DIR=dir"
	@echo "make unit (fast, no root), make coverage, make accuracy, make bench (make bench-speed), make sanity, make lint"
	@echo "make lab-up TIER=real, make test-real, make realk8s-build, make realk8s-smoke, make bench-tiers - the real control plane tier (docs/lab.md)"

# ---------------------------------------------------------------- set-up
.PHONY: system-deps
system-deps:
	@missing=""; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	command -v socat >/dev/null 2>&1 || missing="$$missing socat"; \
	command -v curl >/dev/null 2>&1 || missing="$$missing curl"; \
	command -v nsenter >/dev/null 2>&1 || missing="$$missing util-linux"; \
	command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || missing="$$missing iproute2"; \
	command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || missing="$$missing nftables"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v shellcheck >/dev/null 2>&1 || missing="$$missing shellcheck"; \
	command -v kubectl >/dev/null 2>&1 || missing="$$missing kubernetes-client"; \
	java_major=$$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p'); \
	[ -n "$$java_major" ] && [ "$${java_major%%.*}" -ge 17 ] 2>/dev/null || missing="$$missing openjdk-17-jre-headless"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing system packages:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "ERROR: need root to apt-get install$$missing (the lab needs them)"; exit 1; fi; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	fi; \
	minor=$$(kubectl version --client -o json 2>/dev/null | sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p' | head -n 1); \
	if [ -n "$$minor" ] && [ "$$minor" -lt 30 ]; then \
	  echo "NOTE: kubectl 1.$$minor: enough for 'make demo'; the lab tests' 'kubectl exec' needs 1.30 or newer (WebSocket exec)"; \
	fi

$(COLL_LINK):
	@mkdir -p $(dir $(COLL_LINK))
	@ln -sfn ../../../.. $(COLL_LINK)

$(VENV)/.stamp: requirements.txt requirements-dev.txt requirements-lint.txt requirements-awx.txt
	@test -n "$(PY312)" || { echo "ERROR: Python 3.12 not found (set PY312=/path/to/python3.12)"; exit 1; }
	@echo "Creating $(VENV) (Python 3.12, $(ANSIBLE_NEW))"
	@$(PY312) -m venv $(VENV)
	@$(VENV)/bin/pip install -q --disable-pip-version-check '$(ANSIBLE_NEW)' -r requirements-dev.txt -r requirements-lint.txt -r requirements-awx.txt $(PIP_QUIET)
	@touch $@

$(VENV_MIN)/.stamp: requirements.txt requirements-dev.txt requirements-awx.txt
	@test -n "$(PY311)" || { echo "ERROR: Python 3.11 not found (set PY311=/path/to/python3.11)"; exit 1; }
	@echo "Creating $(VENV_MIN) (Python 3.11, $(ANSIBLE_OLD), $(K8S_OLD))"
	@$(PY311) -m venv $(VENV_MIN)
	@$(VENV_MIN)/bin/pip install -q --disable-pip-version-check '$(ANSIBLE_OLD)' '$(K8S_OLD)' -r requirements-dev.txt -r requirements-awx.txt $(PIP_QUIET)
	@touch $@

$(VENV_EDA)/.stamp: requirements-eda.txt requirements.txt
	@test -n "$(PY312)" || { echo "ERROR: Python 3.12 not found (set PY312=/path/to/python3.12)"; exit 1; }
	@echo "Creating $(VENV_EDA) (Python 3.12, ansible-rulebook, $(ANSIBLE_NEW))"
	@$(PY312) -m venv $(VENV_EDA)
	@$(VENV_EDA)/bin/pip install -q --disable-pip-version-check '$(ANSIBLE_NEW)' -r requirements-eda.txt $(PIP_QUIET)
	@touch $@

.PHONY: venv venv-min venv-eda setup
venv: $(VENV)/.stamp $(COLL_LINK)
venv-min: $(VENV_MIN)/.stamp $(COLL_LINK)
venv-eda: $(VENV_EDA)/.stamp $(COLL_LINK)
setup: system-deps venv

# ---------------------------------------------------------------- the lab
.PHONY: lab-up lab-down
# TIER=emulated (default): this repository's API server; TIER=real: kube-apiserver, etcd and
# kube-controller-manager built from source (make realk8s-build; docs/lab.md "The two tiers").
TIER ?= emulated
lab-up: setup $(if $(filter real,$(TIER)),realk8s-build)
	@$(PY) -m badlab up --scenario $(SCENARIO) --dir $(LAB_DIR) --tier $(TIER)

lab-down:
	@$(PY) -m badlab down --dir $(LAB_DIR)

# ---------------------------------------------------------------- the demo
.PHONY: demo
demo: setup
	@bash tests/lab/demo.sh $(if $(REPORT),$(abspath $(REPORT)))

# ---------------------------------------------------------------- tests
# The pure core (plugins/module_utils) must stay covered by the fast unit tests alone.
CORE_COVERAGE := 90
UNIT_ARGS := tests/unit -m "not tools and not slow"

.PHONY: test test-new test-old test-real sanity lint unit coverage
test: setup venv-min venv-eda realk8s-build
	@$(MAKE) --no-print-directory coverage
	@$(MAKE) --no-print-directory test-new
	@$(MAKE) --no-print-directory test-real
	@$(MAKE) --no-print-directory test-old
	@$(MAKE) --no-print-directory sanity
	@$(MAKE) --no-print-directory lint

# No root, no nginx, no browser, no lab: the unit tests that need only Python (under a minute).
unit: venv
	@$(PY) -m pytest -q -p no:cacheprovider $(UNIT_ARGS)

coverage: venv
	@echo "== line coverage of plugins/module_utils by the unit tests (at least $(CORE_COVERAGE) %)"
	@$(PY) -m pytest -q -p no:cacheprovider $(UNIT_ARGS) \
	  --cov=ansible_collections.badgateway.k8s.plugins.module_utils --cov-report=term:skip-covered \
	  --cov-fail-under=$(CORE_COVERAGE)

# tests/lab/test_tiers.py runs the curated scenarios on both tiers: it needs the real tier built.
test-new: setup venv-eda realk8s-build
	@echo "== pytest on ansible-core $$($(PY) -c 'import ansible; print(ansible.__version__)'), Python 3.12"
	@$(PY) -m pytest -q -p no:cacheprovider

# test_eda.py runs ansible-rulebook from .venv-eda whatever Python runs pytest: test-new ran it.
test-old: setup venv-min
	@echo "== pytest on ansible-core $$($(VENV_MIN)/bin/python -c 'import ansible; print(ansible.__version__)'), Python 3.11, kubernetes $$($(VENV_MIN)/bin/python -c 'import kubernetes; print(kubernetes.__version__)')"
	@PATH=$(VENV_MIN)/bin:$$PATH $(VENV_MIN)/bin/python -m pytest -q -p no:cacheprovider tests/unit tests/integration tests/faults \
	  --ignore=tests/integration/test_eda.py

# The real tier (docs/lab.md, "The two tiers"): the stand-in's Go tests, the control plane's smoke
# run, and the integration tests of the modules and the role on labs whose API is kube-apiserver.
REAL_TIER_TESTS := tests/lab/realk8s/smoke.py tests/integration/test_modules.py tests/integration/test_role.py \
  tests/integration/test_module_defaults.py tests/integration/test_drift_check.py
test-real: setup realk8s-build
	@echo "== the real tier: kube-apiserver $$(cat tests/lab/realk8s/VERSION), etcd, kube-controller-manager, the kubelet stand-in"
	@$(REALK8S_GO) vet ./...
	@$(REALK8S_GO) test -count=1 ./...
	@BADLAB_TIER=real $(PY) -m pytest -q -p no:cacheprovider $(REAL_TIER_TESTS)

sanity: setup
	@bash tests/sanity/run.sh $(VENV)

lint: setup
	@bash tests/sanity/lint.sh $(VENV)

# ---------------------------------------------------------------- numbers
.PHONY: bench bench-speed accuracy
# bench/speed.py runs the fleet of bench/fleet.py itself (side by side with the other figures).
bench: setup venv-eda realk8s-build
	@for b in bench/*.py; do \
	  case $$b in bench/fleet.py) continue ;; esac; \
	  echo "== $$b"; $(PY) $$b || exit 1; \
	done

# The diagnosis' speed in one run: role, kubectl, Ansible's floor, replicas, unrelated pods,
# the fleet, and the ratios of issue 13 (BENCH_RUNS=5, BENCH_FLEET=0 to leave the fleet out).
bench-speed: setup
	@$(PY) bench/speed.py

# The two tiers side by side (issue 11): the build, the control plane's warm start, lab-up and the
# curated scenarios' diagnosis on each tier. BENCH_TIERS_ARGS=--cold times a build from nothing.
.PHONY: bench-tiers
bench-tiers: setup realk8s-build
	@$(PY) bench/tiers.py $(BENCH_TIERS_ARGS)

accuracy: setup
	@$(PY) tests/lab/accuracy.py

# Generated cases that no rule was written for, scored with the reload oracle (docs/lab.md):
# make accuracy-generated [N=200] [SEED=1] [JOBS=2] [KEEP=dir for the failing cases]
.PHONY: accuracy-generated
accuracy-generated: N ?= 200
accuracy-generated: SEED ?= 1
accuracy-generated: JOBS ?= 2
accuracy-generated: setup
	@$(PY) tests/lab/accuracy_generated.py -n $(N) --seed $(SEED) -j $(JOBS) $(if $(KEEP),--keep $(KEEP))

# ---------------------------------------------------------------- the real control plane tier (docs/lab.md, "The two tiers")
# etcd, kube-apiserver and kube-controller-manager built from the Go module proxy at the version in
# tests/lab/realk8s/VERSION, into a cache folder outside the repository (never committed); the
# first build costs about 10 CPU-minutes (docs/lab.md, "The two tiers"); make test runs it first.
REALK8S_CACHE ?= $(HOME)/.cache/badgateway-k8s/realk8s
export REALK8S_CACHE

.PHONY: realk8s-gomod realk8s-build realk8s-smoke
# Regenerate tests/lab/realk8s/go.mod (and go.sum) after editing VERSION.
realk8s-gomod:
	@cd tests/lab/realk8s && GOMODCACHE=$(REALK8S_CACHE)/gomod ./gen-gomod.sh && GOMODCACHE=$(REALK8S_CACHE)/gomod go mod tidy

realk8s-build:
	@bash tests/lab/realk8s/build.sh

# Boots etcd, kube-apiserver and kube-controller-manager on free loopback ports in a temporary
# folder and checks the real EndpointSlice controller against a Node and Pods written as a kubelet would.
# Also vets and tests the module's Go code (the kubelet stand-in; its exec test needs root and nsenter).
REALK8S_GO := cd tests/lab/realk8s && GOMODCACHE=$(REALK8S_CACHE)/gomod GOCACHE=$(REALK8S_CACHE)/gobuild GOFLAGS=-mod=readonly go
realk8s-smoke: realk8s-build venv
	@$(REALK8S_GO) vet ./...
	@$(REALK8S_GO) test -count=1 ./...
	@$(PY) -m pytest -q -p no:cacheprovider tests/lab/realk8s/smoke.py

.PHONY: clean
clean:
	rm -rf build tests/output .pytest_cache
