# hisci: `make serve` runs the service, `make test` runs the suite. Both install what is missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
HICLI  := $(VENV)/bin/hicli
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install test test-full demo bench lint serve browser postgres clean

$(STAMP): pyproject.toml setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[all]'
	@touch $(STAMP)

install: $(STAMP)

# Debian's chromium for the browser tests (playwright drives it through executable_path).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Debian's PostgreSQL for the job-index tests (they start a temporary cluster themselves).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

test: install browser postgres
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-full: install browser postgres
	$(PY) -m pytest -q -m "" $(PYTEST_ARGS)

demo: install
	$(HICLI) run table_plot --example -o demo-out
	@echo "demo: figure, result.json and log.txt are in demo-out/"

bench: install postgres
	@for script in benchmarks/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

lint: install
	$(VENV)/bin/ruff check core hicli dash_app plugins tests benchmarks

serve: install
	$(HICLI) serve

clean:
	rm -rf demo-out build dist *.egg-info
