#!/usr/bin/env python
"""Generate real DFT datasets of small molecules in the DeepH unified format with PySCF.

For every structure index k the tool takes the embedded equilibrium geometry of a
molecule, adds Gaussian displacements (``--sigma`` Angstrom per Cartesian
coordinate, default 0.05), optionally applies a uniformly random rotation about the
centroid (``--rotate``), centres the molecule in a cubic box (``--box``, default
20 A; the box only matters for the POSCAR, all blocks are cell-0 blocks), runs
restricted Kohn-Sham DFT (``--xc``/``--basis``/``--grid-level``/``--conv-tol``) and writes
``OUT/dft/<sid>/``::

    POSCAR              VASP 5, Cartesian, Angstrom
    info.json           atoms_quantity, orbits_quantity, orthogonal_basis=false, spinful=false,
                        fermi_energy_eV (midpoint of HOMO and LUMO), elements_orbital_map,
                        occupation (electron count), basis ("<xc>/<basis>")
    hamiltonian.h5      Kohn-Sham matrix F[D] = mf.get_fock(dm=converged D), eV, symmetrized
    overlap.h5          S
    density_matrix.h5   D, both spins (trace(D S) = occupation)
    mo_energy_eV.txt    eigenvalues of (F[D], S) from PySCF's mf.eig, eV: reference for --validate
    force.h5            only with --forces: total energy (eV) and forces (eV/A), see below

All blocks (0, 0, 0, i, j) over atom pairs are written, orbitals in DeepH order
(shells ascending in l, m = -l..l, p = (y, z, x); ``deeph_tf.conventions``). The PySCF
calculation and the AO reordering are those of ``tools/make_rotated_water.py``
(``run_dft``, which uses ``deeph_ao_order``), imported from there, as is ``validate``.

Forces (``--forces``): after the SCF of the blocks, a second RKS with the same settings,
started from the converged density (so it converges in a cycle or two), gives the
total energy ``mf.e_tot`` and the analytic nuclear gradient
(``mf.nuc_grad_method()`` with ``grid_response = True``, so that the forces are the
exact derivative of the grid-integrated energy: without the grid response, grid level
1-3 gradients are off by 1e-4 to 3e-2 eV/A). ``force.h5``
(:mod:`deeph_tf.data.force_h5`) gets ``energy = e_tot * HARTREE_TO_EV`` (eV) and
``force = -grad * HARTREE_TO_EV / BOHR_TO_ANGSTROM`` (eV/A, POSCAR atom order), with the
PySCF settings as file attributes (``xc``, ``basis``, ``grid_level``, ``conv_tol``,
``grid_response``, ...); the POSCAR comment says ``forces=true``. With ``--forces``
a folder is complete only with force.h5 (a resumed run regenerates folders without
it). ``--validate`` checks every force.h5 (shapes, finite values) and, for the first
``--check-forces N`` structures (default 1), compares the largest force component
with a central finite difference (step 1e-3 A) of PySCF energies recomputed with the
stored settings (to 1e-3 eV/A), and the stored energy with the mean of the two
displaced energies (to 1e-3 eV). Without ``--forces`` nothing changes: no force.h5,
same files, bit for bit.

Reproducibility: structure k draws its displacements (then its rotation) from
``numpy.random.default_rng(seed + k)``, so a structure does not depend on the number
of workers or on how a dataset is split into runs. With several molecules, structure
k is molecule ``molecules[k % len(molecules)]`` (round robin) and its folder is named
``<molecule>-<k:06d>`` (``ethanol-000003``); with one molecule just ``<k:06d>``
(``--name-prefix`` overrides). ``--start-index`` extends a dataset.

Resuming: a structure whose folder exists with every file above is skipped (after
checking that its species, geometry and ``basis`` match this run's settings; a
mismatch is an error, never a silent mix); an incomplete folder is regenerated. Each
structure is written in ``OUT/.partial/<sid>.<pid>`` (outside ``dft/``) and renamed
into ``OUT/dft/`` only when complete, so an interrupted run never leaves a
half-written structure folder that looks complete.

Parallelism: ``--workers N`` (default: all CPUs) runs a spawn-started process pool
with one OpenMP/BLAS thread per worker (``OMP_NUM_THREADS=1`` and
``pyscf.lib.num_threads(1)`` in the pool initializer); ``--workers 1`` runs in this
process with PySCF's default threads.

Equilibrium geometries (``MOLECULES``): optimized once, for this tool, at PBE/def2-SVP
(PySCF RKS, grid level 3 with grid response in the gradient, conv_tol 1e-11), with
SciPy's BFGS on Cartesian coordinates driven by PySCF's analytic gradients until the
largest gradient component was below 1e-5 Hartree/Bohr. ``pyscf.geomopt`` was not
used because neither geomeTRIC nor pyberny is installed; ``--reoptimize NAME`` reruns
the same optimizer from the embedded geometry (needs nothing beyond PySCF and SciPy).
Starting points: experimental geometries for water, methane, ammonia, formaldehyde,
hydrogen cyanide; standard Z-matrices (anti conformers) for methanol and ethanol; an
idealized planar hexagon for uracil (diketo) and for malondialdehyde (the Cs enol
tautomer with the intramolecular O-H...O bond, as in MD17).

The committed fixture ``tests/fixtures/mixed_molecules`` (8 structures: methane,
ammonia, water, formaldehyde, hydrogen cyanide, methanol, methane, ammonia) was made
and checked with::

    python tools/make_pyscf_dataset.py --out tests/fixtures/mixed_molecules --molecule mix \\
        --n-structures 8 --seed 0 --sigma 0.05 --rotate --xc PBE --basis def2-SVP \\
        --grid-level 3 --conv-tol 1e-10 --workers 2
    python tools/make_pyscf_dataset.py --validate tests/fixtures/mixed_molecules

Timings per structure at PBE/def2-SVP, grid level 3, conv_tol 1e-10 (SCF and writing,
imports excluded), measured on the 2-core development VM (AMD EPYC, 2 cores, idle)::

    molecule (orbitals)   --workers 1,            --workers 1,             --workers 2 (4 structures):
                          OMP_NUM_THREADS=1       OMP_NUM_THREADS=2        run wall / structure (each)
    water (24)            0.3 s                   0.5 s                    0.4 s  (0.35 s each)
    ethanol (72)          3.0 s                   3.7 s                    1.8 s  (3.1 s each)
    uracil (132)          14 s                    13-15 s                  8.4 s  (16 s each)

PySCF gains nothing from a second thread at these sizes, so one process per core
(the default) is the efficient setting.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

_TOOLS = Path(__file__).resolve().parent
_REPO = _TOOLS.parent
for _p in (str(_REPO), str(_TOOLS)):  # run as a script from anywhere; spawned workers inherit sys.path
    if _p not in sys.path:
        sys.path.insert(0, _p)

from deeph_tf.conventions import BOHR_TO_ANGSTROM, HARTREE_TO_EV, euler_zyz_to_matrix  # noqa: E402
from deeph_tf.data import (DataFormatError, Poscar, blocks_from_dense, is_structure_folder,  # noqa: E402
                           read_info_json, read_poscar, write_block_h5, write_info_json, write_poscar)
from deeph_tf.data.force_h5 import FORCE_FILENAME, read_force_h5, write_force_h5  # noqa: E402
from make_rotated_water import (BLOCK_NAMES, MO_ENERGY_FILE, deeph_ao_order, random_euler_angles,  # noqa: E402
                                run_dft)
from make_rotated_water import validate as _validate_blocks  # noqa: E402

logger = logging.getLogger("make_pyscf_dataset")

#: Every file of a complete structure folder.
REQUIRED_FILES: Tuple[str, ...] = ("POSCAR", "info.json") + tuple(f"{n}.h5" for n in BLOCK_NAMES) + (MO_ENERGY_FILE,)
#: Energy and forces (eV, eV/A), written with --forces (then required too).
FORCE_FILE = FORCE_FILENAME
#: Central finite-difference step (A) of the --validate force check, and its tolerances.
FD_STEP = 1e-3
FD_FORCE_TOL = 1e-3  # eV/A
FD_ENERGY_TOL = 1e-3  # eV: |mean of the displaced energies - stored energy| (curvature error ~ k h^2 / 2)
#: Where structures are assembled before they are renamed into OUT/dft (outside dft/ on purpose).
PARTIAL_DIRNAME = ".partial"
#: Environment variables that cap the threads of one worker.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: Position tolerance (A) when checking that an existing structure belongs to this run.
GEOMETRY_MATCH_TOL = 1e-8


# ----------------------------------------------------------------------------- molecules
@dataclass(frozen=True)
class Molecule:
    """An equilibrium geometry: species and [n, 3] Cartesian positions in Angstrom."""

    species: Tuple[str, ...]
    positions: Tuple[Tuple[float, float, float], ...]

    def coordinates(self) -> np.ndarray:
        return np.array(self.positions, dtype=np.float64)


#: PBE/def2-SVP equilibrium geometries (Angstrom, centroid at the origin); see the module docstring.
MOLECULES: Dict[str, Molecule] = {}  # filled below from _EQUILIBRIUM

#: Small molecules used by "mix" (elements H, C, N, O; with def2-SVP shells s, p, d).
MIX_MOLECULES: Tuple[str, ...] = ("methane", "ammonia", "water", "formaldehyde", "hydrogen_cyanide", "methanol")
#: The MD17 molecules of the molecular-Hamiltonian literature that are built in.
MD17_MOLECULES: Tuple[str, ...] = ("water", "ethanol", "malondialdehyde", "uracil")
#: Alternative spellings accepted by --molecule.
ALIASES: Dict[str, str] = {"hcn": "hydrogen_cyanide", "hydrogen-cyanide": "hydrogen_cyanide",
                           "h2o": "water", "ch4": "methane", "nh3": "ammonia", "ch2o": "formaldehyde",
                           "ch3oh": "methanol", "mda": "malondialdehyde"}


def molecule_names(values: Sequence[str]) -> List[str]:
    """Resolve ``--molecule`` values (repeatable, comma lists, aliases, "mix") to unique names, in order."""
    names: List[str] = []
    for value in values:
        for token in str(value).split(","):
            token = token.strip().lower().replace(" ", "_")
            if not token:
                continue
            expanded = list(MIX_MOLECULES) if token == "mix" else [ALIASES.get(token, token)]
            for name in expanded:
                if name not in MOLECULES:
                    raise ValueError(f"unknown molecule {token!r}; known: {', '.join(sorted(MOLECULES))} "
                                     f"(or 'mix' = {','.join(MIX_MOLECULES)})")
                if name not in names:
                    names.append(name)
    if not names:
        raise ValueError("no molecule given")
    return names


# ----------------------------------------------------------------------------- plan and geometry
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

    @property
    def basis_label(self) -> str:
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


# ----------------------------------------------------------------------------- energy and forces
def _rks(species: Sequence[str], positions: np.ndarray, xc: str, basis: str, grid_level: int, conv_tol: float):
    """The PySCF RKS object of :func:`make_rotated_water.run_dft` (lab-frame grid), not yet run."""
    from pyscf import dft, gto

    mol = gto.M(atom=[(s, tuple(p)) for s, p in zip(species, positions)], basis=basis,
                unit="Angstrom", charge=0, spin=0, cart=False, verbose=0)
    mf = dft.RKS(mol)
    mf.xc = xc
    mf.grids.level = grid_level
    mf.conv_tol = conv_tol
    mf.conv_tol_grad = np.sqrt(conv_tol) / 10
    mf.max_cycle = 200
    mf.init_guess = "minao"
    return mf


def _run_scf(mf, dm0: Optional[np.ndarray] = None) -> None:
    mf.kernel(dm0=dm0)
    if not mf.converged:
        raise RuntimeError(f"SCF did not converge for {mf.xc}/{mf.mol.basis}")


def scf_energy_forces(species: Sequence[str], positions: np.ndarray, xc: str, basis: str, grid_level: int,
                      conv_tol: float, dm0_deeph: Optional[np.ndarray] = None) -> Tuple[float, np.ndarray]:
    """Total energy (eV) and forces [n, 3] (eV/A) of the RKS of ``run_dft`` at positions [n, 3] (A).

    The gradient includes the grid response (exact derivative of the grid-integrated
    energy). ``dm0_deeph``: a converged density matrix in DeepH orbital order (``run_dft``'s
    ``density_matrix``) to start the SCF from.
    """
    mf = _rks(species, positions, xc, basis, grid_level, conv_tol)
    dm0 = None
    if dm0_deeph is not None:
        perm, _, _ = deeph_ao_order(mf.mol)
        inv = np.argsort(perm)  # deeph = pyscf[perm][:, perm]  =>  pyscf = deeph[inv][:, inv]
        dm0 = np.asarray(dm0_deeph)[np.ix_(inv, inv)]
    _run_scf(mf, dm0)
    grad = mf.nuc_grad_method()
    grad.grid_response = True
    gradient = np.asarray(grad.kernel(), dtype=np.float64)  # Hartree/Bohr
    return float(mf.e_tot) * HARTREE_TO_EV, -gradient * (HARTREE_TO_EV / BOHR_TO_ANGSTROM)


def scf_energy(species: Sequence[str], positions: np.ndarray, xc: str, basis: str, grid_level: int,
               conv_tol: float) -> float:
    """Total RKS energy (eV) at positions [n, 3] (A), same settings as :func:`scf_energy_forces`."""
    mf = _rks(species, positions, xc, basis, grid_level, conv_tol)
    _run_scf(mf)
    return float(mf.e_tot) * HARTREE_TO_EV


def check_forces_fd(folder: Path, step: float = FD_STEP) -> Dict[str, float]:
    """Compare force.h5 with a central finite difference of PySCF energies, largest component.

    The PySCF settings come from the attributes of force.h5 (written with ``--forces``);
    the displaced SCFs use conv_tol min(stored, 1e-10).

    Returns:
        {"atom", "axis", "force", "fd_force", "force_err" (eV/A), "energy_err" (eV)}.

    Raises:
        AssertionError: force.h5 lacks the PySCF settings.
    """
    path = folder / FORCE_FILE
    poscar = read_poscar(folder / "POSCAR")
    labels = read_force_h5(path, n_atoms=poscar.n_atoms, lattice=poscar.lattice)
    attrs = _force_attrs(path)
    missing = [k for k in ("xc", "basis", "grid_level", "conv_tol") if k not in attrs]
    if missing:
        raise AssertionError(f"{path}: no PySCF setting(s) {', '.join(missing)} in its attributes (written by "
                             "--forces); cannot recompute the energy")
    xc, basis, level = str(attrs["xc"]), str(attrs["basis"]), int(attrs["grid_level"])
    conv_tol = min(float(attrs["conv_tol"]), 1e-10)
    atom, axis = (int(v) for v in np.unravel_index(np.argmax(np.abs(labels.forces)), labels.forces.shape))
    energies = []
    for sign in (1.0, -1.0):
        pos = poscar.positions.copy()
        pos[atom, axis] += sign * step
        energies.append(scf_energy(poscar.species, pos, xc, basis, level, conv_tol))
    fd = -(energies[0] - energies[1]) / (2 * step)
    force = float(labels.forces[atom, axis])
    return {"atom": atom, "axis": axis, "force": force, "fd_force": fd, "force_err": abs(force - fd),
            "energy_err": abs((energies[0] + energies[1]) / 2 - labels.energy)}


# ----------------------------------------------------------------------------- folders
def required_files(forces: bool = False) -> Tuple[str, ...]:
    """:data:`REQUIRED_FILES`, plus :data:`FORCE_FILE` with ``forces``."""
    return REQUIRED_FILES + ((FORCE_FILE,) if forces else ())


def missing_files(folder: Path, forces: bool = False) -> List[str]:
    """Files of :func:`required_files` absent from ``folder``."""
    return [f for f in required_files(forces) if not (folder / f).is_file()]


def is_complete(folder: Path, forces: bool = False) -> bool:
    return folder.is_dir() and not missing_files(folder, forces)


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
    if info.get("basis") != settings.basis_label:
        problems.append(f"basis {info.get('basis')!r} != {settings.basis_label!r}")
    if settings.forces:
        attrs = _force_attrs(folder / FORCE_FILE)
        if attrs.get("grid_level") != settings.grid_level:
            problems.append(f"{FORCE_FILE} grid_level {attrs.get('grid_level')!r} != {settings.grid_level}")
    if problems:
        raise ValueError(f"{folder} exists but was made with other settings: {'; '.join(problems)}; "
                         "use another --out or remove it")


def _force_attrs(path: Path) -> Dict[str, object]:
    """The attributes of a force.h5 as plain Python values ({} if it has none)."""
    import h5py

    with h5py.File(path, "r") as f:
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}


def write_structure(folder: Path, species: Sequence[str], positions: np.ndarray, result: Dict,
                    settings: Settings, comment: str) -> None:
    """Write the files of one structure from :func:`make_rotated_water.run_dft` output (info.json last).

    With ``result["energy_eV"]`` and ``result["forces_eV_per_A"]`` (from
    :func:`scf_energy_forces`) also writes force.h5.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if "forces_eV_per_A" in result:
        import pyscf

        write_force_h5(folder / FORCE_FILE, result["energy_eV"], result["forces_eV_per_A"], attrs={
            "source": "tools/make_pyscf_dataset.py", "method": "RKS", "xc": settings.xc,
            "basis": settings.basis, "grid_level": settings.grid_level, "conv_tol": settings.conv_tol,
            "grid_response": True, "pyscf_version": pyscf.__version__})
    offsets = result["offsets"]
    for name in BLOCK_NAMES:
        matrix = result[name]
        matrix = (matrix + matrix.T) / 2  # remove last-bit asymmetry of the integrals / Fock build
        write_block_h5(folder / f"{name}.h5", blocks_from_dense(matrix, offsets))
    e = np.asarray(result["mo_energy"], dtype=np.float64)
    (folder / MO_ENERGY_FILE).write_text("".join(f"{float(v)!r}\n" for v in e))
    write_poscar(folder / "POSCAR", Poscar(lattice=np.eye(3) * settings.box, species=list(species),
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
        "basis": settings.basis_label,
    })


