# Two commands do all the set-up on a fresh machine:
#   make solve   — install into .venv (once) and run the main job, the Newton solver on a synthetic instance
#   make test    — install into .venv (once), run the linters (ruff, ruff format --check, mypy)
#                  and the whole test suite
# Pass options to the solver with ARGS, e.g. make solve ARGS="--regime nonlinear --n 20000".

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned first: a range would let transformers/peft pull a CUDA build of several GB.
TORCH ?= torch==2.13.0

.PHONY: install solve test lint bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[all]"
	touch $@

install: $(VENV)/.installed

solve: install
	$(PY) -m theory solve $(ARGS)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: lint
	$(PY) -m pytest -n 2 -q --nbmake theory/tests tests notebooks

bench: install
	$(PY) -m benchmarks.derivatives
	$(PY) -m benchmarks.bounds
