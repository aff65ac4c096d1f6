# latlab: `make bench` runs the lab, `make test` runs the tests. Both install what they need first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMPS := .stamps
APT_PACKAGES := sockperf qperf iproute2 ethtool util-linux nftables python3-venv python3-dev gcc
# Debian's own Python 3.11: the venv sees Debian's python3-pyverbs through system site packages.
SYSTEM_PYTHON := /usr/bin/python3
CONFIG ?= configs/bench.yaml
BENCH_ARGS ?=

.PHONY: setup bench bench-local bench-replay test lint report clean-venv

setup: $(STAMPS)/venv

$(STAMPS)/apt: Makefile
	@mkdir -p $(STAMPS)
	@if [ "$$(id -u)" != 0 ]; then echo "make setup installs Debian packages: run it as root"; exit 1; fi
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@touch $@

$(STAMPS)/venv: $(STAMPS)/apt pyproject.toml setup.py $(wildcard */*.c)
	@test -x $(PY) || $(SYSTEM_PYTHON) -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

bench: setup
	$(PY) -m latlab.cli bench --config $(CONFIG) $(BENCH_ARGS)

bench-local: setup
	$(PY) -m latlab.cli bench --config $(CONFIG) --local $(BENCH_ARGS)

# Replay benchmark: a seeded 10-million-message session (generated once, cached), compiled and reference books.
REPLAY_FILE := .cache/itch/session-seed1-10m.bin
$(REPLAY_FILE): | setup
	@mkdir -p $(dir $@)
	$(VENV)/bin/latlab gen-itch $@ --seed 1 --messages 10000000 --instruments 500 --live-orders 200000 --force

bench-replay: setup $(REPLAY_FILE)
	$(VENV)/bin/latlab replay $(REPLAY_FILE) | head -5
	$(VENV)/bin/latlab replay $(REPLAY_FILE) --engine python | head -5

report: setup
	$(PY) -m latlab.cli report $(RUNS)

lint: setup
	$(VENV)/bin/ruff check .

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV) $(STAMPS)