def compute_structure(task: Task, settings: Settings) -> Tuple[str, float, str]:
    """Run DFT for one structure and move its finished folder into OUT/dft.

    Returns:
        (name, wall seconds, "" on success or an error message).
    """
    t0 = time.perf_counter()
    partial = settings.out / PARTIAL_DIRNAME / f"{task.name}.{os.getpid()}"
    try:
        species, pos, euler = structure_geometry(task.molecule, task.index, settings)
        result = run_dft(species, pos, settings.xc, settings.basis, settings.grid_level, q_frame=None,
                         conv_tol=settings.conv_tol)
        if settings.forces:
            result["energy_eV"], result["forces_eV_per_A"] = scf_energy_forces(
                species, pos, settings.xc, settings.basis, settings.grid_level, settings.conv_tol,
                dm0_deeph=result["density_matrix"])
        if partial.exists():
            shutil.rmtree(partial)
        rot = "" if euler is None else " euler_zyz=" + ",".join(f"{a:.6f}" for a in euler)
        forces = " forces=true" if settings.forces else ""
        comment = (f"{task.molecule} {settings.basis_label} seed={settings.seed + task.index} "
                   f"sigma={settings.sigma}{rot}{forces} (tools/make_pyscf_dataset.py)")
        write_structure(partial, species, pos, result, settings, comment)
        final = settings.out / "dft" / task.name
        if final.exists():  # an incomplete leftover (complete ones are skipped before)
            shutil.rmtree(final)
        os.rename(partial, final)
        logger.debug("%s: %d orbitals, |eig(F[D]) - mo_energy| = %.1e eV", task.name,
                     int(result["offsets"][-1]), result["scf_mo_energy_shift"])
        return task.name, time.perf_counter() - t0, ""
    except Exception as exc:  # reported by the caller; other structures go on
        with contextlib.suppress(OSError):
            shutil.rmtree(partial)
        return task.name, time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"


