"""The paper's numbering, checked against the one table that records it (``docs/paper-notes.md``,
"The paper's numbering"): every citation of an appendix object in ``theory/appendix.py`` and in the
notebooks names an object of the table, with the table's kind (Definition, Lemma, Theorem) and, for
lemmas with parts, an existing part; every function the table lists cites its object in its
docstring; what the paper does not contain (DLS23's c, ∇L_exp, B_exp) cites no number of the paper.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTES = ROOT / "docs" / "paper-notes.md"
SCANNED = [ROOT / "theory" / "appendix.py", *sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))]

KINDS = {
    "Def.": "Definition", "Defs.": "Definition", "Definition": "Definition",
    "Definitions": "Definition", "Lemma": "Lemma", "Lemmas": "Lemma", "Theorem": "Theorem",
    "Theorems": "Theorem", "Fact": "Fact", "Facts": "Fact", "Corollary": "Corollary",
    "Claim": "Claim", "Proposition": "Proposition",
}  # fmt: skip
SHORT = {"Definition": "Def.", "Lemma": "Lemma", "Theorem": "Theorem"}
NUM = r"[A-D]\.\d+"
CITATION = re.compile(
    rf"\b(?P<kind>{'|'.join(re.escape(k) for k in KINDS)})(?:~|\s)+"
    rf"(?P<nums>{NUM}(?:\s*(?:–|-|,|and|, and)\s*{NUM})*)"
    r"(?:,?\s+parts?\s+(?P<parts>\d(?:\s*(?:–|-|,|and)\s*\d)*))?"
)
ROW = re.compile(
    r"^\| (Definition|Lemma|Theorem) ([A-D]\.\d+)(?: part (\d))? \| ([^|]*) \| ([^|]*) \|"
)
FUNCTION = re.compile(r"`(theory\.[\w.]+)`")


def paper_table() -> dict[tuple[str, str | None], tuple[str, list[str]]]:
    """(number, part) → (kind, [dotted names of the functions that compute it])."""
    table = {}
    for line in NOTES.read_text().splitlines():
        m = ROW.match(line)
        if m:
            kind, num, part, _, computed = m.groups()
            table[num, part] = (kind, FUNCTION.findall(computed))
    return table


def dls23_table() -> list[tuple[str, list[str]]]:
    """(source, [functions]) of the table of objects that are not the paper's."""
    text = NOTES.read_text().split("Not in the paper's numbered objects", 1)[1]
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and FUNCTION.search(cells[2]):
            rows.append((cells[1], FUNCTION.findall(cells[2])))
    return rows


def resolve(dotted: str):
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def _expand(nums: str) -> list[str]:
    """'C.6–C.8' → ['C.6', 'C.7', 'C.8']; 'C.15 and C.16' → ['C.15', 'C.16']."""
    out: list[str] = []
    for m in re.finditer(rf"(?P<sep>–|-)?\s*(?P<num>{NUM})", nums):
        letter, k = m["num"].split(".")
        if m["sep"] and out:
            start = int(out[-1].split(".")[1])
            out += [f"{letter}.{j}" for j in range(start + 1, int(k) + 1)]
        else:
            out.append(m["num"])
    return out


def citation_errors(text: str, table) -> list[str]:
    """Every citation in ``text`` that the table contradicts, as a readable message."""
    kinds = {num: kind for (num, _), (kind, _) in table.items()}
    errors = []
    for m in CITATION.finditer(text):
        kind = KINDS[m["kind"]]
        nums = _expand(m["nums"])
        parts = re.findall(r"\d", m["parts"] or "")
        for num in nums:
            if num not in kinds:
                errors.append(f"{m[0]!r}: the paper has no {num}")
            elif kinds[num] != kind:
                errors.append(f"{m[0]!r}: {num} is a {kinds[num]}, not a {kind}")
            for part in parts:
                if (num, part) not in table:
                    errors.append(f"{m[0]!r}: {num} has no part {part}")
    return errors


TABLE = paper_table()


