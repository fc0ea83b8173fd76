"""The files of one structure folder: what a complete folder holds, writing it, checking a resumed one.

A folder holds POSCAR, info.json, one block file per matrix of :data:`~.scf.BLOCK_NAMES` (all
blocks (0, 0, 0, i, j) over atom pairs, cell 0 only; ``docs/conventions.md``, "1. Data format"),
the PySCF orbital energies and, with ``--forces``, force.h5. Spinful structures (``--spinful``,
:mod:`.gks`) hold complex hamiltonian.h5 and density_matrix.h5 (2 n_i x 2 n_j blocks, spin outer),
a spinless real overlap.h5, and ``generator.json`` (:data:`GENERATOR_FILE`): the PySCF settings and
the checks of the written files (eigenvalues against PySCF, Hermiticity, time reversal).
"""
from __future__ import annotations

from pathlib import Path
import json
from typing import Dict, List, Sequence, Tuple

import numpy as np

from deeph_tf.data import (Poscar, blocks_from_dense, read_info_json, read_poscar, write_block_h5,
                           write_info_json, write_poscar)
from deeph_tf.data.force_h5 import FORCE_FILENAME, write_force_h5

from .plan import Settings, Task, structure_geometry
from .scf import BLOCK_NAMES, MO_ENERGY_FILE

#: Every file of a complete structure folder.
REQUIRED_FILES: Tuple[str, ...] = ("POSCAR", "info.json") + tuple(f"{n}.h5" for n in BLOCK_NAMES) + (MO_ENERGY_FILE,)
#: Energy and forces (eV, eV/A), written with --forces (then required too).
FORCE_FILE = FORCE_FILENAME
#: Spinful structures: PySCF settings and the checks of the written blocks (JSON).
GENERATOR_FILE = "generator.json"
#: Position tolerance (A) when checking that an existing structure belongs to this run.
GEOMETRY_MATCH_TOL = 1e-8


def write_dft_files(folder: Path, species: Sequence[str], positions: np.ndarray, lattice: np.ndarray,
                    result: Dict, basis_label: str, comment: str) -> None:
    """Write the block files, orbital energies, POSCAR and info.json (last) of :func:`~.scf.run_dft` output.

    Positions [n, 3] and lattice [3, 3] in A; the Fermi energy is the midpoint of HOMO and LUMO (eV).
    """
    folder.mkdir(parents=True, exist_ok=True)
    offsets = result["offsets"]
    for name in BLOCK_NAMES:
        matrix = result[name]
        matrix = (matrix + matrix.T) / 2  # remove last-bit asymmetry of the integrals / Fock build
        write_block_h5(folder / f"{name}.h5", blocks_from_dense(matrix, offsets))
    e = np.asarray(result["mo_energy"], dtype=np.float64)
    (folder / MO_ENERGY_FILE).write_text("".join(f"{float(v)!r}\n" for v in e))
    write_poscar(folder / "POSCAR", Poscar(lattice=lattice, species=list(species),
                                           positions=positions, comment=comment))
    nocc = int(result["nelectron"]) // 2
    write_info_json(folder / "info.json", {
        "atoms_quantity": len(species),
        "orbits_quantity": int(offsets[-1]),
        "orthogonal_basis": False,
        "spinful": False,
        "fermi_energy_eV": float((e[nocc - 1] + e[nocc]) / 2),
        "elements_orbital_map": result["elements_orbital_map"],
        "occupation": int(result["nelectron"]),
        "basis": basis_label,
    })


def write_spinful_files(folder: Path, species: Sequence[str], positions: np.ndarray, lattice: np.ndarray,
                        result: Dict, settings: Settings, comment: str) -> Dict[str, float]:
    """Write a spinful structure from :func:`~.gks.run_gks_soc` output; generator.json last.

    hamiltonian.h5 (eV) and density_matrix.h5 get the complex 2 n_i x 2 n_j blocks, Hermitized
    ((M + M^dagger) / 2); overlap.h5 the spinless real blocks. The Fermi energy is the midpoint of
    the highest occupied and lowest empty spin-orbital (eV); ``occupation`` the electron count.
    The written files are read back and checked (:func:`~.spin_checks.check_spinful_structure`);
    the numbers go to generator.json.

    Returns:
        the checks written to generator.json.
    """
    import pyscf

    from deeph_tf.data import load_structure

    from .spin_checks import check_spinful_structure

    folder.mkdir(parents=True, exist_ok=True)
    offsets = np.asarray(result["offsets"], dtype=np.int64)
    s = result["overlap"]
    write_block_h5(folder / "overlap.h5", blocks_from_dense((s + s.T) / 2, offsets))
    for name in ("hamiltonian", "density_matrix"):
        m = result[name]
        write_block_h5(folder / f"{name}.h5", blocks_from_dense((m + m.conj().T) / 2, 2 * offsets))
    e = np.asarray(result["mo_energy"], dtype=np.float64)
    (folder / MO_ENERGY_FILE).write_text("".join(f"{float(v)!r}\n" for v in e))
    write_poscar(folder / "POSCAR", Poscar(lattice=lattice, species=list(species),
                                           positions=positions, comment=comment))
    nel = int(result["nelectron"])
    info = {
        "atoms_quantity": len(species),
        "orbits_quantity": int(offsets[-1]),
        "orthogonal_basis": False,
        "spinful": True,
        "fermi_energy_eV": float((e[nel - 1] + e[nel]) / 2),
        "elements_orbital_map": result["elements_orbital_map"],
        "occupation": nel,
        "basis": settings.basis_label,
    }
    write_info_json(folder / "info.json", info)  # the folder is a partial one (.partial/) until renamed
    checks = check_spinful_structure(load_structure(folder), e)
    generator = {
        "tool": "tools/make_pyscf_dataset.py --spinful", "pyscf_version": pyscf.__version__,
        "method": "GKS", "with_soc": True, "collinear": result["collinear"], "xc": settings.xc,
        "basis": settings.basis, "ecp": settings.ecp, "ecp_elements": list(result["ecp_elements"]),
        "grid_level": settings.grid_level, "conv_tol": settings.conv_tol, "scf_cycles": result["scf_cycles"],
        "scf_mo_energy_shift_eV": result["scf_mo_energy_shift"],
        "checks": checks,
    }
    (folder / GENERATOR_FILE).write_text(json.dumps(generator, indent=2) + "\n")
    return checks


