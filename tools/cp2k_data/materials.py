"""The crystals and molecules the generator knows, their supercells, displacements and band paths (ASE).

Every crystal is an ASE primitive cell (``ase.build``) with the periodic directions marked
(2D materials: ``pbc = (True, True, False)`` and vacuum along c). Structure k of a run is the
``supercell`` repetition of it with every Cartesian coordinate displaced by a Gaussian of
standard deviation ``sigma`` (Angstrom) drawn from ``numpy.random.default_rng(seed + k)``, so a
structure depends neither on the number of workers nor on how a dataset is split into runs.

Molecules: ``molecule:<name>`` with ``<name>`` a closed-shell molecule of ASE's G2 set
(``ase.build.molecule``, ``ase.collections.g2``: an even electron count and zero magnetic
moments; others are refused). The reference geometry is centred in a cubic box (``pbc`` all
False in :class:`Structure`, CP2K still runs it periodic, at Gamma) whose edge is the largest
extent of the molecule plus ``block_radius + 1`` A plus room for the displacements
(:data:`MOLECULE_DISPLACEMENT_MARGIN_SIGMAS` sigma on each side), rounded up to 0.5 A; the box
depends on the molecule and the settings, not on the seed. Every atom is then farther than
``block_radius + 1`` A from every periodic image of every atom (checked for each displaced
structure), so every written block is an intra-molecule block with R = 0.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

__all__ = ["MATERIALS", "Material", "Structure", "displaced_structure", "k_mesh", "band_path", "MOLECULE_PREFIX",
           "is_molecule_name", "molecule_name", "closed_shell_problem", "min_image_distance", "folder_stem"]

#: ``--material`` prefix of a G2 molecule.
MOLECULE_PREFIX = "molecule:"
#: Vacuum beyond ``block_radius`` between a molecule and its periodic images, A (see the docstring).
MOLECULE_IMAGE_MARGIN = 1.0
#: Room for the displacements on each side of the molecule's box, in units of sigma.
MOLECULE_DISPLACEMENT_MARGIN_SIGMAS = 8.0


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


def _bulk(symbol: str, a: float, structure: str = "diamond"):
    def build():
        from ase.build import bulk

        return bulk(symbol, structure, a=a)

    return build


#: Materials by name (``--material``); lattice constants near the PBE values, Angstrom.
MATERIALS: Dict[str, Material] = {m.name: m for m in (
    Material("hBN", _hbn, "hexagonal boron nitride monolayer, a = 2.504 A, 16 A cell along c"),
    Material("graphene", _graphene, "graphene monolayer, a = 2.467 A, 16 A cell along c"),
    Material("MoS2", _mos2, "2H-MoS2 monolayer, a = 3.19 A"),
    Material("Si", _bulk("Si", 5.43), "diamond-structure silicon, fcc primitive cell, a = 5.43 A"),
    Material("diamond", _bulk("C", 3.567), "diamond, fcc primitive cell, a = 3.567 A"),
    Material("SiC", _bulk("SiC", 4.38, "zincblende"), "cubic (3C, zincblende) SiC, fcc primitive cell, a = 4.38 A"),
    Material("cBN", _bulk("BN", 3.62, "zincblende"), "cubic (zincblende) boron nitride, fcc primitive cell, a = 3.62 A"),
    Material("BP", _bulk("BP", 4.55, "zincblende"), "zincblende boron phosphide, fcc primitive cell, a = 4.55 A"),
    Material("LiI", _bulk("LiI", 6.00, "rocksalt"),
             "rock-salt lithium iodide, fcc primitive cell, a = 6.00 A (the spin-orbit crystal of "
             "tools/make_soc_crystal_dataset.py)"),
)}


@dataclass(frozen=True)
class Structure:
    """A displaced supercell: lattice [3, 3] rows a1..a3 (A), positions [n, 3] (A), pbc [3]."""

    species: List[str]
    positions: np.ndarray
    lattice: np.ndarray
    pbc: Tuple[bool, bool, bool]


def is_molecule_name(name: str) -> bool:
    """True for ``molecule:<g2 name>``."""
    return str(name).startswith(MOLECULE_PREFIX)


def molecule_name(name: str) -> str:
    """The G2 name of ``molecule:<g2 name>`` (case-sensitive, as ASE spells it: "CH4", "H2O")."""
    return str(name)[len(MOLECULE_PREFIX):]


def closed_shell_problem(g2_name: str) -> str:
    """"" if ``g2_name`` is a closed-shell G2 molecule, else why not (unknown, odd electron count,
    non-zero magnetic moments, a single atom)."""
    from ase.build import molecule
    from ase.collections import g2

    if g2_name not in g2.names:
        return f"{g2_name!r} is not an ASE G2 molecule (ase.collections.g2.names)"
    atoms = molecule(g2_name)
    if len(atoms) < 2:
        return f"{g2_name!r} is a single atom, not a molecule"
    n_electrons = int(atoms.get_atomic_numbers().sum())
    if n_electrons % 2:
        return f"{g2_name!r} has an odd number of electrons ({n_electrons}): not closed-shell"
    if np.any(atoms.get_initial_magnetic_moments() != 0):
        return f"{g2_name!r} has non-zero magnetic moments in ASE's G2 data: not closed-shell"
    return ""


def folder_stem(name: str) -> str:
    """The folder-name stem of a material: its name, or the G2 name of a molecule ("molecule:CH4" ->
    "CH4"), with every character outside [A-Za-z0-9_.-] replaced by "_"."""
    stem = molecule_name(name) if is_molecule_name(name) else str(name)
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stem)


def _molecule_material(name: str) -> Material:
    g2_name = molecule_name(name)
    problem = closed_shell_problem(g2_name)
    if problem:
        raise ValueError(f"{name}: only closed-shell G2 molecules are allowed: {problem}")

    def build():
        from ase.build import molecule

        atoms = molecule(g2_name)
        atoms.pbc = False
        return atoms

    return Material(name, build, f"G2 molecule {g2_name} in a cubic box (Gamma)")


def material(name: str) -> Material:
    """The :data:`MATERIALS` entry ``name`` (case-insensitive), or a closed-shell G2 molecule
    ``molecule:<name>``; ValueError names the known ones (or why the molecule is refused)."""
    if is_molecule_name(name):
        return _molecule_material(name)
    for key, value in MATERIALS.items():
        if key.lower() == name.lower():
            return value
    raise ValueError(f"unknown material {name!r}; known: {', '.join(MATERIALS)}, or molecule:<G2 name>")


def molecule_box_edge(extent: float, block_radius: float, sigma: float) -> float:
    """Cubic box edge (A) of a molecule of largest extent ``extent`` (A): see the module docstring."""
    if block_radius <= 0:
        raise ValueError("a molecule needs --block-radius > 0 (its box is sized so that no block "
                         "within the radius reaches a periodic image)")
    edge = extent + block_radius + MOLECULE_IMAGE_MARGIN + 2 * MOLECULE_DISPLACEMENT_MARGIN_SIGMAS * abs(sigma)
    return float(np.ceil(edge / 0.5) * 0.5)


def min_image_distance(positions: np.ndarray, lattice: np.ndarray) -> float:
    """The shortest distance (A) from any atom to any periodic image (R != 0, |R_i| <= 1) of any atom."""
    pos = np.asarray(positions, float)
    shifts = np.array([(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1) if (a, b, c) != (0, 0, 0)])
    vec = pos[None, :, None, :] + (shifts @ np.asarray(lattice, float))[None, None] - pos[:, None, None, :]
    return float(np.linalg.norm(vec, axis=-1).min())


def _displaced_molecule(name: str, supercell: Sequence[int], sigma: float, seed: int,
                        block_radius: float) -> Structure:
    atoms = material(name).build()
    if tuple(int(n) for n in supercell) != (1, 1, 1):
        raise ValueError(f"{name}: a molecule has no supercell (supercell must be 1 1 1, got {tuple(supercell)})")
    ref = atoms.positions
    edge = molecule_box_edge(float((ref.max(axis=0) - ref.min(axis=0)).max()), block_radius, sigma)
    centred = ref - 0.5 * (ref.max(axis=0) + ref.min(axis=0)) + 0.5 * edge
    rng = np.random.default_rng(int(seed))
    positions = centred + rng.normal(0.0, float(sigma), size=ref.shape)
    lattice = np.eye(3) * edge
    if min_image_distance(positions, lattice) <= block_radius + MOLECULE_IMAGE_MARGIN:
        raise ValueError(f"{name} (seed {seed}): a displaced atom is within block_radius + "
                         f"{MOLECULE_IMAGE_MARGIN} A of a periodic image in the {edge} A box")
    return Structure(species=list(atoms.get_chemical_symbols()), positions=positions, lattice=lattice,
                     pbc=(False, False, False))


def displaced_structure(name: str, supercell: Sequence[int], sigma: float, seed: int,
                        block_radius: float = 0.0) -> Structure:
    """The ``supercell`` of material ``name`` with Gaussian displacements (sigma, A) from ``seed``
    (a molecule: in its box, which depends on ``block_radius``, A)."""
    if is_molecule_name(name):
        return _displaced_molecule(name, supercell, sigma, seed, block_radius)
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
    get the 2D path), broken at its commas; labels as ASE writes them ("G" is Gamma). A molecule
    (no periodic direction) has no path: [].
    """
    from ase.cell import Cell

    if not any(structure.pbc):
        return []
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
