# The two commands a new user runs: `make demo` (the main job) and `make test`.
# Both install what is missing first: Debian packages, then the project into its own
# virtualenv (.venv), so the system's Python packages are never touched.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# command:Debian package, installed when the command is missing
DEMO_DEPS := redis-server:redis-server mvn:maven javac:openjdk-17-jdk-headless prometheus:prometheus
# Debian's Postgres server, for the cluster profile (pg_ctlcluster stands for it: its binaries are
# not on PATH); the Dagster UI in a browser; the seed's load client
CLUSTER_DEPS := pg_ctlcluster:postgresql
TEST_DEPS := $(DEMO_DEPS) $(CLUSTER_DEPS) chromium:chromium ab:apache2-utils

.PHONY: demo test bench fuzz install install-cluster install-test up down status clean

demo: install
	$(VENV)/bin/bazaar demo

test: install-test
	$(PY) -m pytest

bench: install-test
	$(PY) bench/run_all.py

# schemathesis against an engine of its own, longer than in `make test` and with a fresh seed
fuzz: install-test
	BAZAAR_FUZZ_EXAMPLES=3000 BAZAAR_FUZZ_SEED=random $(PY) -m pytest -s tests/engine/test_fuzz.py

# Debian packages first: the virtualenv itself needs python3-venv on a stock Debian
install:
	@$(MAKE) --no-print-directory system-deps DEPS="$(DEMO_DEPS)"
	@$(MAKE) --no-print-directory $(VENV)/.demo-installed

# what `bazaar up --profile cluster` needs beyond `make install`
install-cluster: install
	@$(MAKE) --no-print-directory system-deps DEPS="$(CLUSTER_DEPS)"

install-test:
	@$(MAKE) --no-print-directory system-deps DEPS="$(TEST_DEPS)"
	@$(MAKE) --no-print-directory $(VENV)/.test-installed

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.demo-installed: setup.py | $(PY)
	$(PY) -m pip install --quiet -e .
	@touch $@

$(VENV)/.test-installed: setup.py | $(PY)
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $@ $(VENV)/.demo-installed

system-deps:
	@missing=""; for d in $(DEPS); do command -v $${d%%:*} >/dev/null 2>&1 || missing="$$missing $${d#*:}"; done; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

up down status: install
	$(VENV)/bin/bazaar $@

clean:
	-[ -x $(VENV)/bin/bazaar ] && $(VENV)/bin/bazaar down
	rm -rf $(VENV)
