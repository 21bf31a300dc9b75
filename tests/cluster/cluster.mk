# Make targets of runner's development Kubernetes cluster (tests/cluster/).
# Included by the repository's top-level Makefile:
#     include tests/cluster/cluster.mk
# Paths are computed from this file's location, so it works from any include.
#
#   make cluster-up      install OS packages, build, start; returns when a smoke pod ran
#   make cluster-down    stop every process it started (by PID) and remove its state
#   make cluster-build   only build the binaries (cached by source hash)
#   make cluster-status  which components run, with their PIDs
#   make cluster-test    pytest tests/cluster/test_cluster.py against the running cluster
#   make cluster-clean-cache   cluster-down, then remove the build and Go build cache
#
# kubeconfig: /var/lib/runner-cluster/kubeconfig   kubectl: /var/lib/runner-cluster/bin/kubectl
# registry:   127.0.0.1:5000 (plain HTTP)            logs:    /var/lib/runner-cluster/logs/

CLUSTER_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
CLUSTER_KUBECONFIG := /var/lib/runner-cluster/kubeconfig
CLUSTER_KUBECTL := /var/lib/runner-cluster/bin/kubectl
CLUSTER_PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)

.PHONY: cluster-up cluster-down cluster-build cluster-status cluster-test cluster-clean-cache

cluster-up:
	bash $(CLUSTER_DIR)/up.sh

cluster-down:
	bash $(CLUSTER_DIR)/down.sh

cluster-build:
	bash $(CLUSTER_DIR)/build.sh > /dev/null

cluster-status:
	bash $(CLUSTER_DIR)/status.sh

cluster-test:
	$(CLUSTER_PYTHON) -m pytest -v $(CLUSTER_DIR)/test_cluster.py

cluster-clean-cache: cluster-down
	rm -rf /var/cache/runner-cluster
