"""PySCF periodic two-component GKS with spin-orbit ECPs: SCF on a k-mesh, F[D](k) on any k.

The cell: elements with a spin-orbit ECP of ``--ecp`` (:mod:`pyscf_data.gks` presets; I and Br)
get that ECP and its valence basis, the others a GTH pseudopotential (``--pseudo``) and basis
(``--basis``). Primitives with exponents below ``exp_to_discard`` (Bohr^-2) are dropped
(PySCF's ``cell.exp_to_discard``): a short-ranged basis like DeepH's OpenMX or CP2K's MOLOPT-SR
ones, so blocks decay within the M-supercell (:mod:`.kmesh`). Coulomb by Gaussian density
fitting (GDF), PBE by default, ``collinear = "col"`` (exact for these closed-shell,
time-reversal-symmetric states; see :mod:`pyscf_data.gks`), ``with_soc = True`` (PySCF adds
``ECPso``, the ECP's <u| i s.U_SO |v>, to the two-component core Hamiltonian).

After the SCF on ``scf_mesh``, the Kohn-Sham matrix of the converged density F[D](k) = h(k) +
J[D](k) + V_xc[D](k) is evaluated at any k (:func:`bloch_fock`): that is the Bloch sum of one
real-space operator, so its Fourier coefficients are H(R). PySCF 2.14's ``numint2c.nr_vxc``
shapes V_xc like the density matrix, not like ``kpts_band`` (a ValueError for other k), so V_xc
is taken from the one-component UKS integrator of the alpha and beta densities, which is what
``numint2c`` does for ``collinear = "col"``.
"""
from __future__ import annotations

import logging
from typing import Dict, Sequence

import numpy as np

from deeph_tf.conventions import HARTREE_TO_EV

from pyscf_data.gks import parse_ecp, spinful_ao_order
from pyscf_data.scf import deeph_ao_order

from .kmesh import mesh_index

logger = logging.getLogger("make_soc_crystal_dataset")


def build_cell(species: Sequence[str], positions: np.ndarray, lattice: np.ndarray, basis: str, pseudo: str,
               ecp: str, exp_to_discard: float):
    """A PySCF ``Cell`` (positions [n, 3] and lattice [3, 3] rows in A, as given: no wrapping).

    Raises:
        ValueError: if no atom carries a spin-orbit ECP.
    """
    from pyscf.pbc import gto

    ecp_of, ecp_basis = parse_ecp(ecp)
    bases = {el: (ecp_basis if el in ecp_of else basis) for el in dict.fromkeys(species)}
    pseudos = {el: pseudo for el in dict.fromkeys(species) if el not in ecp_of}
    ecps = {el: ecp_of[el] for el in dict.fromkeys(species) if el in ecp_of}
    cell = gto.Cell()
    cell.atom = [(s, tuple(float(x) for x in p)) for s, p in zip(species, positions)]
    cell.a = np.asarray(lattice, float)
    cell.unit = "A"
    cell.basis, cell.pseudo, cell.ecp = bases, pseudos, ecps
    cell.exp_to_discard = float(exp_to_discard)
    cell.verbose = 0
    cell.build()
    if not cell.has_ecp_soc():
        raise ValueError(f"no atom of {''.join(species)} has a spin-orbit ECP in {ecp!r}; "
                         f"elements with one: {', '.join(ecp_of)}")
    return cell


def run_scf(cell, scf_mesh: Sequence[int], xc: str, conv_tol: float):
    """Converged ``KGKS`` (GDF, with_soc) on the unshifted ``scf_mesh``; RuntimeError if not converged."""
    from pyscf.pbc import dft

    mf = dft.KGKS(cell, cell.make_kpts(list(scf_mesh))).density_fit()
    mf.xc = xc
    mf.collinear = "col"
    mf.with_soc = True
    mf.conv_tol = conv_tol
    mf.max_cycle = 100
    mf.kernel()
    if not mf.converged:
        raise RuntimeError(f"periodic GKS+SOC did not converge ({xc}, mesh {tuple(scf_mesh)})")
    return mf


