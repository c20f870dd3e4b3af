# Two commands set everything up on a fresh machine:
#   make demo   # create .venv, install sk_mlc, run the demo (the main job)
#   make test   # create .venv, install sk_mlc with test tools, run lint, the
#                 import layering check (import-linter) and the tests
#   make docs   # build the documentation site offline into docs/_build/html
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --constraint constraints.txt

.PHONY: demo test docs bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamp files re-install only when the project's requirements change.
$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) torch==2.13.0
	$(PIP) -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/python examples/demo.py

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

# Warnings are errors; --keep-going lists them all before failing. -E reads
# every page again: Sphinx would skip unchanged pages, and with them their
# warnings, so a second run would pass. Executes the quick examples
# (docs/conf.py says which; unchanged ones are not rerun); downloads nothing.
docs: install
	$(BIN)/sphinx-build -E -W --keep-going -b html docs docs/_build/html

bench: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info docs/_build docs/generated docs/auto_examples docs/sg_execution_times.rst
