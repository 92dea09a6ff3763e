"""The committed notebooks: each ``notebooks/NN_*.py`` (the text a reviewer diffs) and its ``.ipynb``
(what a learner opens) hold the same cells, and the ``.ipynb`` holds the outputs of a full run, with
every figure as an image (``make notebooks`` writes them). That the notebooks still execute is
nbmake's part of ``make test``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PAIRS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
MAX_BYTES = 2_000_000  # a committed notebook with its PNGs; more means a figure or a print ran away
DRAWS = re.compile(r"plt\.(subplots|figure)\(")
HOW = "run `make notebooks` to rewrite and execute every notebook from its .py"


def cells(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_every_notebook_has_both_files():
    ipynbs = {p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")}
    assert PAIRS, "no notebooks found"
    assert {p.stem for p in PAIRS} == ipynbs, f"a .py or .ipynb lacks its twin; {HOW}"


@pytest.mark.parametrize("py", PAIRS, ids=lambda p: p.stem)
def test_pair_holds_the_same_cells(py):
    text, nb = jupytext.read(py), jupytext.read(py.with_suffix(".ipynb"))
    for i, (a, b) in enumerate(zip(cells(text), cells(nb), strict=False)):
        assert a == b, f"{py.name}: cell {i} differs between .py and .ipynb; {HOW}"
    assert len(text.cells) == len(nb.cells), f"{py.name}: cell counts differ; {HOW}"


@pytest.mark.parametrize("py", PAIRS, ids=lambda p: p.stem)
def test_ipynb_holds_a_full_run_with_its_figures(py):
    ipynb = py.with_suffix(".ipynb")
    nb = jupytext.read(ipynb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.get("execution_count") for c in code]
    assert counts == list(range(1, len(code) + 1)), f"{ipynb.name} is not one full run; {HOW}"
    for i, c in enumerate(code):
        kinds = [o.get("output_type") for o in c.get("outputs", [])]
        assert "error" not in kinds, f"{ipynb.name}: code cell {i} stored an error"
        if DRAWS.search(c.source):
            images = [o for o in c.outputs if "image/png" in o.get("data", {})]
            assert images, f"{ipynb.name}: code cell {i} draws a figure but stores no image; {HOW}"
    assert ipynb.stat().st_size < MAX_BYTES, f"{ipynb.name} is {ipynb.stat().st_size} bytes"


@pytest.mark.parametrize("py", PAIRS, ids=lambda p: p.stem)
def test_notebook_leaves_the_backend_to_the_environment(py):
    """``matplotlib.use(...)`` would replace Jupyter's inline backend: no figure for a learner."""
    assert "matplotlib.use(" not in py.read_text(), f"{py.name}: set MPLBACKEND outside instead"
