"""``--validate``: a dataset on disk against PySCF's own numbers, and force.h5 against finite differences.

Per structure: it loads, every block file is Hermitian, the eigenvalues of (H, S) read from disk equal
the stored PySCF orbital energies of the same F[D] and S, trace(D S) equals the occupation; copies with
an ``euler_angle`` file must be rotations of copy 0 (``docs/conventions.md``, "2. Orbitals and
rotations"). force.h5: shapes, finite values and a central finite difference of PySCF energies.
Spinful structures (``spinful: true``): the eigenvalues of (H, S (x) I_2), Hermiticity, trace(D (S (x) I_2))
and time reversal (H = I_2 (x) A + i sum_k sigma_k (x) B_k with real A, B_k; :mod:`.spin_checks`).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from deeph_tf.conventions import euler_zyz_to_matrix
from deeph_tf.data import blocks_to_dense, is_structure_folder, load_structure, read_poscar
from deeph_tf.data.force_h5 import read_force_h5
from deeph_tf.data.rotation import compare_rotated_copy

from .folders import FORCE_FILE, force_attrs, missing_files
from .scf import BLOCK_NAMES, MO_ENERGY_FILE, scf_energy
from .spin_checks import check_spinful_structure

logger = logging.getLogger("make_pyscf_dataset")

#: The file of a rotated copy: "alpha beta gamma", z-y-z Euler angles (radians) relative to copy 0.
EULER_FILE = "euler_angle"
#: Central finite-difference step (A) of the --validate force check, and its tolerances.
FD_STEP = 1e-3
FD_FORCE_TOL = 1e-3  # eV/A
FD_ENERGY_TOL = 1e-3  # eV: |mean of the displaced energies - stored energy| (curvature error ~ k h^2 / 2)
#: Spinful data: max |Im| of A and B_k allowed (eV for H; the same number for D). A closed-shell GKS
#: ground state is time-reversal symmetric; the SCF keeps the symmetry of its (symmetric) start to
#: round-off, so this only has to exceed numerical noise.
TR_TOL = 1e-6


def _dft_folders(root: Path) -> List[Path]:
    """Structure folders directly under ``root`` (or ``root/dft``), sorted numerically when possible."""
    if (root / "dft").is_dir() and not is_structure_folder(root):
        root = root / "dft"
    folders = [p for p in root.iterdir() if is_structure_folder(p)]
    return sorted(folders, key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))


def _is_spinful(folder: Path) -> bool:
    """``spinful`` of the folder's info.json (False if it does not read: loading reports that later)."""
    import json

    try:
        return bool(json.loads((folder / "info.json").read_text()).get("spinful", False))
    except (OSError, ValueError, AttributeError):
        return False


def rotation_deviation(ref, other, q: np.ndarray, name: str) -> Dict[Tuple[int, int], float]:
    """max |other - D ref D^T| per (l_i, l_j) shell-pair type over all blocks, for block file ``name``."""
    return compare_rotated_copy(ref, other, q, name).max_abs_by_shell_pair


