"""One structure end to end (displace, SCF, F(k) on the band mesh, blocks, folder) and a resumable run.

Each structure is assembled in ``OUT/.partial/<sid>.<pid>`` and renamed into ``OUT/dft/<sid>`` only
when every file is written (info.json last), so an interrupted run never leaves a folder that reads
as complete; a complete folder is skipped after checking it was made with the same settings and
geometry, an incomplete one regenerated (as ``tools/pyscf_data``, whose pool this reuses).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from deeph_tf.conventions import HARTREE_TO_EV

from cp2k_data.folders import write_dft_bands, write_k_path
from cp2k_data.materials import Structure, band_path
from cp2k_data.plan import Task, plan, structure_of  # duck-typed on material, supercell, sigma, seed
from pyscf_data.generate import PARTIAL_DIRNAME, run_tasks

from .kmesh import mesh_index, mesh_k_frac, minimum_image_blocks

logger = logging.getLogger("make_soc_crystal_dataset")

GENERATOR_FILE = "generator.json"
DFT_BANDS_FILE = "dft_bands.h5"
#: Every file of a complete folder, info.json last.
REQUIRED_FILES: Tuple[str, ...] = ("POSCAR", "hamiltonian.h5", "overlap.h5", "K_PATH", DFT_BANDS_FILE,
                                   GENERATOR_FILE, "info.json")
#: Points per K_PATH segment (for dband).
K_PATH_POINTS = 40
#: Random validation k-points (off every mesh) per structure.
N_RANDOM_K = 2


@dataclass(frozen=True)
class Settings:
    """Everything that determines the data (``provenance``) plus where it goes."""
    out: Path
    material: str = "LiI"
    supercell: Tuple[int, int, int] = (1, 1, 1)
    sigma: float = 0.1
    seed: int = 0
    xc: str = "PBE"
    basis: str = "gth-dzvp"
    pseudo: str = "gth-pade"
    ecp: str = "stuttgart-so"
    exp_to_discard: float = 0.1
    conv_tol: float = 1e-10
    scf_mesh: Tuple[int, int, int] = (3, 3, 3)
    band_mesh: Tuple[int, int, int] = (6, 6, 6)
    block_radius: float = 9.0

    @property
    def basis_label(self) -> str:
        return f"{self.xc}/{self.basis}+{self.ecp}-SO"

    def provenance(self) -> Dict[str, object]:
        d = asdict(self)
        d.pop("out")
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def validation_k(structure: Structure, seed: int) -> Tuple[np.ndarray, List[str]]:
    """K_PATH corners and :data:`N_RANDOM_K` random points (reduced), with their labels."""
    seen: Dict[str, np.ndarray] = {}
    for a, ka, b, kb in band_path(structure):
        seen.setdefault(a, ka)
        seen.setdefault(b, kb)
    rng = np.random.default_rng(seed)
    k = [*seen.values(), *rng.uniform(-0.5, 0.5, size=(N_RANDOM_K, 3))]
    return np.array(k, dtype=np.float64), [*seen, *(["random"] * N_RANDOM_K)]


def compute_structure(task: Task, settings: Settings) -> Tuple[str, float, str]:
    """Run one structure into OUT/dft/<name>; (name, wall seconds, "" or the error)."""
    t0 = time.perf_counter()
    partial = settings.out / PARTIAL_DIRNAME / f"{task.name}.{os.getpid()}"
    try:
        from .scf import (bloch_fock, bloch_overlap, build_cell, deeph_matrices, fock_mesh_deviation,
                          pyscf_band_energies, run_scf)

        st = structure_of(task, settings)
        cell = build_cell(st.species, st.positions, st.lattice, settings.basis, settings.pseudo, settings.ecp,
                          settings.exp_to_discard)
        mf = run_scf(cell, settings.scf_mesh, settings.xc, settings.conv_tol)
        t_scf = time.perf_counter() - t0
        k_mesh = mesh_k_frac(settings.band_mesh)
        k_val, labels = validation_k(st, settings.seed + task.index)
        k_all = np.concatenate([k_mesh, k_val])
        kpts = cell.get_abs_kpts(k_all)
        fock, overlap = bloch_fock(mf, kpts), bloch_overlap(cell, kpts)
        fock_dev = fock_mesh_deviation(mf, fock[:len(k_mesh)], k_mesh)
        mats = deeph_matrices(cell, fock, overlap)
        offsets = np.asarray(mats["offsets"], dtype=np.int64)
        blocks, stats = minimum_image_blocks(
            {"hamiltonian": mats["hamiltonian"][:len(k_mesh)], "overlap": mats["overlap"][:len(k_mesh)]},
            k_mesh, settings.band_mesh, {"hamiltonian": 2 * offsets, "overlap": offsets},
            st.positions, st.lattice, settings.block_radius, real=("overlap",))
        # reference: PySCF's own eigenvalues, at the SCF k-points (on the band mesh) and off every mesh
        scf_frac = np.mod(np.round(cell.get_scaled_kpts(mf.kpts), 10), 1.0)
        k_ref = np.concatenate([scf_frac, k_val])
        ref_idx = [mesh_index(k_mesh, k) for k in scf_frac] + list(range(len(k_mesh), len(k_all)))
        ref = pyscf_band_energies(fock[ref_idx], overlap[ref_idx])
        nel = int(cell.nelectron)
        homo, lumo = float(ref[:, nel - 1].max()), float(ref[:, nel].min())
        fermi = 0.5 * (homo + lumo)
        if partial.exists():
            shutil.rmtree(partial)
        _write_folder(partial, st, blocks, mats["elements_orbital_map"], offsets, nel, fermi, settings,
                      k_ref, ref, {
                          "tool": "tools/make_soc_crystal_dataset.py", "settings": settings.provenance(),
                          "pyscf_version": __import__("pyscf").__version__, "method": "KGKS (GDF) with_soc",
                          "collinear": "col", "scf_cycles": int(getattr(mf, "cycles", -1)),
                          "e_tot_eV": float(mf.e_tot) * HARTREE_TO_EV,
                          "gap_eV": lumo - homo, "n_pairs": int(len(blocks["hamiltonian"].atom_pairs)),
                          "validation_labels": ["scf"] * len(scf_frac) + labels,
                          "band_fock_vs_scf_fock_eV": fock_dev, **stats,
                          "seconds": {"scf": t_scf, "total": time.perf_counter() - t0}})
        from .validate import check_folder

        checks = check_folder(partial)
        gen = json.loads((partial / GENERATOR_FILE).read_text())
        gen["checks"] = checks
        (partial / GENERATOR_FILE).write_text(json.dumps(gen, indent=2) + "\n")
        final = settings.out / "dft" / task.name
        if final.exists():
            shutil.rmtree(final)
        partial.rename(final)
        return task.name, time.perf_counter() - t0, ""
    except Exception as exc:  # noqa: BLE001 - reported per structure, the run goes on
        shutil.rmtree(partial, ignore_errors=True)
        logger.exception("%s failed", task.name)
        return task.name, time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"


def _write_folder(folder: Path, st: Structure, blocks, eom, offsets, nel: int, fermi: float, settings: Settings,
                  k_ref: np.ndarray, ref: np.ndarray, generator: Dict) -> None:
    from deeph_tf.data import Poscar, write_block_h5, write_info_json, write_poscar

    folder.mkdir(parents=True)
    write_block_h5(folder / "hamiltonian.h5", blocks["hamiltonian"])
    write_block_h5(folder / "overlap.h5", blocks["overlap"])
    write_poscar(folder / "POSCAR", Poscar(lattice=st.lattice, species=list(st.species), positions=st.positions,
                                           comment=f"{settings.material} {settings.basis_label} spinful=true"))
    write_k_path(folder / "K_PATH", band_path(st), K_PATH_POINTS)
    write_dft_bands(folder / DFT_BANDS_FILE, k_ref, ref, fermi, source="PySCF KGKS with_soc F[D](k)")
    (folder / GENERATOR_FILE).write_text(json.dumps(generator, indent=2) + "\n")
    write_info_json(folder / "info.json", {
        "atoms_quantity": len(st.species), "orbits_quantity": int(offsets[-1]), "orthogonal_basis": False,
        "spinful": True, "fermi_energy_eV": fermi, "elements_orbital_map": eom, "occupation": nel,
        "basis": settings.basis_label,
    })


def is_complete(folder: Path) -> bool:
    return folder.is_dir() and all((folder / f).is_file() for f in REQUIRED_FILES)


def check_existing(folder: Path, task: Task, settings: Settings) -> None:
    """ValueError if a complete folder was made with other settings or another geometry."""
    from deeph_tf.data import read_poscar

    stored = json.loads((folder / GENERATOR_FILE).read_text()).get("settings", {})
    want = settings.provenance()
    problems = [f"{k} {stored.get(k)!r} != {v!r}" for k, v in want.items() if stored.get(k) != v]
    st = structure_of(task, settings)
    if not problems and np.abs(read_poscar(folder / "POSCAR").positions - st.positions).max() > 1e-8:
        problems.append("positions differ")
    if problems:
        raise ValueError(f"{folder} exists and was made with other settings ({'; '.join(problems)}); "
                         "use another --out or --start-index, or delete it")


def generate(tasks: Sequence[Task], settings: Settings, workers: int = 1) -> Dict[str, object]:
    """Compute every task whose folder is not complete (see the module docstring)."""
    dft = settings.out / "dft"
    dft.mkdir(parents=True, exist_ok=True)
    todo, skipped = [], []
    for task in tasks:
        if is_complete(dft / task.name):
            check_existing(dft / task.name, task, settings)
            skipped.append(task.name)
        else:
            todo.append(task)
    for task in todo:
        for stale in (settings.out / PARTIAL_DIRNAME).glob(f"{task.name}.*"):
            shutil.rmtree(stale, ignore_errors=True)
    return run_tasks(compute_structure, todo, skipped, settings, workers)


__all__ = ["Settings", "Task", "plan", "structure_of", "compute_structure", "generate", "is_complete",
           "REQUIRED_FILES"]