def bloch_fock(mf, kpts_band: np.ndarray) -> np.ndarray:
    """F[D](k) [N_k, 2 nao, 2 nao] complex, Hartree, PySCF GHF layout, at Cartesian ``kpts_band`` (1/Bohr)."""
    cell, dm = mf.cell, np.asarray(mf.make_rdm1())
    nao = cell.nao_nr()
    hcore = np.asarray(mf.get_hcore(cell, kpts_band))
    vj = np.asarray(mf.get_j(cell, dm, 1, mf.kpts, kpts_band))
    ni = mf._numint._to_numint1c()
    dm_ab = (dm[:, :nao, :nao].copy(), dm[:, nao:, nao:].copy())
    _, _, vxc = ni.nr_uks(cell, mf.grids, mf.xc, dm_ab, 0, 1, mf.kpts, kpts_band)
    fock = hcore + vj
    fock[:, :nao, :nao] += vxc[0]
    fock[:, nao:, nao:] += vxc[1]
    return fock


def bloch_overlap(cell, kpts: np.ndarray) -> np.ndarray:
    """S(k) [N_k, nao, nao] complex, PySCF AO order (spinless), at Cartesian ``kpts`` (1/Bohr)."""
    return np.asarray(cell.pbc_intor("int1e_ovlp", hermi=1, kpts=kpts))


def deeph_matrices(cell, fock: np.ndarray, overlap: np.ndarray) -> Dict[str, np.ndarray]:
    """PySCF matrices -> DeepH order: H(k) (eV, spinful [N_k, 2n, 2n], Hermitized) and S(k) ([N_k, n, n]).

    Args:
        fock: :func:`bloch_fock`, overlap: :func:`bloch_overlap`, at the same k-points.

    Returns:
        {"hamiltonian", "overlap", "offsets" (spinless, [n_atoms + 1]), "elements_orbital_map"}.
    """
    nao = cell.nao_nr()
    perm, eom, offsets = deeph_ao_order(cell)
    p2 = spinful_ao_order(perm, offsets, nao)
    h = np.asarray(fock)[:, p2][:, :, p2] * HARTREE_TO_EV
    s = np.asarray(overlap)[:, perm][:, :, perm]
    return {"hamiltonian": 0.5 * (h + np.conj(np.swapaxes(h, 1, 2))),
            "overlap": 0.5 * (s + np.conj(np.swapaxes(s, 1, 2))),
            "offsets": offsets, "elements_orbital_map": eom}


def pyscf_band_energies(fock: np.ndarray, overlap: np.ndarray) -> np.ndarray:
    """[N_k, 2 nao] eigenvalues (eV) of PySCF's own F(k) c = e (S(k) (x) 1) c, in PySCF's layout
    (:func:`bloch_fock`, :func:`bloch_overlap`)."""
    import scipy.linalg

    out = []
    for f, sk in zip(np.asarray(fock), np.asarray(overlap)):
        s2 = scipy.linalg.block_diag(sk, sk)
        out.append(scipy.linalg.eigh(0.5 * (f + f.conj().T), 0.5 * (s2 + s2.conj().T), eigvals_only=True))
    return np.array(out) * HARTREE_TO_EV


def fock_mesh_deviation(mf, fock_mesh: np.ndarray, k_frac_mesh: np.ndarray) -> float:
    """Largest |F_band(k) - F_SCF(k)| (eV) over the SCF k-points, all on ``k_frac_mesh``.

    ``fock_mesh`` is :func:`bloch_fock` (PySCF layout, Hartree) at ``k_frac_mesh``; the SCF's own
    Fock matrix is ``mf.get_fock(dm=D)`` (no DIIS or level shift).
    """
    f_scf = np.asarray(mf.get_fock(dm=mf.make_rdm1()))
    rows = [mesh_index(k_frac_mesh, k) for k in mf.cell.get_scaled_kpts(mf.kpts)]
    return float(np.abs(fock_mesh[rows] - f_scf).max()) * HARTREE_TO_EV
