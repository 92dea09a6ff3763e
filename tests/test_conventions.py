"""Repository conventions that CI (``make test``) checks: every notebook's jupytext pair is in
sync, and no test names a path of one machine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))


def cells(notebook) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in notebook.cells]


def test_every_notebook_has_both_halves():
    py = {p.stem for p in (ROOT / "notebooks").glob("*.py")}
    ipynb = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert py == ipynb, f"unpaired: {sorted(py ^ ipynb)} (jupytext --sync notebooks/*.py)"


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_pair_is_in_sync(py):
    """The .py (jupytext percent format) and the .ipynb hold the same cells, in order."""
    jupytext = pytest.importorskip("jupytext")
    nbformat = pytest.importorskip("nbformat")
    text = cells(jupytext.read(py))
    notebook = cells(nbformat.read(py.with_suffix(".ipynb"), as_version=4))
    first = next((i for i, (a, b) in enumerate(zip(text, notebook)) if a != b), None)
    assert text == notebook, (
        f"{py.name} and {py.with_suffix('.ipynb').name} differ "
        f"({len(text)} vs {len(notebook)} cells; first differing cell: {first}); "
        f"run: jupytext --sync {py.relative_to(ROOT)}"
    )


MACHINE_PATH = re.compile(
    "[\"'](" + "|".join(["/wo" + "rk", "/tm" + "p/", "/ro" + "ot", "/ho" + "me/"]) + ")"
)


def test_no_test_names_a_path_of_this_machine():
    files = [*(ROOT / "tests").rglob("*.py"), *(ROOT / "theory" / "tests").rglob("*.py")]
    hits = [
        f"{f.relative_to(ROOT)}:{n}"
        for f in files
        for n, line in enumerate(f.read_text().splitlines(), 1)
        if MACHINE_PATH.search(line)
    ]
    assert not hits, f"tests must use tmp_path or paths relative to the repository: {hits}"


def test_readme_trainer_commands_run_from_the_venv():
    """After ``make solve`` / ``make test`` nothing is activated: a bare ``python -m infoprompt``
    would be the system's Python (without accelerate); the README says ``.venv/bin/python``."""
    bare = [
        line
        for line in (ROOT / "README.md").read_text().splitlines()
        if re.match(r"\s*python3? -m infoprompt\b", line)
    ]
    assert not bare, f"README commands must start with .venv/bin/python: {bare}"


def _infoprompt_imports() -> dict[str, set[str]]:
    """Module → the infoprompt modules it imports, at any depth of its code (lazy imports too)."""
    import ast

    graph = {}
    for path in sorted((ROOT / "infoprompt").glob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "infoprompt":
                    names |= {f"infoprompt.{a.name}" for a in node.names}
                elif node.module.startswith("infoprompt."):
                    names.add(node.module)
            elif isinstance(node, ast.Import):
                names |= {a.name for a in node.names if a.name.startswith("infoprompt.")}
        graph[f"infoprompt.{path.stem}"] = names
    return graph


def test_no_import_cycle_in_the_trainer():
    graph = _infoprompt_imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(graph.get(module, ())):
            assert state.get(dep) != 1, "import cycle: " + " -> ".join([*path, module, dep])
            if dep not in state:
                visit(dep, [*path, module])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [])


def test_every_trainer_module_reads_at_once():
    """One job per module: none of infoprompt/ exceeds 450 lines."""
    sizes = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "infoprompt").glob("*.py")}
    assert max(sizes.values()) < 450, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]
