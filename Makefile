# latlab: `make bench` runs the lab, `make test` runs the tests. Both install what they need first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMPS := .stamps
APT_PACKAGES := sockperf qperf tshark iproute2 ethtool util-linux nftables python3-venv python3-dev python3-apt gcc libibverbs-dev openssh-server openssh-client git \
  libxdp-dev libbpf-dev xdp-tools dpdk dpdk-dev
# Debian's own Python 3.11: the venv sees Debian's python3-pyverbs through system site packages.
SYSTEM_PYTHON := /usr/bin/python3
CONFIG ?= configs/bench.yaml
BENCH_ARGS ?=

.PHONY: sanitized test-sanitized bench-fuzz vm-kernel-refresh bench-hosts lab-check setup setup-rdma vm-kernel onload-vm bench bench-stacks bench-multicast bench-t2t bench-venues bench-local bench-replay bench-speed bench-engine bench-rdma test lint report clean-venv

setup: $(STAMPS)/venv

# Install the Debian packages of a list that are missing (one apt-get for all of them), then stamp the target.
define apt_install
	@mkdir -p $(STAMPS)
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@touch $@
endef

$(STAMPS)/apt: Makefile
	@if [ "$$(id -u)" != 0 ]; then echo "make setup installs Debian packages: run it as root"; exit 1; fi
	$(call apt_install,$(APT_PACKAGES))

$(STAMPS)/venv: $(STAMPS)/apt pyproject.toml setup.py $(wildcard */*.c */*.h)
	@test -x $(PY) || $(SYSTEM_PYTHON) -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

# RDMA: verbs and perftest, and the soft-RoCE VM (Debian's kernel package under qemu/TCG with virtme-ng).
# The pin in latlab/VM_KERNEL_VERSION while apt can fetch it, else the kernel linux-image-amd64 names (latlab/vm_kernel.py).
KERNEL_VERSION := $(shell python3 latlab/vm_kernel.py)
# The VM stage also builds Onload for the VM's kernel (when ONLOAD_SRC is given): its headers and build tools.
RDMA_PACKAGES := rdma-core ibverbs-utils perftest python3-pyverbs qemu-system-x86 busybox-static kmod \
  linux-headers-$(KERNEL_VERSION) libcap-dev libmnl-dev gawk make patch
KERNEL_DIR := .cache/kernel/$(KERNEL_VERSION)

setup-rdma: $(STAMPS)/apt-rdma setup

$(STAMPS)/apt-rdma: Makefile
	$(call apt_install,$(RDMA_PACKAGES))

# The kernel package is fetched with apt once and cached; its modules go where the VM (sharing this root) looks.
vm-kernel: $(KERNEL_DIR)/boot/vmlinuz-$(KERNEL_VERSION) /lib/modules/$(KERNEL_VERSION)/modules.dep

$(KERNEL_DIR)/boot/vmlinuz-$(KERNEL_VERSION): | $(STAMPS)/apt-rdma
	@mkdir -p $(KERNEL_DIR) .cache/deb
	cd .cache/deb && (ls linux-image-$(KERNEL_VERSION)_*.deb >/dev/null 2>&1 || apt-get download linux-image-$(KERNEL_VERSION))
	dpkg-deb -x .cache/deb/linux-image-$(KERNEL_VERSION)_*.deb $(KERNEL_DIR)
	@touch $@

/lib/modules/$(KERNEL_VERSION)/modules.dep: $(KERNEL_DIR)/boot/vmlinuz-$(KERNEL_VERSION)
	mkdir -p /lib/modules
	cp -a $(KERNEL_DIR)/lib/modules/$(KERNEL_VERSION) /lib/modules/
	depmod $(KERNEL_VERSION)

# Choose the VM's kernel again (after Debian's archive moved on): the next make resolves and fetches it.
vm-kernel-refresh:
	rm -f .cache/vm-kernel-version

bench-rdma: setup-rdma vm-kernel
	$(PY) -m latlab.cli bench --config configs/rdma.yaml $(BENCH_ARGS)

bench: setup
	$(PY) -m latlab.cli bench --config $(CONFIG) $(BENCH_ARGS)

# The stack matrix in one boot of the lab VM: kernel, busy-poll, AF_XDP, DPDK, Onload (ONLOAD_SRC=<tarball or tree>)
# and RDMA across the veth. Onload is built for the VM's kernel once and cached (LATLAB_CACHE, /var/cache/latlab).
STACKS_CONFIG ?= configs/stacks-vm.yaml
bench-stacks: setup setup-rdma vm-kernel onload-vm
	$(PY) -m latlab.cli bench --vm --config $(STACKS_CONFIG) $(BENCH_ARGS)

