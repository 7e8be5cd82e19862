# Alert Whisperer: `make run` serves the product, `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

# The test suite runs against the real services (PostgreSQL and Redis on this machine
# unless these are set): concurrency, locking and rate limiting are only proven there.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/alertwhisperer
TEST_REDIS_URL ?= redis://127.0.0.1:6379/1

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
run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
ifeq ($(strip $(DATABASE_URL)$(REDIS_URL)),)
	$(BIN)/python manage.py seed_demo
	$(BIN)/honcho start -f Procfile.embedded
else
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/honcho start -f Procfile
endif

test: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The webhook ingest benchmark (bench/README.md): a throw-away database
# alertwhisperer_bench, the production processes on this machine, wrk as load generator.
bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache .ruff_cache
