"""Read and write VASP 5 POSCAR files (the structure file of a DeepH structure folder).

Layout read here::

    comment line
    scale                        one number: > 0 multiplies the lattice and Cartesian coordinates,
                                 < 0 is the target cell volume (A^3); or three positive numbers
                                 (one factor per Cartesian axis, VASP 6)
    a1x a1y a1z                  lattice vectors as rows (Angstrom, before scaling)
    a2x a2y a2z
    a3x a3y a3z
    O H                          element symbols (VASP 5; required); "O_pv", "Fe/1a2b3c" accepted
    1 2                          atoms per symbol
    [Selective dynamics]         optional; any line whose first letter is S or s
    Cartesian | Direct           first letter C/c/K/k: Cartesian, anything else: Direct (as VASP)
    x y z [anything]             one line per atom; extra tokens (T/F flags, labels) are ignored

Everything after the coordinate lines (velocities, predictor-corrector data) is ignored.
Atom order in the file is the atom index used by every other file of the structure.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Sequence, Tuple, Union

import numpy as np

from deeph_tf.atomic_io import atomic_path
from deeph_tf.data.errors import DataFormatError

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

_SYMBOL_RE = re.compile(r"^[A-Za-z]{1,3}$")


@dataclass(frozen=True, eq=False)
class Poscar:
    """A periodic structure.

    Attributes:
        lattice: [3, 3] float64, Angstrom; rows are the lattice vectors a1, a2, a3.
        species: element symbol of each atom, in file order (length n_atoms).
        positions: [n_atoms, 3] float64, Cartesian, Angstrom.
        comment: first line of the file.
    """

    lattice: np.ndarray
    species: List[str]
    positions: np.ndarray
    comment: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        lattice = np.array(self.lattice, dtype=np.float64)
        positions = np.array(self.positions, dtype=np.float64)
        species = [str(s) for s in self.species]
        if lattice.shape != (3, 3):
            raise ValueError(f"lattice must be [3, 3], got {lattice.shape}")
        if positions.size == 0:
            positions = positions.reshape(0, 3)
        if positions.ndim != 2 or positions.shape[1] != 3:
            raise ValueError(f"positions must be [n_atoms, 3], got {positions.shape}")
        if len(species) != positions.shape[0]:
            raise ValueError(f"{len(species)} species for {positions.shape[0]} positions")
        object.__setattr__(self, "lattice", lattice)
        object.__setattr__(self, "positions", positions)
        object.__setattr__(self, "species", species)

    @property
    def n_atoms(self) -> int:
        return len(self.species)

    @property
    def elements(self) -> List[str]:
        """Distinct element symbols in order of first appearance."""
        return list(dict.fromkeys(self.species))

    @property
    def volume(self) -> float:
        """Cell volume in A^3 (absolute value of det(lattice))."""
        return float(abs(np.linalg.det(self.lattice)))

    def fractional_positions(self) -> np.ndarray:
        """[n_atoms, 3] positions in lattice coordinates: positions = frac @ lattice."""
        return np.linalg.solve(self.lattice.T, self.positions.T).T


def _canonical_symbol(token: str) -> str:
    """'O_pv' -> 'O', 'Fe/1a2b' -> 'Fe', 'SI' -> 'Si'."""
    base = token.split("/")[0].split("_")[0]
    return base[:1].upper() + base[1:].lower()


def read_poscar(path: PathLike) -> Poscar:
    """Read a VASP 5 POSCAR.

    Returns:
        :class:`Poscar` with Cartesian positions in Angstrom (scale factor applied,
        Direct coordinates converted).

    Raises:
        DataFormatError: missing file, VASP 4 file (no element line), bad numbers,
            too few lines; the message names the file and the 1-based line number.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "POSCAR not found" if not path.exists() else "POSCAR path is not a file")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DataFormatError(path, f"cannot read POSCAR ({exc})") from exc
    lines = text.splitlines()

    def line(k: int, what: str) -> str:
        if k >= len(lines):
            raise DataFormatError(path, f"line {k + 1}: file ends early (expected {what})")
        return lines[k]

    def floats(k: int, what: str, count: int) -> List[float]:
        """The first ``count`` numbers of line k (further tokens are ignored)."""
        raw = line(k, what)
        tokens = raw.split()[:count]
        try:
            if len(tokens) < count:
                raise ValueError
            values = [float(t) for t in tokens]
        except ValueError:
            raise DataFormatError(path, f"line {k + 1}: expected {what} ({count} numbers), "
                                        f"got {raw.strip()!r}") from None
        if not all(np.isfinite(values)):
            raise DataFormatError(path, f"line {k + 1}: non-finite number in {raw.strip()!r}")
        return values

    def scale_factors() -> List[float]:
        """Line 2: the leading numbers (1, or 3 per-axis factors); a trailing comment is ignored."""
        raw = line(1, "the scale factor")
        values: List[float] = []
        for tok in raw.split()[:3]:
            try:
                values.append(float(tok))
            except ValueError:
                break
        if len(values) == 2 or not values or not all(np.isfinite(values)):
            raise DataFormatError(path, f"line 2: expected the scale factor (1 number, or 3 per-axis "
                                        f"factors), got {raw.strip()!r}")
        return values

    comment = line(0, "a comment line").strip()
    scale = scale_factors()
    raw_lattice = np.array([floats(2 + a, f"lattice vector a{a + 1}", 3) for a in range(3)])

    symbols_line = line(5, "the element symbols (VASP 5 format)").split()
    if not symbols_line or re.match(r"^[+-]?\d+$", symbols_line[0]):
        raise DataFormatError(path, "line 6: expected element symbols (VASP 5 format), found "
                                    f"{' '.join(symbols_line)!r}; VASP 4 POSCARs without an element "
                                    "line are not supported: add the symbols above the counts")
    symbols = []
    for tok in symbols_line:
        if tok.startswith(("!", "#")):
            break
        sym = _canonical_symbol(tok)
        if not _SYMBOL_RE.match(sym):
            raise DataFormatError(path, f"line 6: {tok!r} is not an element symbol")
        symbols.append(sym)
    counts_raw = line(6, "atom counts").split()
    try:
        counts = [int(t) for t in counts_raw[:len(symbols)]]
    except ValueError:
        raise DataFormatError(path, f"line 7: expected {len(symbols)} integer atom counts for "
                                    f"{' '.join(symbols)}, got {' '.join(counts_raw)!r}") from None
    if len(counts) != len(symbols) or any(c < 0 for c in counts):
        raise DataFormatError(path, f"line 7: expected {len(symbols)} non-negative atom counts for "
                                    f"{' '.join(symbols)}, got {' '.join(counts_raw)!r}")
    n_atoms = sum(counts)

    k = 7
    mode = line(k, "'Selective dynamics', 'Direct' or 'Cartesian'").strip()
    if mode[:1] in ("S", "s"):
        k += 1
        mode = line(k, "'Direct' or 'Cartesian'").strip()
    if not mode:
        raise DataFormatError(path, f"line {k + 1}: empty line where 'Direct' or 'Cartesian' was expected")
    cartesian = mode[0] in "CcKk"
    coords = np.array([floats(k + 1 + a, f"coordinates of atom {a + 1} of {n_atoms}", 3)
                       for a in range(n_atoms)], dtype=np.float64).reshape(n_atoms, 3)

    # Scale: VASP applies the (per-axis) factor to the lattice and to Cartesian coordinates.
    if len(scale) == 3:
        if any(s <= 0 for s in scale):
            raise DataFormatError(path, f"line 2: per-axis scale factors must be positive, got {scale}")
        factor = np.array(scale)
    else:
        s = scale[0]
        if s == 0:
            raise DataFormatError(path, "line 2: scale factor is 0 (expected > 0, or < 0 for a target volume)")
        if s > 0:
            factor = np.full(3, s)
        else:
            raw_volume = abs(np.linalg.det(raw_lattice))
            if raw_volume == 0:
                raise DataFormatError(path, "lines 3-5: lattice vectors are linearly dependent (zero volume)")
            factor = np.full(3, (-s / raw_volume) ** (1.0 / 3.0))
    lattice = raw_lattice * factor[None, :]
    if abs(np.linalg.det(lattice)) < 1e-12:
        raise DataFormatError(path, "lines 3-5: lattice vectors are linearly dependent (zero volume)")
    positions = coords * factor[None, :] if cartesian else coords @ lattice

    species = [sym for sym, c in zip(symbols, counts) for _ in range(c)]
    logger.debug("read %s: %d atoms (%s), %s coordinates", path, n_atoms, " ".join(symbols),
                 "Cartesian" if cartesian else "Direct")
    return Poscar(lattice=lattice, species=species, positions=positions, comment=comment)


