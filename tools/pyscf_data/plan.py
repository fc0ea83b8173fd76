"""What a run makes: its settings, the list of structures, and the geometry of each structure.

Structure k draws its displacements (then its rotation) from ``numpy.random.default_rng(seed + k)``,
so a structure does not depend on the number of workers or on how a dataset is split into runs.
With several molecules structure k is ``molecules[k % len(molecules)]`` (round robin).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from deeph_tf.conventions import euler_zyz_to_matrix

from .molecules import MOLECULES


def random_euler_angles(rng: np.random.Generator) -> Tuple[float, float, float]:
    """Uniformly distributed rotation as z-y-z Euler angles (radians)."""
    alpha, gamma = rng.uniform(0.0, 2 * np.pi, size=2)
    beta = np.arccos(rng.uniform(-1.0, 1.0))
    return float(alpha), float(beta), float(gamma)




@dataclass(frozen=True)
class Settings:
    """Everything that determines the content of a structure folder (and where it goes)."""

    out: Path
    xc: str = "PBE"
    basis: str = "def2-SVP"
    grid_level: int = 3
    conv_tol: float = 1e-10
    seed: int = 0
    sigma: float = 0.05
    rotate: bool = False
    box: float = 20.0
    forces: bool = False
    #: Spin-orbit GKS (:mod:`.gks`) instead of RKS; ``ecp`` names the spin-orbit ECP library.
    spinful: bool = False
    ecp: str = "stuttgart-so"

    @property
    def basis_label(self) -> str:
        """info.json ``basis``: "PBE/def2-SVP" (RKS), "GKS+SOC PBE/def2-SVP+stuttgart-so(SO-ECP)" (spinful)."""
        if self.spinful:
            return f"GKS+SOC {self.xc}/{self.basis}+{self.ecp}(SO-ECP)"
        return f"{self.xc}/{self.basis}"


@dataclass(frozen=True)
class Task:
    """One structure: global index, molecule, folder name."""

    index: int
    molecule: str
    name: str


def plan(molecules: Sequence[str], n_structures: int, start_index: int = 0,
         name_prefix: str = "auto") -> List[Task]:
    """Structures ``start_index .. start_index + n_structures - 1``; molecule k % len(molecules)."""
    if n_structures < 0 or start_index < 0:
        raise ValueError("--n-structures and --start-index must be >= 0")
    if name_prefix not in ("auto", "always", "never"):
        raise ValueError(f"name_prefix must be auto, always or never, got {name_prefix!r}")
    prefix = name_prefix == "always" or (name_prefix == "auto" and len(molecules) > 1)
    tasks = []
    for k in range(start_index, start_index + n_structures):
        mol = molecules[k % len(molecules)]
        tasks.append(Task(k, mol, f"{mol}-{k:06d}" if prefix else f"{k:06d}"))
    return tasks


def structure_geometry(molecule: str, index: int, settings: Settings
                       ) -> Tuple[List[str], np.ndarray, Optional[Tuple[float, float, float]]]:
    """Species, positions [n, 3] (A, centroid at the box centre) and z-y-z Euler angles (or None).

    Draws from ``default_rng(seed + index)``: first the displacements N(0, sigma^2) of every
    Cartesian coordinate, then (with ``rotate``) a uniformly random rotation about the centroid.
    """
    mol = MOLECULES[molecule]
    rng = np.random.default_rng(settings.seed + index)
    pos = mol.coordinates()
    pos = pos + rng.normal(0.0, settings.sigma, size=pos.shape)
    pos = pos - pos.mean(axis=0)
    euler = None
    if settings.rotate:
        euler = random_euler_angles(rng)
        pos = pos @ euler_zyz_to_matrix(*euler).T
    pos = pos + settings.box / 2
    if pos.min() <= 0.0 or pos.max() >= settings.box:
        raise ValueError(f"{molecule} does not fit in a {settings.box} A box")
    return list(mol.species), pos, euler

