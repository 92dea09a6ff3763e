# Two commands do all the set-up on a fresh machine:
#   make solve   — install into .venv (once) and run the main job, the Newton solver on a synthetic instance
#   make test    — install into .venv (once), run the linters (ruff, ruff format --check, mypy)
#                  and the whole test suite
# make notebooks writes notebooks/0*.ipynb from their .py twins (jupytext) and executes them in place,
# so that the committed notebooks show their outputs and figures; tests/test_notebooks_sync.py checks it.
# Pass options to the solver with ARGS, e.g. make solve ARGS="--regime nonlinear --n 20000".

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned first: a range would let transformers/peft pull a CUDA build of several GB.
TORCH ?= torch==2.13.0

.PHONY: install solve test lint bench notebooks

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

# MPLBACKEND=Agg: in CI figures are drawn but not rendered; the notebooks never choose a backend, so a
# learner's Jupyter shows them inline (ipykernel sets its inline backend when MPLBACKEND is unset).
test: lint
	MPLBACKEND=Agg $(PY) -m pytest -n 2 -q --nbmake theory/tests tests notebooks

NOTEBOOKS := $(sort $(wildcard notebooks/0*.py))

# Executed with the inline backend (MPLBACKEND unset) so that every figure is saved as image/png;
# no timing metadata, so a rebuild changes only what the code prints and draws.
define EXECUTE_NOTEBOOKS
import pathlib, sys
import nbformat
from nbclient import NotebookClient
for path in map(pathlib.Path, sys.argv[1:]):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(nb, path)
    print("executed", path)
endef
export EXECUTE_NOTEBOOKS

notebooks: install
	$(PY) -m jupytext --to ipynb $(NOTEBOOKS)
	env -u MPLBACKEND $(PY) -c "$$EXECUTE_NOTEBOOKS" $(NOTEBOOKS:.py=.ipynb)

bench: install
	$(PY) -m benchmarks.derivatives
	$(PY) -m benchmarks.bounds