# One section of the config alone.
bench-multicast bench-t2t bench-venues: bench-%: setup
	$(PY) -m latlab.cli bench --config $(CONFIG) --only $(if $(filter t2t,$*),tick_to_trade,$*) $(BENCH_ARGS)

bench-local: setup
	$(PY) -m latlab.cli bench --config $(CONFIG) --local $(BENCH_ARGS)

# Ping-pong against sockperf and the tick-to-trade application cost, every case five times interleaved; the report
# lists each trial's own ratios and costs ("per trial").
bench-speed: setup
	$(PY) -m latlab.cli bench --config configs/speed.yaml --trials 5 $(BENCH_ARGS)

# latlab's compiled ping-pong loop against its pure-Python reference on loopback, five trials alternating.
bench-engine: setup
	$(PY) -m toe_bench.engine_bench $(BENCH_ARGS)

# A trading day's worth of ITCH (seed 1, 50 M order-flow messages, ~1.5 GB in .cache/itch): generated (timed),
# replayed five times (median and spread, peak RSS), the reference books beside, and a callgrind profile.
REPLAY_MESSAGES ?= 50000000
bench-replay: setup
	$(PY) -m feed_handler.replay_bench --messages $(REPLAY_MESSAGES)

# The lab across real hosts: `make bench-hosts INVENTORY=ansible/inventory/mylab.yml` (provision first with site.yml).
INVENTORY ?= ansible/inventory/example.yml
bench-hosts: setup
	cd ansible && ../$(VENV)/bin/ansible-playbook -i ../$(INVENTORY) bench.yml \
	  -e latlab_bench_run_id=$$(date -u +%Y%m%dT%H%M%SZ)-hosts

# The hostprep table for this machine (exit 2 = not ready is a report, not a failure of the target).
lab-check: setup
	@$(PY) -m latlab.cli hostprep check; rc=$$?; test $$rc -ne 1

report: setup
	$(PY) -m latlab.cli report $(RUNS)

lint: setup
	$(VENV)/bin/ruff check .

# Onload for the lab VM's kernel when ONLOAD_SRC names a source tarball or tree (built once, cached in LATLAB_CACHE).
onload-vm: setup setup-rdma
	@if [ -n "$$ONLOAD_SRC" ]; then $(PY) -m toe_bench.onload_build --src "$$ONLOAD_SRC" --kernelver $(KERNEL_VERSION); \
	else echo "onload-vm: ONLOAD_SRC not set: the stack VM's onload row will say how to get Onload"; fi

# What only the tests need: a real browser for the HTML report's test.
TEST_PACKAGES := chromium

$(STAMPS)/apt-test: Makefile
	$(call apt_install,$(TEST_PACKAGES))

test: setup setup-rdma vm-kernel onload-vm sanitized $(STAMPS)/apt-test
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)
	$(SANITIZED_ENV) $(PY) -m pytest -q -ra -p no:cacheprovider $(SANITIZED_TESTS)

# The C that parses untrusted bytes (books, MoldUDP64 validator and drain, trader path, order framing) built again
# with AddressSanitizer and UBSan into build/sanitized; the tests that feed it, the Hypothesis differential fuzzers
# among them, run against that build (`make test` runs them after the main suite).
SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
SANITIZED_DIR := build/sanitized
SANITIZED_ENV := LD_PRELOAD="$$(gcc -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 LATLAB_SANITIZED=$(SANITIZED_DIR)
SANITIZED_TESTS := tests/test_sanitized.py tests/test_feed_differential.py tests/test_moldudp64.py tests/test_book.py \
  tests/test_risk_and_trader.py tests/test_subscriber.py tests/test_itch.py tests/test_order_entry.py tests/test_engine.py \
  tests/test_generator_engines.py tests/test_router.py

sanitized: setup
	CFLAGS="$(SANITIZE) -g" LDFLAGS="$(SANITIZE)" $(PY) setup.py -q build_ext --build-lib $(SANITIZED_DIR) \
	  --build-temp $(SANITIZED_DIR)-tmp 2>&1 | grep -v -i setuptools || true
	@test -n "$$(find $(SANITIZED_DIR) -name '_book*.so')"

test-sanitized: sanitized
	$(SANITIZED_ENV) $(PY) -m pytest -q -ra -p no:cacheprovider $(SANITIZED_TESTS)

# A million mutated inputs per parser against the Python reference, on the sanitized build (a benchmark: it reports).
FUZZ_CASES ?= 1000000
bench-fuzz: sanitized
	$(SANITIZED_ENV) $(PY) -m tests.fuzz_parsers --cases $(FUZZ_CASES)

clean-venv:
	rm -rf $(VENV) $(STAMPS)
