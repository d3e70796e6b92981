# The two commands that matter: `make run` and `make test`.
VENV ?= .venv
# The distribution's CPython when it has venv (Debian's is built with PGO and LTO and linked
# statically: the hub runs ~15 % faster on it than on a default source build such as pyenv's,
# docs/performance.md round 15); else the first python3 on the PATH.
DISTRO_PYTHON := $(shell /usr/bin/python3 -c 'import sys, ensurepip; assert sys.version_info >= (3, 11)' \
	2>/dev/null && echo /usr/bin/python3)
PYTHON ?= $(or $(DISTRO_PYTHON),python3)
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
