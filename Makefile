# Shoal: `make demo` starts a local 3-node lab with a manager; `make test` runs every test.
VENV := .venv
PY := $(VENV)/bin/python
SHOAL := $(VENV)/bin/shoal

.PHONY: setup demo down status test unit e2e bench

setup:
	@scripts/bootstrap.sh

demo: setup
	$(SHOAL) lab down
	$(SHOAL) lab up --nodes 3 --label node1:size=small --label node3:size=xxl --registry --etcd --overlay --manager 4000

down: setup
	$(SHOAL) lab down

status: setup
	$(SHOAL) lab status

test: setup
	$(VENV)/bin/pytest -q -p no:cacheprovider tests

unit: setup
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/unit

e2e: setup
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/e2e

bench: setup
	$(PY) -m bench.scheduler
	$(PY) -m bench.proxy_overhead
	$(PY) -m bench.overlay
	$(PY) -m bench.membership
	$(PY) -m bench.membership_watch
	$(PY) -m bench.load_stream
	$(PY) -m bench.failover
	$(PY) -m bench.fuzz
