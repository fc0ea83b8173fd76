"""The crystals the generator knows, their supercells, displacements and band paths (ASE).

Every material is an ASE primitive cell (``ase.build``) with the periodic directions marked
(2D materials: ``pbc = (True, True, False)`` and vacuum along c). Structure k of a run is the
``supercell`` repetition of it with every Cartesian coordinate displaced by a Gaussian of
standard deviation ``sigma`` (Angstrom) drawn from ``numpy.random.default_rng(seed + k)``, so a
structure depends neither on the number of workers nor on how a dataset is split into runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

__all__ = ["MATERIALS", "Material", "Structure", "displaced_structure", "k_mesh", "band_path"]


@dataclass(frozen=True)
class Material:
    """One crystal: how to build its primitive cell, and what it is."""

    name: str
    build: Callable[[], "object"]  # () -> ase.Atoms (primitive cell, pbc marked)
    description: str


def _hbn():
    from ase.build import graphene

    atoms = graphene(formula="BN", a=2.504, vacuum=8.0)  # c = 16 A
    atoms.pbc = (True, True, False)
    return atoms


def _graphene():
    from ase.build import graphene

    atoms = graphene(formula="C2", a=2.467, vacuum=8.0)
    atoms.pbc = (True, True, False)
    return atoms


def _mos2():
    from ase.build import mx2

    atoms = mx2(formula="MoS2", kind="2H", a=3.19, thickness=3.13, vacuum=7.0)
    atoms.pbc = (True, True, False)
    return atoms


def _bulk(symbol: str, a: float):
    def build():
        from ase.build import bulk

        return bulk(symbol, "diamond", a=a)

    return build


#: Materials by name (``--material``); lattice constants near the PBE values, Angstrom.
MATERIALS: Dict[str, Material] = {m.name: m for m in (
    Material("hBN", _hbn, "hexagonal boron nitride monolayer, a = 2.504 A, 16 A cell along c"),
    Material("graphene", _graphene, "graphene monolayer, a = 2.467 A, 16 A cell along c"),
    Material("MoS2", _mos2, "2H-MoS2 monolayer, a = 3.19 A"),
    Material("Si", _bulk("Si", 5.43), "diamond-structure silicon, fcc primitive cell, a = 5.43 A"),
    Material("diamond", _bulk("C", 3.567), "diamond, fcc primitive cell, a = 3.567 A"),
)}


@dataclass(frozen=True)
class Structure:
    """A displaced supercell: lattice [3, 3] rows a1..a3 (A), positions [n, 3] (A), pbc [3]."""

    species: List[str]
    positions: np.ndarray
    lattice: np.ndarray
    pbc: Tuple[bool, bool, bool]


def material(name: str) -> Material:
    """The :data:`MATERIALS` entry ``name`` (case-insensitive); ValueError names the known ones."""
    for key, value in MATERIALS.items():
        if key.lower() == name.lower():
            return value
    raise ValueError(f"unknown material {name!r}; known: {', '.join(MATERIALS)}")


def displaced_structure(name: str, supercell: Sequence[int], sigma: float, seed: int) -> Structure:
    """The ``supercell`` of material ``name`` with Gaussian displacements (sigma, A) from ``seed``."""
    atoms = material(name).build()
    reps = tuple(int(n) for n in supercell)
    if len(reps) != 3 or min(reps) < 1:
        raise ValueError(f"supercell must be three positive integers, got {supercell}")
    if any(n > 1 and not p for n, p in zip(reps, atoms.pbc)):
        raise ValueError(f"{name}: cannot repeat along a non-periodic direction (supercell {reps})")
    atoms = atoms * reps
    rng = np.random.default_rng(int(seed))
    positions = atoms.positions + rng.normal(0.0, float(sigma), size=atoms.positions.shape)
    return Structure(species=list(atoms.get_chemical_symbols()), positions=positions,
                     lattice=np.array(atoms.cell[:], dtype=np.float64), pbc=tuple(bool(p) for p in atoms.pbc))


def k_mesh(structure: Structure, kspacing: float) -> Tuple[int, int, int]:
    """Monkhorst-Pack mesh with spacing <= ``kspacing`` (1/A, 2 pi included, as VASP's KSPACING).

    n_i = max(1, ceil(|b_i| / kspacing)) along periodic directions, 1 along the others.
    """
    recip = 2 * np.pi * np.linalg.inv(structure.lattice).T
    return tuple(int(max(1, np.ceil(np.linalg.norm(b) / kspacing))) if p else 1
                 for b, p in zip(recip, structure.pbc))


def band_path(structure: Structure) -> List[Tuple[str, np.ndarray, str, np.ndarray]]:
    """High-symmetry segments (label, k_start, label, k_end) in reduced coordinates of the cell.

    ASE's path for the lattice (``Cell.bandpath`` with the periodic directions, so 2D cells
    get the 2D path), broken at its commas; labels as ASE writes them ("G" is Gamma).
    """
    from ase.cell import Cell

    path = Cell(structure.lattice).bandpath(npoints=0, pbc=structure.pbc)
    segments = []
    for piece in path.path.split(","):
        labels = _split_labels(piece)
        for a, b in zip(labels[:-1], labels[1:]):
            segments.append((a, np.asarray(path.special_points[a], float), b,
                             np.asarray(path.special_points[b], float)))
    return segments


def _split_labels(piece: str) -> List[str]:
    """"GX1W" -> ["G", "X1", "W"] (a label is a letter followed by digits)."""
    labels: List[str] = []
    for ch in piece:
        if ch.isdigit() and labels:
            labels[-1] += ch
        else:
            labels.append(ch)
    return labels
