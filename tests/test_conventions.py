"""deeph_tf.conventions: the stated provenance of its physical constants is the true one."""
from __future__ import annotations

import inspect
import re

import pytest

from deeph_tf import conventions

#: CODATA recommended values (NIST), by release year: Bohr radius in Angstrom, Hartree in eV.
CODATA_BOHR_ANGSTROM = {2006: 0.52917720859, 2010: 0.52917721092, 2014: 0.52917721067, 2018: 0.529177210903}
CODATA_HARTREE_EV = {2002: 27.2113845, 2006: 27.21138386, 2010: 27.21138505, 2014: 27.21138602,
                     2018: 27.211386245988}


def _doc_comment(name: str) -> str:
    """The ``#:`` comment lines right above ``NAME: float = ...`` in conventions.py."""
    lines = inspect.getsource(conventions).splitlines()
    (row,) = [i for i, line in enumerate(lines) if line.startswith(f"{name}:")]
    comment = []
    while lines[row - 1].startswith("#:"):
        row -= 1
        comment.insert(0, lines[row][2:].strip())
    return " ".join(comment)


@pytest.mark.parametrize("name, table, pyscf_name", [
    ("BOHR_TO_ANGSTROM", CODATA_BOHR_ANGSTROM, "BOHR"),
    ("HARTREE_TO_EV", CODATA_HARTREE_EV, "HARTREE2EV"),
])
def test_constants_name_their_codata_release_and_pyscf_value(name, table, pyscf_name):
    from pyscf.data import nist

    comment = _doc_comment(name)
    value = getattr(conventions, name)
    first_year = int(re.search(r"CODATA (\d{4})", comment).group(1))  # the release of our own value
    assert table[first_year] == value, f"{name} = {value} is not CODATA {first_year}: {comment}"
    pyscf_value = getattr(nist, pyscf_name)
    assert f"{pyscf_value}" in comment or (pyscf_value == value and f"pyscf.data.nist.{pyscf_name}" in comment), comment
    pyscf_years = [year for year, v in table.items() if v == pyscf_value]
    assert pyscf_value == value or any(f"CODATA {year}" in comment for year in pyscf_years), comment


def test_conventions_page_names_tests_that_exist():
    """docs/conventions.md cites tests as `tests/x.py::name` (later `::name` in the same file)."""
    from conftest import REPO_ROOT

    doc = (REPO_ROOT / "docs" / "conventions.md").read_text(encoding="utf-8")
    cited, path = [], None
    for match in re.finditer(r"`(tests/[\w/]+\.py)?(?:::(\w+))?`", doc):
        path = match.group(1) or path
        if match.group(2):
            cited.append((path, match.group(2)))
    assert len(cited) > 30
    missing = [f"{p}::{name}" for p, name in cited
               if not re.search(rf"^def {name}\(", (REPO_ROOT / p).read_text(encoding="utf-8"), re.M)]
    assert not missing, missing
    for section in ("## 1. Data format", "## 2. Orbitals and rotations", "## 3. Units and constants",
                    "## 4. DeePMD file conventions"):
        assert section in doc