# The objects the paper does not contain (DLS23's c, ∇L_exp, B_exp), as the code and notebooks write them.
NOT_IN_PAPER = re.compile(
    r"B_\{?exp|B_\{\\rm exp|∇L_exp|\\nabla L_\{?exp|∇²L_exp|\bc = f [-−] b|\bc\(x\) = f"
)


def dls23_lines_without_source(text: str) -> list[str]:
    """Lines that cite a number of the paper next to a DLS23 object without naming DLS23."""
    return [
        line.strip()
        for line in text.splitlines()
        if CITATION.search(line) and NOT_IN_PAPER.search(line) and "DLS23" not in line
    ]


def test_the_table_numbers_every_object_of_the_appendix():
    nums = {num for num, _ in TABLE}
    assert nums == {f"C.{k}" for k in range(1, 17)} | {"D.1"}
    assert {num for (num, _), (kind, _) in TABLE.items() if kind == "Definition"} >= {
        f"C.{k}" for k in range(1, 9)
    }
    assert {part for (num, part) in TABLE if num == "C.10"} == {"1", "2", "3"}


@pytest.mark.parametrize("path", SCANNED, ids=lambda p: p.name)
def test_citations_agree_with_the_paper(path):
    assert citation_errors(path.read_text(), TABLE) == []


@pytest.mark.parametrize("path", SCANNED, ids=lambda p: p.name)
def test_dls23_objects_are_not_credited_to_the_paper(path):
    assert dls23_lines_without_source(path.read_text()) == []


@pytest.mark.parametrize(
    "key", [k for k, (_, fns) in TABLE.items() if fns], ids=lambda k: " part ".join(filter(None, k))
)
def test_each_function_cites_its_object(key):
    kind, functions = TABLE[key]
    num, part = key
    cite = f"{SHORT[kind]} {num}" + (f" part {part}" if part else "")
    for name in functions:
        doc = resolve(name).__doc__ or ""
        assert re.search(rf"{re.escape(cite)}(?!\d)", doc), (
            f"{name}'s docstring does not cite {cite}"
        )


def test_what_the_paper_does_not_contain_cites_no_number_of_it():
    rows = dls23_table()
    assert {f for _, fns in rows for f in fns} >= {
        "theory.appendix.c", "theory.appendix.grad_L_exp", "theory.appendix.B_exp",
        "theory.appendix.grad_L_reg",
    }  # fmt: skip
    for source, functions in rows:
        for name in functions:
            doc = resolve(name).__doc__ or ""
            first = doc.strip().split("\n\n")[0]
            assert not CITATION.search(first), f"{name} cites the paper for an object it lacks"
            if "DLS23" in source:
                assert "DLS23" in doc, f"{name} comes from DLS23 and should say so"


@pytest.mark.parametrize(
    "text, complaint",
    [
        ("Definitions C.1–C.4: u, α, f, c", None),
        ("Lemma C.10 part 2: ∇L_reg", None),
        ("Def. C.10", "is a Lemma, not a Definition"),
        ("Lemma C.6", "is a Definition, not a Lemma"),
        ("Lemmas C.15 and C.17", "the paper has no C.17"),
        ("Fact C.5 (vector identities)", "not a Fact"),
        ("Lemma C.10 part 4", "has no part 4"),
        ("Defs. C.6–C.9", "C.9 is a Lemma"),
    ],
)
def test_the_checker_catches_a_wrong_number(text, complaint):
    errors = citation_errors(text, TABLE)
    if complaint is None:
        assert errors == []
    else:
        assert any(complaint in e for e in errors), errors


@pytest.mark.parametrize(
    "line, flagged",
    [
        ("## Lemmas C.11 and C.14: Hessians $B_{exp}$, $B_{cent}$", True),
        ("## Definitions C.1–C.4: $u$, $\\alpha$, $f$, $c = f - b$", True),
        ("Lemma C.10: ∇L_exp = Aᵀ J c", True),
        ("B_exp comes from DLS23, not from Lemma C.11", False),
        ("Def. C.13: B_cent = s J", False),
    ],
)
def test_the_checker_catches_a_dls23_object_credited_to_the_paper(line, flagged):
    assert bool(dls23_lines_without_source(line)) is flagged
