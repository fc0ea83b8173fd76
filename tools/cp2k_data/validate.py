"""Validation: bands of the written blocks vs CP2K's own bands, Hermiticity, overlaps vs PySCF.

The band check is the bound on every later band comparison: band energies of the Bloch sums
of the *written* hamiltonian.h5 / overlap.h5 (this project's own Bloch code,
:mod:`deeph_tf.infer.electronic.bloch`) at the validation k-points (the K_PATH corners sampled
``band_points`` per segment, and random points on no SCF mesh) against CP2K's BAND_STRUCTURE
energies there. Reported: the largest error over the bands within E_F +- 2 eV, over the
occupied bands, and over all bands CP2K printed. A molecule (every block R = 0; its only
validation point is Gamma, and E_F +- 2 eV often holds no level of a molecule with a gap) is also
held to the limit over its occupied orbitals and the LUMO.

``--check-overlap N``: S(R) blocks of the first N structures against PySCF's analytic
overlaps of the same Gaussian basis (``gth-<basis>``) at the written geometry, which pins the
orbital order, the real-harmonic signs and the R convention to 1e-8.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from deeph_tf.data import BlockSet, load_structure
from deeph_tf.data.discovery import find_structure_folders
from deeph_tf.infer.electronic.bloch import BlochSum, band_energies

logger = logging.getLogger("make_cp2k_dataset")

#: Half-width (eV) of the window around E_F of the band check.
WINDOW_EV = 2.0
#: Default largest band error (eV) within the window before --validate fails.
MAX_WINDOW_ERROR_EV = 5e-3


def blocks_band_energies(hamiltonian: BlockSet, overlap: BlockSet, offsets: Sequence[int],
                         k_frac: np.ndarray) -> np.ndarray:
    """[n_k, n_orb] band energies (eV) of the blocks at reduced ``k_frac`` [n_k, 3]."""
    return band_energies(BlochSum(hamiltonian, offsets), BlochSum(overlap, offsets), k_frac, "written blocks")


def band_errors(energies: np.ndarray, reference: np.ndarray, fermi_eV: float, n_occupied: int) -> Dict[str, float]:
    """Largest |energies - reference| (eV): ``window_max`` (reference within E_F +- 2 eV),
    ``occupied_max`` (the lowest ``n_occupied`` bands) and ``all_max`` (every reference band)."""
    n = reference.shape[1]
    diff = np.abs(energies[:, :n] - reference)
    window = np.abs(reference - fermi_eV) <= WINDOW_EV
    return {"window_max": float(diff[window].max()) if window.any() else 0.0,
            "window_n": int(window.sum()),
            "occupied_max": float(diff[:, :n_occupied].max()),
            "all_max": float(diff.max())}


def pyscf_overlap_error(structure, basis: str, n_pairs: int = 200) -> float:
    """Largest |S_written - S_PySCF| over up to ``n_pairs`` blocks (nearest first)."""
    from pyscf import gto

    poscar = structure.poscar
    name = "gth-" + basis.lower().removesuffix("-gth")

    def molecule(shift):
        # the atoms as a neutral "molecule" (integrals only; spin just fixes the electron parity)
        atoms = [(el, p + shift) for el, p in zip(poscar.species, poscar.positions)]
        return gto.M(atom=atoms, basis=name, unit="A", verbose=0, spin=n_electrons % 2)

    from deeph_tf.elements import atomic_number

    n_electrons = sum(atomic_number(el) for el in poscar.species)

    mol0 = molecule(np.zeros(3))
    order: List[tuple] = []
    ao = 0
    for b in range(mol0.nbas):
        l = mol0.bas_angular(b)
        for c in range(mol0.bas_nctr(b)):
            idx = list(range(ao, ao + 2 * l + 1))
            if l == 1:
                idx = [idx[1], idx[2], idx[0]]  # PySCF p = (x, y, z) -> DeepH (y, z, x)
            order.append((mol0.bas_atom(b), l, b, c, idx))
            ao += 2 * l + 1
    perm: List[int] = []
    for atom in range(mol0.natm):
        for item in sorted((o for o in order if o[0] == atom), key=lambda o: (o[1], o[2], o[3])):
            perm += item[4]
    perm_arr = np.array(perm)
    offsets = structure.atom_orbital_offsets()
    overlap = structure.read_blocks("overlap")
    lattice = poscar.lattice
    dist = np.linalg.norm(poscar.positions[overlap.atom_pairs[:, 4]] + overlap.atom_pairs[:, :3] @ lattice
                          - poscar.positions[overlap.atom_pairs[:, 3]], axis=1)
    worst = 0.0
    cache: Dict[tuple, np.ndarray] = {}
    for k in np.argsort(dist)[:n_pairs]:
        r1, r2, r3, i, j = (int(v) for v in overlap.atom_pairs[k])
        if (r1, r2, r3) not in cache:
            s = gto.intor_cross("int1e_ovlp", mol0, molecule(np.array([r1, r2, r3]) @ lattice))
            cache[(r1, r2, r3)] = s[np.ix_(perm_arr, perm_arr)]
        ref = cache[(r1, r2, r3)][offsets[i]:offsets[i + 1], offsets[j]:offsets[j + 1]]
        worst = max(worst, float(np.abs(ref - overlap.blocks[k]).max()))
    return worst


def validate(root: Path, check_overlap: int = 1, max_window_error: float = MAX_WINDOW_ERROR_EV) -> Dict[str, float]:
    """Check every structure under ``root`` (or ``root/dft``); AssertionError on a failed check
    (a band error within the window above ``max_window_error`` eV, for a molecule also over the
    occupied orbitals and the LUMO; Hermiticity above 1e-6 eV, missing partners, overlaps off
    PySCF's by more than 1e-6).

    Returns:
        the largest errors over the dataset: ``window_max``, ``occupied_max``, ``all_max`` (eV),
        ``herm_max`` (eV) and, with ``check_overlap``, ``overlap_max``.
    """
    from .folders import DFT_BANDS_FILE, GENERATOR_FILE, read_dft_bands

    root = Path(root)
    _, found = find_structure_folders(root, data_dir_depth=None)
    structures = [load_structure(path) for _, path in found]
    if not structures:
        raise AssertionError(f"no structure folders under {root}")
    summary = {"window_max": 0.0, "occupied_max": 0.0, "all_max": 0.0, "herm_max": 0.0, "n_structures": 0}
    for n, structure in enumerate(structures):
        h = structure.read_blocks("hamiltonian")
        s = structure.read_blocks("overlap")
        if not np.array_equal(h.atom_pairs, s.atom_pairs):
            raise AssertionError(f"{structure.path}: hamiltonian.h5 and overlap.h5 have different atom_pairs")
        if h.missing_partners():
            raise AssertionError(f"{structure.path}: pairs without their (-R, j, i) partner: {h.missing_partners()[:3]}")
        k_frac, reference, fermi = read_dft_bands(structure.path / DFT_BANDS_FILE)
        energies = blocks_band_energies(h, s, structure.atom_orbital_offsets(), k_frac)
        n_occ = int(structure.info["occupation"]) // 2
        errors = band_errors(energies, reference, fermi, n_occ)
        errors["herm_max"] = max(h.max_hermiticity_deviation(), s.max_hermiticity_deviation())
        molecule = not np.any(h.atom_pairs[:, :3])
        if molecule:  # occupied orbitals and the LUMO at Gamma
            n_check = min(n_occ + 1, reference.shape[1])
            errors["molecule_max"] = float(np.abs(energies[:, :n_check] - reference[:, :n_check]).max())
        logger.info("%s: band error within E_F +- %g eV %.2e eV (%d entries), occupied %.2e, all %.2e%s; "
                    "Hermiticity %.1e", structure.name, WINDOW_EV, errors["window_max"], errors["window_n"],
                    errors["occupied_max"], errors["all_max"],
                    f" (molecule at Gamma, occupied + LUMO {errors['molecule_max']:.2e})" if molecule else "",
                    errors["herm_max"])
        if errors["window_max"] > max_window_error or errors["herm_max"] > 1e-6:
            raise AssertionError(f"{structure.path}: band error within E_F +- {WINDOW_EV:g} eV "
                                 f"{errors['window_max']:.2e} eV (limit {max_window_error:.1e}) or Hermiticity "
                                 f"{errors['herm_max']:.1e} eV: the blocks do not reproduce CP2K's bands")
        if molecule and errors["molecule_max"] > max_window_error:
            raise AssertionError(f"{structure.path}: orbital-energy error (occupied + LUMO, Gamma) "
                                 f"{errors['molecule_max']:.2e} eV (limit {max_window_error:.1e}): the blocks "
                                 f"do not reproduce CP2K's molecular orbitals")
        for key in ("window_max", "occupied_max", "all_max", "herm_max"):
            summary[key] = max(summary[key], errors[key])
        if molecule:
            summary["molecule_max"] = max(summary.get("molecule_max", 0.0), errors["molecule_max"])
        if n < check_overlap:
            basis = json.loads((structure.path / GENERATOR_FILE).read_text())["settings"]["basis"]
            err = pyscf_overlap_error(structure, basis)
            logger.info("%s: |S - PySCF analytic overlap| = %.1e", structure.name, err)
            summary["overlap_max"] = max(summary.get("overlap_max", 0.0), err)
            if err > 1e-6:
                raise AssertionError(f"{structure.path}: overlap blocks differ from PySCF's by {err:.2e}")
        summary["n_structures"] += 1
    return summary
