# The two commands that matter: `make run` and `make test`.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint format venv clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

## run the hub on the repository-root workspace (SQLite, folders, console on 127.0.0.1:8080);
## a new workspace is initialised and filled with a day of demo traffic first
run: $(STAMP)
	@test -f config/hub.toml || { $(VENV)/bin/cebhub -w . init && $(VENV)/bin/cebhub -w . demo; }
	$(VENV)/bin/cebhub -w . run

## the whole suite: lint, format check, pytest
test: $(STAMP) lint
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
