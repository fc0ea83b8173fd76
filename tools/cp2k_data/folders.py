"""The files of one structure folder: what a complete folder holds, writing it, checking a resumed one.

A folder holds POSCAR (Cartesian, the displaced positions as given to CP2K), info.json (written
last), hamiltonian.h5 (eV) and overlap.h5 with the same atom pairs, K_PATH (DeepH-dock format;
crystals only: a molecule has no k-path, and deeph_tf reads folders without one),
``dft_bands.h5`` (CP2K's own band energies at the validation k-points, the reference of
``--validate``), ``cp2k.inp`` (the input that made it) and ``generator.json`` (settings, time,
block counts, the conversion and block-radius errors measured at generation).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from deeph_tf.data import Poscar, read_info_json, read_poscar, write_block_h5, write_info_json, write_poscar
from deeph_tf.jsonutil import json_text

from .plan import Settings, Task, structure_of

#: CP2K's band energies at the validation k-points.
DFT_BANDS_FILE = "dft_bands.h5"
#: Settings, timings and errors of the run.
GENERATOR_FILE = "generator.json"
#: Every file of a complete crystal folder (info.json last: it marks completion inside the folder too).
REQUIRED_FILES: Tuple[str, ...] = ("POSCAR", "hamiltonian.h5", "overlap.h5", "K_PATH", DFT_BANDS_FILE,
                                   "cp2k.inp", GENERATOR_FILE, "info.json")
#: Every file of a complete molecule folder (no K_PATH).
MOLECULE_REQUIRED_FILES: Tuple[str, ...] = tuple(f for f in REQUIRED_FILES if f != "K_PATH")
#: Position tolerance (A) when checking that an existing structure belongs to this run.
GEOMETRY_MATCH_TOL = 1e-8


def write_k_path(path: Path, segments: Sequence[Tuple[str, np.ndarray, str, np.ndarray]], n_points: int) -> None:
    """DeepH-dock's K_PATH: ``n k1 k2 k3 k1' k2' k3' label label'`` per segment (reduced k)."""
    rows = []
    for a, ka, b, kb in segments:
        label = {"G": "GAMMA"}
        rows.append(f"{n_points:d} " + " ".join(f"{v:.10f}" for v in (*ka, *kb))
                    + f" {label.get(a, a)} {label.get(b, b)}\n")
    path.write_text("".join(rows))


def write_dft_bands(path: Path, k_frac: np.ndarray, energies_eV: np.ndarray, fermi_eV: float,
                    source: str = "CP2K BAND_STRUCTURE") -> None:
    """Reference band energies [n_k, n_bands] (eV) at reduced ``k_frac`` [n_k, 3]."""
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("k_frac", data=np.asarray(k_frac, np.float64))
        f.create_dataset("energies_eV", data=np.asarray(energies_eV, np.float64))
        f.attrs["fermi_energy_eV"] = float(fermi_eV)
        f.attrs["source"] = source


def read_dft_bands(path: Path) -> Tuple[np.ndarray, np.ndarray, float]:
    """([n_k, 3] reduced k, [n_k, n_bands] eV, Fermi energy eV) of :func:`write_dft_bands`."""
    import h5py

    with h5py.File(path, "r") as f:
        return np.array(f["k_frac"]), np.array(f["energies_eV"]), float(f.attrs["fermi_energy_eV"])


def write_folder(folder: Path, species: Sequence[str], positions: np.ndarray, lattice: np.ndarray,
                 blocks: Dict, info: Dict, k_path: Sequence, k_path_points: int, bands: Tuple,
                 cp2k_input: str, generator: Dict) -> None:
    """Write every file of :data:`REQUIRED_FILES` into ``folder`` (info.json last); no K_PATH where
    ``k_path`` is empty (a molecule)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_block_h5(folder / "hamiltonian.h5", blocks["hamiltonian"])
    write_block_h5(folder / "overlap.h5", blocks["overlap"])
    write_poscar(folder / "POSCAR", Poscar(lattice=lattice, species=list(species), positions=positions,
                                           comment=generator["comment"]))
    if len(k_path):
        write_k_path(folder / "K_PATH", k_path, k_path_points)
    write_dft_bands(folder / DFT_BANDS_FILE, *bands)
    (folder / "cp2k.inp").write_text(cp2k_input)
    (folder / GENERATOR_FILE).write_text(json_text(generator) + "\n")
    write_info_json(folder / "info.json", info)


def missing_files(folder: Path, periodic: bool = True) -> List[str]:
    """The files of a complete folder (a crystal's if ``periodic``, else a molecule's) it lacks."""
    return [f for f in (REQUIRED_FILES if periodic else MOLECULE_REQUIRED_FILES) if not (folder / f).is_file()]


def is_complete(folder: Path, periodic: bool = True) -> bool:
    return folder.is_dir() and not missing_files(folder, periodic)


def check_existing(folder: Path, task: Task, settings: Settings) -> None:
    """Raise ValueError if a complete folder was not made by a run with these settings."""
    structure = structure_of(task, settings)
    poscar = read_poscar(folder / "POSCAR")
    stored = json.loads((folder / GENERATOR_FILE).read_text()).get("settings", {})
    problems = []
    if list(poscar.species) != structure.species:
        problems.append("species differ")
    elif np.abs(poscar.positions - structure.positions).max() > GEOMETRY_MATCH_TOL:
        problems.append("positions differ")
    for key, value in settings.provenance().items():
        if stored.get(key) != value:
            problems.append(f"{key} {stored.get(key)!r} != {value!r}")
    if read_info_json(folder / "info.json").get("basis") != settings.basis_label:
        problems.append("basis differs")
    if problems:
        raise ValueError(f"{folder} exists and was made with other settings ({'; '.join(problems)}); "
                         f"use another --out or --start-index, or delete it")