def _validate_spinful(st, eig_tol: float, herm_tol: float, tr_tol: float, summary: Dict[str, float],
                      log: logging.Logger) -> None:
    """The checks of one spinful structure (:func:`~.spin_checks.check_spinful_structure`), into ``summary``."""
    ref_file = st.path / MO_ENERGY_FILE
    if not ref_file.is_file():
        raise AssertionError(f"{ref_file}: missing (written by the generator)")
    c = check_spinful_structure(st, np.loadtxt(ref_file, ndmin=1))
    summary["n_spinful"] = summary.get("n_spinful", 0) + 1
    summary["eig_err"] = max(summary["eig_err"], c["eig_err"])
    summary["herm_err"] = max(summary["herm_err"], c["herm_err"])
    summary["tr_err"] = max(summary.get("tr_err", 0.0), c["tr_err_hamiltonian"])
    summary["tr_err_density_matrix"] = max(summary.get("tr_err_density_matrix", 0.0),
                                           c.get("tr_err_density_matrix", 0.0))
    summary["so_max"] = max(summary.get("so_max", 0.0), c["so_max_hamiltonian"])
    if c["herm_err"] > herm_tol:
        raise AssertionError(f"{st.path}: a block file is not Hermitian, max dev {c['herm_err']:.2e} > {herm_tol}")
    if c["eig_err"] > eig_tol:
        raise AssertionError(f"{st.path}: eigenvalues of (H, S x I_2) differ from PySCF's by {c['eig_err']:.2e} eV "
                             f"> {eig_tol}")
    for name in ("hamiltonian", "density_matrix"):
        dev = c.get(f"tr_err_{name}", 0.0)
        if dev > tr_tol:
            raise AssertionError(f"{st.block_path(name)}: not time-reversal symmetric: max |Im| of the parts "
                                 f"A, B_k of H = I_2 x A + i sum_k sigma_k x B_k is {dev:.2e} > {tr_tol}")
    occ = st.info.get("occupation")
    if occ is not None and np.isfinite(c["n_electrons"]) and abs(c["n_electrons"] - occ) > 1e-6:
        raise AssertionError(f"{st.path}: trace(D (S x I_2)) = {c['n_electrons']} but occupation = {occ}")
    log.info("%s: %d spin-orbitals, eigenvalues %.3f..%.3f eV, |eig - PySCF| = %.1e eV, time-reversal dev "
             "%.1e eV, max |B_k| %.3f eV, Fermi %.4f eV", st.name, 2 * st.n_orbitals, c["eig_min"], c["eig_max"],
             c["eig_err"], c["tr_err_hamiltonian"], c["so_max_hamiltonian"], st.fermi_energy_eV or float("nan"))


def validate_blocks(root: Path, eig_tol: float = 1e-6, herm_tol: float = 1e-8,
                    rotation_tol: Optional[float] = 1e-4, log: logging.Logger = logger,
                    tr_tol: float = TR_TOL) -> Dict[str, float]:
    """Check the structure folders under ``root`` (or ``root/dft``); raise AssertionError on the first failure.

    For every structure: it loads (POSCAR/info.json/blocks consistent); every block
    file is Hermitian to ``herm_tol`` (eV for H); the generalized eigenvalues of (H, S)
    from disk equal ``mo_energy_eV.txt`` to ``eig_tol`` eV; trace(D S) equals the
    occupation. For copies with ``euler_angle``: the max deviation of H, S and D from
    the exact rotation of copy 0, reported per shell-pair type (s-s, s-p, p-p, ...),
    must stay below ``rotation_tol`` eV (None: report only). Spinful structures get
    :func:`_validate_spinful` instead of the eigenvalue/trace checks (time reversal to ``tr_tol``).
    Progress is logged to ``log``.

    Returns:
        summary numbers: max eigenvalue error, max Hermiticity error, and
        ``rot_<name>_<li><lj>`` max deviations in the units of each file.
    """
    folders = _dft_folders(Path(root))
    if not folders:
        raise AssertionError(f"no structure folders under {root}")
    summary: Dict[str, float] = {"eig_err": 0.0, "herm_err": 0.0}
    structures = {p.name: load_structure(p) for p in folders}
    ref = structures.get("0")
    for name, st in structures.items():
        if st.spinful:
            _validate_spinful(st, eig_tol, herm_tol, tr_tol, summary, log)
        else:
            _validate_spinless(st, eig_tol, herm_tol, summary, log)
        euler_file = st.path / EULER_FILE
        if ref is None or name == "0" or not euler_file.is_file():
            continue
        q = euler_zyz_to_matrix(*np.loadtxt(euler_file, ndmin=1)[:3])
        for block_name in BLOCK_NAMES:
            if not st.has_blocks(block_name):
                continue
            dev = rotation_deviation(ref, st, q, block_name)
            for (li, lj), v in dev.items():
                key = f"rot_{block_name}_{'spdf'[li]}{'spdf'[lj]}"
                summary[key] = max(summary.get(key, 0.0), v)
            worst = max(dev.values())
            log.info("%s vs rotated 0, %s: max dev %s", name, block_name,
                        ", ".join(f"{'spdf'[li]}-{'spdf'[lj]} {v:.1e}" for (li, lj), v in dev.items()))
            if rotation_tol is not None and worst > rotation_tol:
                raise AssertionError(f"{st.path}/{block_name}.h5: deviates from the rotated copy 0 by "
                                     f"{worst:.2e} > {rotation_tol}")
    log.info("validated %d structures: max |eig - PySCF| %.1e eV, max Hermiticity dev %.1e",
                len(structures), summary["eig_err"], summary["herm_err"])
    return summary


