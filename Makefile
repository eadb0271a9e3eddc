# The two commands a new user runs: `make demo` (the main job) and `make test`.
# Both install what is missing first: Debian packages, then the Python package.
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# command:Debian package, installed when the command is missing
SYSTEM_DEPS := redis-server:redis-server mvn:maven javac:openjdk-17-jdk-headless chromium:chromium
STAMP := .bazaar/.installed

.PHONY: demo test bench system-deps install up down status clean

demo: install
	bazaar demo

test: install
	$(PYTHON) -m pytest

bench: install
	$(PYTHON) bench/run_all.py

install: system-deps $(STAMP)

$(STAMP): setup.py
	$(PYTHON) -m pip install --quiet -e ".[test]"
	@mkdir -p $(dir $@) && touch $@

system-deps:
	@missing=""; for d in $(SYSTEM_DEPS); do command -v $${d%%:*} >/dev/null 2>&1 || missing="$$missing $${d#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

up down status: install
	bazaar $@

clean:
	-bazaar down
	rm -rf .bazaar