def _init_worker() -> None:
    """Pool initializer: one OpenMP/BLAS thread per worker process; Ctrl-C is left to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for var in THREAD_ENV_VARS:
        os.environ[var] = "1"
    from pyscf import lib

    lib.num_threads(1)


def _terminate_pool(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Cancel queued structures and stop the running ones (their .partial folders are cleaned next run)."""
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        with contextlib.suppress(Exception):
            proc.terminate()
    for proc in processes:
        with contextlib.suppress(Exception):
            proc.join(timeout=10)


@contextlib.contextmanager
def _single_thread_env() -> Iterator[None]:
    """Set the thread variables to 1 while worker processes are started (they read them at import)."""
    saved = {v: os.environ.get(v) for v in THREAD_ENV_VARS}
    os.environ.update({v: "1" for v in THREAD_ENV_VARS})
    try:
        yield
    finally:
        for v, old in saved.items():
            if old is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = old


def generate(tasks: Sequence[Task], settings: Settings, workers: int = 1) -> Dict[str, object]:
    """Compute every task whose folder is not complete yet.

    Returns:
        {"computed": [names], "skipped": [names], "failed": {name: message}, "seconds": {name: s}}.

    Raises:
        ValueError: if a complete folder of this plan was made with other settings.
    """
    dft_dir = settings.out / "dft"
    dft_dir.mkdir(parents=True, exist_ok=True)
    todo, skipped = [], []
    for task in tasks:
        folder = dft_dir / task.name
        if is_complete(folder, settings.forces):
            check_existing(folder, task, settings)
            skipped.append(task.name)
        else:
            if folder.exists():
                logger.info("%s: incomplete (missing %s), regenerating", task.name,
                            ", ".join(missing_files(folder, settings.forces)))
            todo.append(task)
    if skipped:
        logger.info("skipping %d complete structures", len(skipped))
    for task in todo:  # leftovers of an interrupted run
        for stale in (settings.out / PARTIAL_DIRNAME).glob(f"{task.name}.*"):
            shutil.rmtree(stale, ignore_errors=True)
    summary: Dict[str, object] = {"computed": [], "skipped": skipped, "failed": {}, "seconds": {}}
    if not todo:
        return summary
    try:
        from tqdm import tqdm
        bar = tqdm(total=len(todo), unit="structure", disable=not sys.stderr.isatty())
    except ImportError:  # pragma: no cover
        bar = None

    def record(name: str, seconds: float, error: str) -> None:
        summary["seconds"][name] = seconds
        if error:
            summary["failed"][name] = error
            logger.error("%s: FAILED after %.1f s: %s", name, seconds, error)
        else:
            summary["computed"].append(name)
            logger.info("%s: done in %.1f s", name, seconds)
        if bar is not None:
            bar.update(1)

    workers = max(1, min(int(workers), len(todo)))
    t0 = time.perf_counter()
    try:
        if workers == 1:
            for task in todo:
                record(*compute_structure(task, settings))
        else:
            ctx = multiprocessing.get_context("spawn")  # no fork after OpenMP was used in this process
            with _single_thread_env():
                pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                                              initializer=_init_worker)
                try:
                    futures = [pool.submit(compute_structure, task, settings) for task in todo]
                    for fut in concurrent.futures.as_completed(futures):
                        record(*fut.result())
                except BaseException:  # Ctrl-C or a broken pool: stop now, do not finish the queue
                    _terminate_pool(pool)
                    raise
                pool.shutdown(wait=True)
    finally:
        if bar is not None:
            bar.close()
        with contextlib.suppress(OSError):
            (settings.out / PARTIAL_DIRNAME).rmdir()  # only if empty
    logger.info("computed %d, skipped %d, failed %d structures in %.1f s (%d workers) -> %s",
                len(summary["computed"]), len(skipped), len(summary["failed"]),
                time.perf_counter() - t0, workers, dft_dir)
    return summary


