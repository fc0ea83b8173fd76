"""PySCF restricted Kohn-Sham runs and their conversion to DeepH blocks (orbital order, eV).

:func:`run_dft` gives the matrices of one geometry in DeepH orbital order (shells ascending in l,
m = -l..l, p = (y, z, x); ``docs/conventions.md``, "2. Orbitals and rotations"), energies in eV
(``deeph_tf.conventions.HARTREE_TO_EV``); :func:`scf_energy_forces` adds the total energy and the
analytic forces (grid response included) for force.h5.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from deeph_tf.conventions import BOHR_TO_ANGSTROM, HARTREE_TO_EV, pyscf_to_deeph_permutation

#: The matrices of a structure folder, one ``<name>.h5`` block file each.
BLOCK_NAMES = ("overlap", "hamiltonian", "density_matrix")
#: PySCF's orbital energies of (F[D], S), eV, one per line: the reference of ``--validate``.
MO_ENERGY_FILE = "mo_energy_eV.txt"


def deeph_ao_order(mol) -> Tuple[np.ndarray, Dict[str, List[int]], np.ndarray]:
    """Permutation of PySCF AOs into DeepH order, plus elements_orbital_map and atom offsets.

    PySCF (spherical) stores AOs atom by atom, shells in ``mol._bas`` order, each shell
    as ``nctr`` contractions of 2l+1 functions (p as x, y, z). DeepH wants, per atom,
    shells in ascending l (stable, so radial order is kept) and m = -l..l.

    Returns:
        perm: [nao] with ``deeph_matrix = pyscf_matrix[perm][:, perm]``.
        elements_orbital_map: one l per radial shell per element, storage order.
        offsets: [natm + 1] start of each atom's orbitals in DeepH order.
    """
    ao_loc = mol.ao_loc_nr()
    per_atom: List[List[Tuple[int, int]]] = [[] for _ in range(mol.natm)]  # (l, first AO)
    for ib in range(mol.nbas):
        l, nctr = mol.bas_angular(ib), mol.bas_nctr(ib)
        for c in range(nctr):
            per_atom[mol.bas_atom(ib)].append((l, int(ao_loc[ib]) + c * (2 * l + 1)))
    perm: List[int] = []
    eom: Dict[str, List[int]] = {}
    offsets = [0]
    for ia, shells in enumerate(per_atom):
        shells = sorted(shells, key=lambda s: s[0])  # stable: radial order kept within l
        ls = [l for l, _ in shells]
        sym = mol.atom_pure_symbol(ia)
        if sym in eom and eom[sym] != ls:
            raise ValueError(f"atoms of element {sym} have different shells: {eom[sym]} vs {ls}")
        eom[sym] = ls
        assert ls == sorted(ls), "elements_orbital_map must ascend in l"
        for l, start in shells:
            perm.extend(start + pyscf_to_deeph_permutation(l))
        offsets.append(len(perm))
    perm_arr = np.array(perm, dtype=np.int64)
    if sorted(perm) != list(range(mol.nao_nr())):
        raise AssertionError("AO permutation is not a permutation")
    return perm_arr, eom, np.array(offsets, dtype=np.int64)


def _make_grids(mol, level: int, q_frame: Optional[np.ndarray]):
    """PySCF grids; with ``q_frame`` every atom-centred grid is rotated by it."""
    from pyscf import dft

    if q_frame is None:
        grids = dft.gen_grid.Grids(mol)
    else:
        class RotatedGrids(dft.gen_grid.Grids):
            """Atomic grids rotated with the molecule (Becke partition is rotation invariant)."""

            def gen_atomic_grids(self, mol, *args, **kwargs):
                tab = super().gen_atomic_grids(mol, *args, **kwargs)
                return {sym: (np.ascontiguousarray(coords @ q_frame.T), vol)
                        for sym, (coords, vol) in tab.items()}

        grids = RotatedGrids(mol)
    grids.level = level
    return grids


def rks(species: Sequence[str], positions: np.ndarray, xc: str, basis: str, grid_level: int, conv_tol: float,
        q_frame: Optional[np.ndarray] = None):
    """A PySCF RKS object (not yet run) for positions [n, 3] in A; ``q_frame`` rotates the grid."""
    from pyscf import dft, gto

    mol = gto.M(atom=[(s, tuple(p)) for s, p in zip(species, positions)], basis=basis,
                unit="Angstrom", charge=0, spin=0, cart=False, verbose=0)
    mf = dft.RKS(mol)
    mf.xc = xc
    mf.grids = _make_grids(mol, grid_level, q_frame)
    mf.conv_tol = conv_tol
    mf.conv_tol_grad = np.sqrt(conv_tol) / 10
    mf.max_cycle = 200
    mf.init_guess = "minao"
    return mf


def _run_scf(mf, dm0: Optional[np.ndarray] = None) -> None:
    mf.kernel(dm0=dm0)
    if not mf.converged:
        raise RuntimeError(f"SCF did not converge for {mf.xc}/{mf.mol.basis}")


def run_dft(species: Sequence[str], positions: np.ndarray, xc: str, basis: str, grid_level: int,
            q_frame: Optional[np.ndarray], conv_tol: float = 1e-11) -> Dict[str, np.ndarray]:
    """Restricted Kohn-Sham for one geometry (positions in A).

    Returns (DeepH orbital order, eV where energies): ``hamiltonian`` F[D], ``overlap``,
    ``density_matrix`` D (both spins), ``mo_energy`` (eigenvalues of (F[D], S) from
    PySCF's ``eig``), ``offsets``, ``elements_orbital_map``, ``nelectron``, plus
    ``scf_mo_energy_shift``: max |eig(F[D]) - mf.mo_energy| (self-consistency, eV).
    """
    mf = rks(species, positions, xc, basis, grid_level, conv_tol, q_frame)
    _run_scf(mf)
    mol = mf.mol
    dm = mf.make_rdm1()
    s = mf.get_ovlp()
    fock = mf.get_fock(dm=dm)  # h1e + veff[dm]: no DIIS, damping or level shift
    mo_energy, _ = mf.eig(fock, s)
    perm, eom, offsets = deeph_ao_order(mol)
    idx = np.ix_(perm, perm)
    return {
        "hamiltonian": fock[idx] * HARTREE_TO_EV,
        "overlap": s[idx],
        "density_matrix": dm[idx],
        "mo_energy": np.asarray(mo_energy) * HARTREE_TO_EV,
        "scf_mo_energy_shift": float(np.max(np.abs(mo_energy - mf.mo_energy))) * HARTREE_TO_EV,
        "offsets": offsets,
        "elements_orbital_map": eom,
        "nelectron": mol.nelectron,
    }


def scf_energy_forces(species: Sequence[str], positions: np.ndarray, xc: str, basis: str, grid_level: int,
                      conv_tol: float, dm0_deeph: Optional[np.ndarray] = None) -> Tuple[float, np.ndarray]:
    """Total energy (eV) and forces [n, 3] (eV/A) of the RKS of ``run_dft`` at positions [n, 3] (A).

    The gradient includes the grid response (exact derivative of the grid-integrated
    energy). ``dm0_deeph``: a converged density matrix in DeepH orbital order (``run_dft``'s
    ``density_matrix``) to start the SCF from.
    """
    mf = rks(species, positions, xc, basis, grid_level, conv_tol)
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
    mf = rks(species, positions, xc, basis, grid_level, conv_tol)
    _run_scf(mf)
    return float(mf.e_tot) * HARTREE_TO_EV