def required_files(forces: bool = False, spinful: bool = False) -> Tuple[str, ...]:
    """:data:`REQUIRED_FILES`, plus :data:`FORCE_FILE` with ``forces``, :data:`GENERATOR_FILE` if ``spinful``."""
    return REQUIRED_FILES + ((FORCE_FILE,) if forces else ()) + ((GENERATOR_FILE,) if spinful else ())


def missing_files(folder: Path, forces: bool = False, spinful: bool = False) -> List[str]:
    """Files of :func:`required_files` absent from ``folder``."""
    return [f for f in required_files(forces, spinful) if not (folder / f).is_file()]


def is_complete(folder: Path, forces: bool = False, spinful: bool = False) -> bool:
    """Whether ``folder`` exists with every file of :func:`required_files`."""
    return folder.is_dir() and not missing_files(folder, forces, spinful)


def check_existing(folder: Path, task: Task, settings: Settings) -> None:
    """Raise ValueError if a complete folder was not made by a run with these settings."""
    species, pos, _ = structure_geometry(task.molecule, task.index, settings)
    poscar = read_poscar(folder / "POSCAR")
    info = read_info_json(folder / "info.json")
    problems = []
    if list(poscar.species) != species:
        problems.append(f"species {poscar.species} != {species}")
    elif np.max(np.abs(poscar.positions - pos)) > GEOMETRY_MATCH_TOL:
        problems.append(f"positions differ by {np.max(np.abs(poscar.positions - pos)):.2e} A "
                        "(other --seed, --sigma, --rotate or --box?)")
    if bool(info.get("spinful")) != settings.spinful:
        problems.append(f"spinful {info.get('spinful')!r} != {settings.spinful}")
    if info.get("basis") != settings.basis_label:
        problems.append(f"basis {info.get('basis')!r} != {settings.basis_label!r}")
    if settings.forces:
        attrs = force_attrs(folder / FORCE_FILE)
        if attrs.get("grid_level") != settings.grid_level:
            problems.append(f"{FORCE_FILE} grid_level {attrs.get('grid_level')!r} != {settings.grid_level}")
    if problems:
        raise ValueError(f"{folder} exists but was made with other settings: {'; '.join(problems)}; "
                         "use another --out or remove it")


def force_attrs(path: Path) -> Dict[str, object]:
    """The attributes of a force.h5 as plain Python values ({} if it has none)."""
    import h5py

    with h5py.File(path, "r") as f:
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}


def write_structure(folder: Path, species: Sequence[str], positions: np.ndarray, result: Dict,
                    settings: Settings, comment: str) -> None:
    """Write the files of one dataset structure from :func:`~.scf.run_dft` output (info.json last).

    With ``result["energy_eV"]`` and ``result["forces_eV_per_A"]`` (from
    :func:`~.scf.scf_energy_forces`) also writes force.h5.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if settings.spinful:
        write_spinful_files(folder, species, positions, np.eye(3) * settings.box, result, settings, comment)
        return
    if "forces_eV_per_A" in result:
        import pyscf

        write_force_h5(folder / FORCE_FILE, result["energy_eV"], result["forces_eV_per_A"], attrs={
            "source": "tools/make_pyscf_dataset.py", "method": "RKS", "xc": settings.xc,
            "basis": settings.basis, "grid_level": settings.grid_level, "conv_tol": settings.conv_tol,
            "grid_response": True, "pyscf_version": pyscf.__version__})
    write_dft_files(folder, species, positions, np.eye(3) * settings.box, result, settings.basis_label, comment)
