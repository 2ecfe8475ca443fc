# Quick start: `make run` (whole system with a demo drop), `make test` (whole suite).
# `make bench` runs the benchmark suite (bench/, ~10 min; BENCH_ARGS="--smoke" for a quick check).
# All start embedded PostgreSQL and Redis under ./var/ unless DATABASE_URL / REDIS_URL are set.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
WITH_SERVICES := $(PY) -m inventory_project.devservices --

.PHONY: install run test lint bench faults clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The servers share one metrics directory, emptied first: files of a previous run's
# processes would count again (docs/operations.md). `make run DEMO_RESET=1` empties the
# database and seeds the demo afresh.
run: $(STAMP)
	rm -rf var/prometheus
	DEBUG=$${DEBUG:-1} WEBSOCKET_URL=$${WEBSOCKET_URL:-ws://127.0.0.1:8001/ws/} \
	  $(WITH_SERVICES) sh -c '$(PY) manage.py migrate --noinput -v0 \
	    && $(PY) manage.py seed_demo$(if $(DEMO_RESET), --reset) \
	    && PROMETHEUS_MULTIPROC_DIR="$(CURDIR)/var/prometheus" \
	      PATH="$(CURDIR)/$(VENV)/bin:$$PATH" exec honcho start -f Procfile'

test: $(STAMP)
	scripts/ensure-test-tools
	$(WITH_SERVICES) $(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

# The suite installs wrk (Debian package) itself when it is missing and it runs as root.
bench: $(STAMP)
	BENCH_COMMAND="make bench$(if $(BENCH_ARGS), BENCH_ARGS='$(BENCH_ARGS)')" \
	  $(WITH_SERVICES) $(PY) -m bench $(BENCH_ARGS)

# The fault suite (faults/, about 2 minutes): each fault of the README's table during a burst,
# on a PostgreSQL, Redis and production layout it starts itself. `make test` runs its
# quick part only.
faults: $(STAMP)
	$(PY) -m pytest -m faults faults $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf var test-artifacts