def _species_runs(species: Sequence[str]) -> List[Tuple[str, int]]:
    """Consecutive runs, e.g. [O, H, H, O] -> [(O, 1), (H, 2), (O, 1)] (VASP allows repeats)."""
    runs: List[Tuple[str, int]] = []
    for s in species:
        if runs and runs[-1][0] == s:
            runs[-1] = (s, runs[-1][1] + 1)
        else:
            runs.append((s, 1))
    return runs


def write_poscar(path: PathLike, poscar: Poscar) -> None:
    """Write ``poscar`` atomically as a VASP 5 POSCAR with scale 1.0 and Cartesian coordinates.

    Numbers are written with Python's shortest exact repr, so reading the file back
    gives bit-identical lattice and positions. Atom order is preserved (species that
    are not grouped are written as repeated runs, which VASP accepts).
    """
    path = Path(path)
    runs = _species_runs(poscar.species)
    comment = (poscar.comment or "written by deeph_tf").replace("\n", " ")
    out = [comment, "1.0"]
    out += ["  " + " ".join(f"{float(x)!r:>24}" for x in row) for row in poscar.lattice]
    out.append("  " + " ".join(f"{s:>4}" for s, _ in runs))
    out.append("  " + " ".join(f"{c:>4d}" for _, c in runs))
    out.append("Cartesian")
    out += ["  " + " ".join(f"{float(x)!r:>24}" for x in row) for row in poscar.positions]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(out) + "\n", encoding="utf-8")
