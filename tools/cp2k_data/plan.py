"""What a run makes: its settings, its list of structures, and the geometry of each one."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Tuple

from .materials import Structure, displaced_structure, folder_stem, is_molecule_name, material


@dataclass(frozen=True)
class Settings:
    """Everything that determines the content of a structure folder (and where it goes).

    Energies: ``cutoff``/``rel_cutoff`` Ry (CP2K's MGRID), ``temperature`` K (Fermi-Dirac
    smearing); ``kspacing`` 1/A; ``block_radius`` A (blocks of atom pairs farther apart are
    not written; 0 writes every block CP2K has).
    """

    out: Path
    material: str = "hBN"
    supercell: Tuple[int, int, int] = (2, 2, 1)
    seed: int = 0
    sigma: float = 0.05
    basis: str = "SZV-MOLOPT-SR-GTH"
    potential: str = "GTH-PBE"
    xc: str = "PBE"
    cutoff: float = 300.0
    rel_cutoff: float = 50.0
    kspacing: float = 0.3
    eps_default: float = 1e-12
    eps_scf: float = 1e-8
    temperature: float = 300.0
    block_radius: float = 0.0
    band_points: int = 8
    mpi_procs: int = 1
    keep_run: bool = False

    @property
    def basis_label(self) -> str:
        """info.json ``basis``: "CP2K <xc>/<basis>/<potential>"."""
        return f"CP2K {self.xc}/{self.basis}/{self.potential}"

    def provenance(self) -> Dict[str, object]:
        """The settings that determine a folder's content (stored in it, compared on resume)."""
        skip = {"out", "mpi_procs", "keep_run"}
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items() if k not in skip}


@dataclass(frozen=True)
class Task:
    """One structure: global index and folder name."""

    index: int
    name: str


def plan(settings: Settings, n_structures: int, start_index: int = 0) -> List[Task]:
    """Structures ``start_index .. start_index + n_structures - 1``, named ``<material>-<k:06d>``
    (a molecule ``molecule:<name>``: ``<name>-<k:06d>``, :func:`~.materials.folder_stem`)."""
    material(settings.material)  # fail early on an unknown name (or an open-shell molecule)
    if n_structures < 0 or start_index < 0:
        raise ValueError("--n-structures and --start-index must be >= 0")
    if is_molecule_name(settings.material):
        structure_of(Task(start_index, ""), settings)  # fail early on the supercell or block radius
    stem = folder_stem(settings.material)
    return [Task(k, f"{stem}-{k:06d}") for k in range(start_index, start_index + n_structures)]


def structure_of(task: Task, settings: Settings) -> Structure:
    """The displaced supercell (or molecule in its box) of ``task`` (seed = settings.seed + task.index)."""
    return displaced_structure(settings.material, settings.supercell, settings.sigma, settings.seed + task.index,
                               settings.block_radius)