def _validate_spinless(st, eig_tol: float, herm_tol: float, summary: Dict[str, float],
                       log: logging.Logger) -> None:
    """Hermiticity, eigenvalues of (H, S) and trace(D S) of one spinless structure, into ``summary``."""
    import scipy.linalg

    name = st.name
    off = st.atom_orbital_offsets()
    mats = {}
    for block_name in BLOCK_NAMES:
        if not st.has_blocks(block_name):
            continue
        bs = st.read_blocks(block_name)
        herm = bs.max_hermiticity_deviation()
        summary["herm_err"] = max(summary["herm_err"], herm)
        if herm > herm_tol:
            raise AssertionError(f"{st.block_path(block_name)}: not Hermitian, max dev {herm:.2e} > {herm_tol}")
        mats[block_name] = blocks_to_dense(bs, off)
    eig = scipy.linalg.eigh(mats["hamiltonian"], mats["overlap"], eigvals_only=True)
    ref_file = st.path / MO_ENERGY_FILE
    if not ref_file.is_file():
        raise AssertionError(f"{ref_file}: missing (written by the generator)")
    ref_eig = np.loadtxt(ref_file, ndmin=1)
    if ref_eig.shape != eig.shape:
        raise AssertionError(f"{ref_file}: {ref_eig.shape[0]} energies for {eig.shape[0]} orbitals")
    err = float(np.max(np.abs(eig - ref_eig)))
    summary["eig_err"] = max(summary["eig_err"], err)
    if err > eig_tol:
        raise AssertionError(f"{st.path}: eigenvalues of (H, S) differ from PySCF's by {err:.2e} eV > {eig_tol}")
    if "density_matrix" in mats:
        n_el = float(np.trace(mats["density_matrix"] @ mats["overlap"]))
        occ = st.info.get("occupation")
        if occ is not None and abs(n_el - occ) > 1e-6:
            raise AssertionError(f"{st.path}: trace(D S) = {n_el} but occupation = {occ}")
    log.info("%s: %d orbitals, eigenvalues %.3f..%.3f eV, |eig - PySCF| = %.1e eV, Fermi %.4f eV",
                name, eig.size, eig[0], eig[-1], err, st.fermi_energy_eV or float("nan"))


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
    attrs = force_attrs(path)
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


def validate(root: Path, eig_tol: float = 1e-6, herm_tol: float = 1e-8, check_forces: int = 1,
             force_tol: float = FD_FORCE_TOL, energy_tol: float = FD_ENERGY_TOL) -> Dict[str, float]:
    """Check a generated dataset (``root`` or ``root/dft``); raise AssertionError naming the structure.

    Every folder under dft/ must hold all :data:`~.folders.REQUIRED_FILES`; then, per structure
    (:func:`validate_blocks`): it loads, every block file is Hermitian to
    ``herm_tol``, the eigenvalues of (H, S) read from disk equal the stored PySCF orbital
    energies of the same F[D] and S to ``eig_tol`` eV, and trace(D S) equals the occupation.
    If any folder has force.h5, all must; each must read (:func:`read_force_h5`, one force
    per POSCAR atom), and the first ``check_forces`` of them must pass
    :func:`check_forces_fd` to ``force_tol`` eV/A and ``energy_tol`` eV.

    Returns:
        :func:`validate_blocks`' summary, plus ``n_force_files`` and, when forces
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
        missing = missing_files(folder, spinful=_is_spinful(folder))
        if missing:
            raise AssertionError(f"{folder}: incomplete structure, missing {', '.join(missing)}")
    with_forces = [f for f in folders if (f / FORCE_FILE).is_file()]
    if with_forces and len(with_forces) < len(folders):
        lacking = next(f for f in folders if not (f / FORCE_FILE).is_file())
        raise AssertionError(f"{lacking}: no {FORCE_FILE}, but {len(with_forces)} of {len(folders)} structures have "
                             f"one (a dataset made with --forces has it everywhere)")
    summary = validate_blocks(dft_dir, eig_tol=eig_tol, herm_tol=herm_tol, rotation_tol=None)
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

