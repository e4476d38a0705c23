# Entry points: make run · make demo · make test · make serve · make lint · make bench · make audit · make lock
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2
DEMO_PROVIDER_PORT ?= 9100
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/llmproxy
UV_VERSION ?= 0.13.9
export LITELLM_LOCAL_MODEL_COST_MAP := True
export LITELLM_OFFLINE_MODE := true

.PHONY: install dev-install run demo serve migrate static test test-sqlite test-postgres lint bench audit lock clean \
	test-deps ops-deps browser-deps

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
dev-install: $(VENV)/.dev-installed

migrate: install
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(PY) manage.py migrate --noinput

static: install
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(PY) manage.py collectstatic --noinput --verbosity 0

## run: set up on a fresh clone (venv, pinned deps, SQLite migrations, admin static files) and serve on :8000
run: migrate static
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(VENV)/bin/uvicorn llmproxy_site.asgi:application --host $(HOST) --port $(PORT)

## demo: the fake provider beside the gateway, a seeded demo model and a ready key
demo: migrate static
	DJANGO_DEBUG=1 DEMO_PROVIDER_PORT=$(DEMO_PROVIDER_PORT) HOST=$(HOST) PORT=$(PORT) VENV=$(VENV) sh scripts/demo.sh

# Where the workers of `make serve` keep their metrics (prometheus_client's multiprocess mode; /metrics sums them):
# one directory per port, emptied of the last run's files before the workers start.
PROMETHEUS_MULTIPROC_DIR ?= $(CURDIR)/.metrics/$(PORT)

## serve: production-style, several workers, DEBUG off (needs DJANGO_SECRET_KEY), /metrics summed over the workers
serve: migrate static
	mkdir -p "$(PROMETHEUS_MULTIPROC_DIR)" && find "$(PROMETHEUS_MULTIPROC_DIR)" -maxdepth 1 -name '*.db' -delete
	PROMETHEUS_MULTIPROC_DIR="$(PROMETHEUS_MULTIPROC_DIR)" DJANGO_DEBUG=0 \
		$(VENV)/bin/uvicorn llmproxy_site.asgi:application --host $(HOST) --port $(PORT) \
		--workers $(WORKERS) --loop uvloop --http httptools --no-access-log

## bench: fake provider + one gateway worker, load from a separate process; prints the table (BENCH_SCALE=0.3 quicker)
bench: dev-install
	$(PY) bench/run.py

lint: dev-install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## test-deps: Debian's haproxy and pgbouncer (tests/operations drive them) and chromium (tests/browser drive it
## through Playwright at /usr/bin/chromium; Playwright never downloads a browser), each installed when missing
TEST_PACKAGES := haproxy pgbouncer chromium
test-deps:
	@missing=""; for program in $(TEST_PACKAGES); do \
		command -v $$program >/dev/null || [ -x /usr/sbin/$$program ] || missing="$$missing $$program"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing (Debian)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y --no-install-recommends $$missing || \
			{ apt-get update -q && apt-get install -y --no-install-recommends $$missing; }; \
	fi
ops-deps browser-deps: test-deps

## test: lint, then the whole suite on SQLite and (when reachable, always in CI) on PostgreSQL; in CI it installs
## the operations and browser tests' programs first (elsewhere those tests are skipped without them: `make test-deps`)
test: $(if $(CI),test-deps) lint test-sqlite
	@if [ -n "$$CI" ] || $(PY) scripts/postgres_reachable.py "$(POSTGRES_URL)"; then \
		$(MAKE) --no-print-directory test-postgres; \
	else \
		echo "PostgreSQL not reachable at $(POSTGRES_URL): skipped the PostgreSQL run"; \
	fi

# Two test processes (pytest-xdist): the suite waits on servers and subprocesses as much as it computes, and one
# process uses about half of this 2-core machine. `make test PARALLEL=` runs it in one process.
PARALLEL ?= -n 2 --dist loadgroup

# The end-to-end suites run twice: OpenAI-wire models through the direct relay (default), then all through LiteLLM.
E2E := tests/e2e tests/usage

test-sqlite: dev-install
	DATABASE_URL=sqlite:///$(CURDIR)/db.sqlite3 $(PY) -m pytest $(PARALLEL) $(PYTEST_ARGS)
	DATABASE_URL=sqlite:///$(CURDIR)/db.sqlite3 LLMPROXY_DIRECT_RELAY=0 $(PY) -m pytest $(E2E) $(PARALLEL) $(PYTEST_ARGS)

test-postgres: dev-install
	DATABASE_URL=$(POSTGRES_URL) $(PY) -m pytest $(PARALLEL) $(PYTEST_ARGS)
	DATABASE_URL=$(POSTGRES_URL) LLMPROXY_DIRECT_RELAY=0 $(PY) -m pytest $(E2E) $(PARALLEL) $(PYTEST_ARGS)

## audit: known vulnerabilities in every pinned dependency (pip-audit, in its own venv; needs the PyPI JSON API)
audit:
	test -x .venv-audit/bin/pip-audit || ($(PYTHON) -m venv .venv-audit && \
		.venv-audit/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-audit.txt)
	.venv-audit/bin/pip-audit --strict --disable-pip --require-hashes -r requirements-dev.txt

## lock: after editing requirements*.in (exact pins), regenerate requirements*.txt with every hash (uv, universal)
lock:
	test -x .venv-lock/bin/uv || ($(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install --quiet uv==$(UV_VERSION))
	for name in requirements requirements-dev requirements-audit; do \
		.venv-lock/bin/uv pip compile $$name.in --generate-hashes --universal --python-version 3.11 --quiet \
			--custom-compile-command "make lock" -o $$name.txt || exit 1; \
	done

clean:
	rm -rf $(VENV) .venv-audit .venv-lock staticfiles test_db.sqlite3 .demo .bench .metrics test-artifacts