# ----------------------------------------------------------------------------- validate
def validate(root: Path, eig_tol: float = 1e-6, herm_tol: float = 1e-8, check_forces: int = 1,
             force_tol: float = FD_FORCE_TOL, energy_tol: float = FD_ENERGY_TOL) -> Dict[str, float]:
    """Check a generated dataset (``root`` or ``root/dft``); raise AssertionError naming the structure.

    Every folder under dft/ must hold all :data:`REQUIRED_FILES`; then, per structure
    (``make_rotated_water.validate``): it loads, every block file is Hermitian to
    ``herm_tol``, the eigenvalues of (H, S) read from disk equal the stored PySCF orbital
    energies of the same F[D] and S to ``eig_tol`` eV, and trace(D S) equals the occupation.
    If any folder has force.h5, all must; each must read (:func:`read_force_h5`, one force
    per POSCAR atom), and the first ``check_forces`` of them must pass
    :func:`check_forces_fd` to ``force_tol`` eV/A and ``energy_tol`` eV.

    Returns:
        ``make_rotated_water.validate``'s summary, plus ``n_force_files`` and, when forces
        were checked, ``force_fd_err`` (eV/A) and ``energy_fd_err`` (eV), the largest errors.
    """
    root = Path(root)
    dft_dir = root / "dft" if (root / "dft").is_dir() and not is_structure_folder(root) else root
    if not dft_dir.is_dir():
        raise AssertionError(f"{root}: not a directory")
    folders = sorted(p for p in dft_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise AssertionError(f"no structure folders under {dft_dir}")
    for folder in folders:
        missing = missing_files(folder)
        if missing:
            raise AssertionError(f"{folder}: incomplete structure, missing {', '.join(missing)}")
    with_forces = [f for f in folders if (f / FORCE_FILE).is_file()]
    if with_forces and len(with_forces) < len(folders):
        lacking = next(f for f in folders if not (f / FORCE_FILE).is_file())
        raise AssertionError(f"{lacking}: no {FORCE_FILE}, but {len(with_forces)} of {len(folders)} structures have "
                             f"one (a dataset made with --forces has it everywhere)")
    summary = _validate_blocks(dft_dir, eig_tol=eig_tol, herm_tol=herm_tol, rotation_tol=None)
    for folder in with_forces:
        poscar = read_poscar(folder / "POSCAR")
        read_force_h5(folder / FORCE_FILE, n_atoms=poscar.n_atoms, lattice=poscar.lattice)
    summary["n_force_files"] = len(with_forces)
    for folder in with_forces[:max(0, check_forces)]:
        fd = check_forces_fd(folder)
        summary["force_fd_err"] = max(summary.get("force_fd_err", 0.0), fd["force_err"])
        summary["energy_fd_err"] = max(summary.get("energy_fd_err", 0.0), fd["energy_err"])
        logger.info("%s: force on atom %d along %s: %.6f eV/A, central finite difference %.6f eV/A "
                    "(|diff| %.1e); |mean displaced energy - stored| = %.1e eV", folder.name, fd["atom"],
                    "xyz"[fd["axis"]], fd["force"], fd["fd_force"], fd["force_err"], fd["energy_err"])
        if fd["force_err"] > force_tol:
            raise AssertionError(f"{folder / FORCE_FILE}: force on atom {fd['atom']} along {'xyz'[fd['axis']]} is "
                                 f"{fd['force']:.6f} eV/A but the finite difference of PySCF energies gives "
                                 f"{fd['fd_force']:.6f} (|diff| {fd['force_err']:.1e} > {force_tol})")
        if fd["energy_err"] > energy_tol:
            raise AssertionError(f"{folder / FORCE_FILE}: energy differs from the recomputed PySCF energy by "
                                 f"{fd['energy_err']:.1e} eV > {energy_tol}")
    return summary


# ----------------------------------------------------------------------------- equilibrium geometries
def optimize_geometry(species: Sequence[str], positions: np.ndarray, xc: str = "PBE", basis: str = "def2-SVP",
                      grid_level: int = 3, gtol: float = 1e-5, max_steps: int = 500
                      ) -> Tuple[np.ndarray, float, float]:
    """Minimize the RKS energy with SciPy's BFGS over Cartesian coordinates (A in, A out).

    Uses PySCF's analytic gradients with the grid response (so energy and gradient are
    consistent). Stops when the largest gradient component is below ``gtol`` Hartree/Bohr.

    Returns:
        (positions [n, 3] A, energy Hartree, max |gradient| Hartree/Bohr).
    """
    import scipy.optimize
    from pyscf import dft, gto

    from deeph_tf.conventions import BOHR_TO_ANGSTROM

    mol = gto.M(atom=[(s, tuple(p)) for s, p in zip(species, positions)], basis=basis, unit="Angstrom",
                verbose=0)
    mf = dft.RKS(mol)
    mf.xc = xc
    mf.grids.level = grid_level
    mf.conv_tol = 1e-11
    grad = mf.nuc_grad_method()
    grad.grid_response = True
    scanner = grad.as_scanner()

    def energy_and_gradient(x: np.ndarray) -> Tuple[float, np.ndarray]:
        e, g = scanner(mol.set_geom_(x.reshape(-1, 3), unit="Bohr", inplace=False))
        return float(e), np.asarray(g).ravel()

    res = scipy.optimize.minimize(energy_and_gradient, mol.atom_coords().ravel(), jac=True, method="BFGS",
                                  options={"gtol": gtol, "maxiter": max_steps})
    out = res.x.reshape(-1, 3) * BOHR_TO_ANGSTROM
    return out - out.mean(axis=0), float(res.fun), float(np.max(np.abs(res.jac)))


def _reoptimize(name: str, xc: str, basis: str, grid_level: int) -> None:
    mol = MOLECULES[name]
    t0 = time.perf_counter()
    pos, energy, gmax = optimize_geometry(mol.species, mol.coordinates(), xc, basis, grid_level)
    ref = mol.coordinates() - mol.coordinates().mean(axis=0)
    # compare internal geometry (distances), insensitive to the small rigid motion of BFGS steps
    d_new = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    d_ref = np.linalg.norm(ref[:, None] - ref[None], axis=-1)
    print(f"# {name}: {xc}/{basis} grid level {grid_level}: E = {energy:.10f} Ha, max |grad| = {gmax:.1e} "
          f"Ha/Bohr, max |distance change| vs embedded = {np.max(np.abs(d_new - d_ref)):.1e} A, "
          f"{time.perf_counter() - t0:.0f} s")
    for s, p in zip(mol.species, pos):
        print(f"    ({s!r}, ({p[0]: .6f}, {p[1]: .6f}, {p[2]: .6f})),")


# ----------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=f"molecules: {', '.join(MOLECULES)}; mix = {','.join(MIX_MOLECULES)}")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", type=Path, help="write OUT/dft/<sid>/")
    mode.add_argument("--validate", type=Path, metavar="DIR",
                      help="check a dataset (DIR or DIR/dft): eigenvalues vs stored PySCF ones, Hermiticity, "
                           "force.h5 (see --check-forces)")
    mode.add_argument("--reoptimize", metavar="NAME",
                      help="rerun the equilibrium-geometry optimization of NAME from the embedded geometry "
                           "and print it (maintenance)")
    p.add_argument("--molecule", action="append", default=None,
                   help="molecule name, repeatable or comma list; 'mix' = the small test molecules (default water)")
    p.add_argument("--n-structures", type=int, default=1, help="number of structures (default 1)")
    p.add_argument("--start-index", type=int, default=0, help="index of the first structure (default 0)")
    p.add_argument("--seed", type=int, default=0, help="structure k uses seed + k (default 0)")
    p.add_argument("--sigma", type=float, default=0.05,
                   help="std of the Gaussian displacement per Cartesian coordinate, A (default 0.05)")
    p.add_argument("--rotate", action="store_true", help="apply a uniformly random rotation per structure")
    p.add_argument("--xc", default="PBE", help="exchange-correlation functional (default PBE)")
    p.add_argument("--basis", default="def2-SVP", help="Gaussian basis (default def2-SVP)")
    p.add_argument("--grid-level", type=int, default=3, help="PySCF grid level 0-9 (default 3)")
    p.add_argument("--conv-tol", type=float, default=1e-10, help="SCF energy tolerance, Hartree (default 1e-10)")
    p.add_argument("--box", type=float, default=20.0, help="cubic POSCAR box edge, A (default 20)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="worker processes, one thread each; 1 = in this process (default: CPU count)")
    p.add_argument("--forces", action="store_true",
                   help="also compute the total energy and the analytic forces (grid response included) and "
                        "write force.h5 (eV, eV/A); a folder without force.h5 then counts as incomplete")
    p.add_argument("--check-forces", type=int, default=1, metavar="N",
                   help="--validate: compare the largest force component of the first N structures having "
                        "force.h5 with a central finite difference of PySCF energies (default 1; 0 = skip)")
    p.add_argument("--name-prefix", choices=("auto", "always", "never"), default="auto",
                   help="prefix folder names with the molecule: auto = when several molecules (default)")
    p.add_argument("-v", "--log-level", default="INFO", help="logging level (default INFO)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(message)s")
    logger.setLevel(args.log_level.upper())
    try:
        if args.validate is not None:
            summary = validate(args.validate, check_forces=args.check_forces)
            logger.info("OK: max |eig - PySCF| = %.1e eV, max Hermiticity deviation = %.1e",
                        summary["eig_err"], summary["herm_err"])
            if "force_fd_err" in summary:
                logger.info("OK: %d force.h5 files; max |force - finite difference| = %.1e eV/A, "
                            "|energy - recomputed| = %.1e eV", summary["n_force_files"],
                            summary["force_fd_err"], summary["energy_fd_err"])
            return 0
        if args.reoptimize is not None:
            _reoptimize(molecule_names([args.reoptimize])[0], args.xc, args.basis, args.grid_level)
            return 0
        molecules = molecule_names(args.molecule or ["water"])
        settings = Settings(out=args.out, xc=args.xc, basis=args.basis, grid_level=args.grid_level,
                            conv_tol=args.conv_tol, seed=args.seed, sigma=args.sigma, rotate=args.rotate,
                            box=args.box, forces=args.forces)
        tasks = plan(molecules, args.n_structures, args.start_index, args.name_prefix)
        summary = generate(tasks, settings, workers=args.workers)
    except (AssertionError, DataFormatError) as exc:
        logger.error("FAILED: %s", exc)
        return 1
    except ValueError as exc:
        logger.error("error: %s", exc)
        return 2
    if summary["failed"]:
        logger.error("%d structures failed: %s", len(summary["failed"]), ", ".join(sorted(summary["failed"])))
        return 1
    return 0


# ----------------------------------------------------------------------------- geometry table
# PBE/def2-SVP minima (see the module docstring), Angstrom, centroid at the origin.
_EQUILIBRIUM: Dict[str, Tuple[Tuple[str, Tuple[float, float, float]], ...]] = {
    "water": (  # E = -76.27258266 Ha, max |grad| = 1.5e-06 Ha/Bohr
        ("O", ( 0.000000,  0.000000,  0.408734)),
        ("H", ( 0.000000,  0.757697, -0.204367)),
        ("H", ( 0.000000, -0.757697, -0.204367)),
    ),
    "methane": (  # E = -40.41509667 Ha, max |grad| = 7.6e-06 Ha/Bohr
        ("C", ( 0.000000,  0.000000,  0.000000)),
        ("H", ( 0.638502,  0.638502,  0.638502)),
        ("H", ( 0.638502, -0.638502, -0.638502)),
        ("H", (-0.638502,  0.638502, -0.638502)),
        ("H", (-0.638502, -0.638502,  0.638502)),
    ),
    "ammonia": (  # E = -56.43312937 Ha, max |grad| = 3.9e-06 Ha/Bohr
        ("N", ( 0.000016,  0.000000,  0.320681)),
        ("H", ( 0.938098,  0.000000, -0.106935)),
        ("H", (-0.469057,  0.812429, -0.106873)),
        ("H", (-0.469057, -0.812429, -0.106873)),
    ),
    "formaldehyde": (  # E = -114.28343123 Ha, max |grad| = 1.6e-06 Ha/Bohr
        ("C", ( 0.000000,  0.000000,  0.004049)),
        ("O", ( 0.000000,  0.000000,  1.212164)),
        ("H", ( 0.000000,  0.952674, -0.608106)),
        ("H", ( 0.000000, -0.952674, -0.608106)),
    ),
    "hydrogen_cyanide": (  # E = -93.23795741 Ha, max |grad| = 8.6e-08 Ha/Bohr
        ("H", ( 0.000000,  0.000000, -1.113856)),
        ("C", ( 0.000000,  0.000000, -0.026693)),
        ("N", ( 0.000000,  0.000000,  1.140549)),
    ),
    "methanol": (  # E = -115.48799252 Ha, max |grad| = 5.9e-06 Ha/Bohr
        ("C", (-0.314930,  0.000000, -0.135991)),
        ("O", ( 1.095526,  0.000000, -0.155363)),
        ("H", ( 1.398485,  0.000000,  0.769818)),
        ("H", (-0.663118,  0.000000, -1.189114)),
        ("H", (-0.757981,  0.901695,  0.355325)),
        ("H", (-0.757981, -0.901695,  0.355325)),
    ),
    "ethanol": (  # E = -154.72243560 Ha, max |grad| = 7.4e-06 Ha/Bohr
        ("C", (-1.000936,  0.000000, -0.189968)),
        ("C", ( 0.518414,  0.000000, -0.167951)),
        ("O", ( 0.944052,  0.000000,  1.185319)),
        ("H", ( 1.917419,  0.000000,  1.186808)),
        ("H", (-1.383023,  0.000000, -1.230316)),
        ("H", (-1.395798,  0.895972,  0.330145)),
        ("H", (-1.395798, -0.895972,  0.330145)),
        ("H", ( 0.897835, -0.896160, -0.722092)),
        ("H", ( 0.897835,  0.896160, -0.722092)),
    ),
    "malondialdehyde": (  # E = -266.65975678 Ha, max |grad| = 9.6e-06 Ha/Bohr
        ("C", (-1.236259,  0.032723,  0.000000)),
        ("C", (-0.020610,  0.791178,  0.000000)),
        ("C", ( 1.173369,  0.081983,  0.000000)),
        ("O", (-1.255056, -1.226314,  0.000000)),
        ("O", ( 1.220145, -1.226114,  0.000000)),
        ("H", ( 0.199343, -1.508574,  0.000000)),
        ("H", (-2.212585,  0.582537,  0.000000)),
        ("H", (-0.029259,  1.888541,  0.000000)),
        ("H", ( 2.160912,  0.584040,  0.000000)),
    ),
    "uracil": (  # E = -414.06886108 Ha, max |grad| = 6.4e-06 Ha/Bohr
        ("C", (-1.245404,  0.738888,  0.000000)),
        ("C", ( 0.018359, -1.460791,  0.000000)),
        ("C", ( 1.258106, -0.679944,  0.000000)),
        ("C", ( 1.207493,  0.682720,  0.000000)),
        ("N", ( 0.013064,  1.363630,  0.000000)),
        ("N", (-1.148243, -0.647860,  0.000000)),
        ("O", (-2.293062,  1.364696,  0.000000)),
        ("O", (-0.074537, -2.681039,  0.000000)),
        ("H", (-0.016588,  2.384473,  0.000000)),
        ("H", (-2.041254, -1.150701,  0.000000)),
        ("H", ( 2.209946, -1.223415,  0.000000)),
        ("H", ( 2.112120,  1.309344,  0.000000)),
    ),
}

MOLECULES.update({name: Molecule(tuple(s for s, _ in atoms), tuple(p for _, p in atoms))
                  for name, atoms in _EQUILIBRIUM.items()})


if __name__ == "__main__":
    sys.exit(main())
