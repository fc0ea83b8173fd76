"""Spin-orbit-coupled (spinful) DFT: PySCF two-component generalized Kohn-Sham with spin-orbit ECPs.

Method. ``pyscf.dft.GKS`` with ``with_soc = True`` on a molecule whose heavy atoms carry a
relativistic effective core potential with spin-orbit terms: PySCF adds the ECP spin-orbit
operator ``<p| i s . U_SO |q>`` (integral ``ECPso``) to the two-component core Hamiltonian, so
the converged Kohn-Sham matrix F[D] (2 n_ao x 2 n_ao, complex) holds scalar-relativistic and
spin-orbit physics. The exchange-correlation potential is PySCF's collinear one
(``collinear = "col"``); for the closed-shell, time-reversal-symmetric ground states made here the
spin magnetization vanishes everywhere, so the collinear and non-collinear functionals coincide
and the XC potential is spin-independent (``v_xc (x) I_2``). The validator checks that time
reversal holds in the written blocks (:mod:`.spin_checks`).

Why SO-ECPs and not X2C: the ECP route keeps the basis a real-spherical valence basis (the same
AO convention as the spinless generator, so :func:`~.scf.deeph_ao_order` applies unchanged), the
core electrons are out of the problem (matrix elements of DeepH-like size), and a GKS of a diatomic
costs seconds. X2C is all-electron (core levels of thousands of eV in the blocks) and works in a
j-adapted spinor basis that would need a transformation back to real orbitals x spin.

ECP and basis (``--ecp``; presets in :data:`SO_ECP_PRESETS`). Default ``stuttgart-so``: the
large-core two-component Stuttgart-Cologne pseudopotentials with spin-orbit terms that PySCF ships
(``ecpds28mdfso`` for Br, 28-electron core, and ``ecpds46mdfso`` for I, 46-electron core: both
from Stoll, Metz, Dolg, J. Comput. Chem. 23, 767 (2002); their core-polarization potentials are not
used, PySCF has none), so Br and I each keep their 7 valence electrons (ns2 np5), with the
Stuttgart valence basis
``stuttgart_dz`` ((4s5p)/[2s3p] for both: 11 orbitals s2p3) made for the same core sizes (for the
scalar large-core ECPs of Bergner et al. 1993; the two-component ECPs replace them, a small
mismatch of basis and ECP that leaves a valid variational calculation). Matrix elements then stay
below a few tens of eV and the p-shell spin-orbit splittings are physical: PBE gives the pi_{3/2} -
pi_{1/2} splitting of the highest occupied level as 0.29 eV for HBr and 0.59 eV for HI (the
experimental splittings of HBr+ and HI+ are 0.33 and 0.66 eV). The alternative preset ``crenbl``
(Christiansen-Ermler small-core REPs with SO terms and their uncontracted basis, 3s3p4d on Br and I
with the semi-core d in the valence) gives on-site elements up to 2000 eV from its tight primitives,
not DeepH-like; it is kept for comparison. Elements without an ECP in the chosen set (H) use
``--basis`` (default def2-SVP: 2s1p). One element always has one basis, so
``elements_orbital_map`` is the same in every structure.

Layout (``docs/conventions.md``, "1. Data format"): PySCF's GHF/GKS matrices are
[[alpha-alpha, alpha-beta], [beta-alpha, beta-beta]] over all AOs (spin outer over the whole
molecule). The DeepH spinful block of atoms (i, j) is 2 n_i x 2 n_j, [[uu, ud], [du, dd]] with the
atom's orbitals inner in DeepH order (shells ascending in l, m = -l..l, p = (y, z, x)):
:func:`spinful_ao_order` gives the permutation of the 2 n_ao PySCF rows that lists, atom by atom,
the atom's alpha AOs then its beta AOs, each in DeepH order; cutting the permuted matrix with the
doubled atom offsets gives exactly these blocks. Spin up = alpha = +1/2 along z.
"""
from __future__ import annotations

import logging
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from deeph_tf.conventions import HARTREE_TO_EV

from .scf import _make_grids, deeph_ao_order

logger = logging.getLogger("make_pyscf_dataset")

#: Named spin-orbit ECP sets: (ECP per element, basis of those elements).
SO_ECP_PRESETS: Dict[str, Tuple[Dict[str, str], str]] = {
    "stuttgart-so": ({"Br": "ecpds28mdfso", "I": "ecpds46mdfso"}, "stuttgartdz"),
    "crenbl": ({"Br": "crenbl", "I": "crenbl"}, "crenbl"),
}
#: Default of ``--ecp``.
DEFAULT_ECP = "stuttgart-so"
#: PySCF's XC treatment of the spin density in GKS (exact here: the magnetization vanishes).
COLLINEAR = "col"


def parse_ecp(spec: str) -> Tuple[Dict[str, str], str]:
    """``--ecp``: a preset name (:data:`SO_ECP_PRESETS`) or ``"EL=ECP,...;BASIS"`` -> (ECP per element, basis).

    Raises:
        ValueError: for an unknown preset or a malformed spec.
    """
    if spec in SO_ECP_PRESETS:
        ecps, basis = SO_ECP_PRESETS[spec]
        return dict(ecps), basis
    if ";" not in spec or "=" not in spec:
        raise ValueError(f"--ecp {spec!r}: expected a preset ({', '.join(SO_ECP_PRESETS)}) or "
                         "'EL=ECP[,EL=ECP...];BASIS' (e.g. 'Br=ecpds28mdfso,I=ecpds46mdfso;stuttgartdz')")
    pairs, basis = spec.rsplit(";", 1)
    ecps = {}
    for item in pairs.split(","):
        el, _, name = item.partition("=")
        if not el.strip() or not name.strip():
            raise ValueError(f"--ecp {spec!r}: item {item!r} is not EL=ECP")
        ecps[el.strip()] = name.strip()
    return ecps, basis.strip()


def element_basis(species: Sequence[str], basis: str, ecp: str) -> Tuple[Dict[str, str], Dict[str, str]]:
    """(basis per element, ECP per element) for ``species``: ECP elements of ``ecp`` get its basis."""
    ecp_of, ecp_basis = parse_ecp(ecp)
    bases, ecps = {}, {}
    for el in dict.fromkeys(species):
        if el in ecp_of:
            bases[el], ecps[el] = ecp_basis, ecp_of[el]
        else:
            bases[el] = basis
    return bases, ecps


def gks(species: Sequence[str], positions: np.ndarray, xc: str, basis: str, ecp: str, grid_level: int,
        conv_tol: float, q_frame: Optional[np.ndarray] = None):
    """A PySCF GKS object with spin-orbit ECP terms (not yet run), positions [n, 3] in A.

    ``q_frame`` rotates every atom-centred grid (as :func:`~.scf.rks`).

    Raises:
        ValueError: if no atom carries a spin-orbit ECP (the data would be spinless physics).
    """
    from pyscf import dft, gto

    bases, ecps = element_basis(species, basis, ecp)
    mol = gto.M(atom=[(s, tuple(p)) for s, p in zip(species, positions)], basis=bases, ecp=ecps,
                unit="Angstrom", charge=0, spin=0, cart=False, verbose=0)
    if not mol.has_ecp_soc():
        raise ValueError(f"no atom of {''.join(species)} has a spin-orbit ECP in {ecp!r} "
                         f"(elements with it: {', '.join(ecps) or 'none'}); spinful data needs a heavy atom")
    mf = dft.GKS(mol)
    mf.xc = xc
    mf.collinear = COLLINEAR
    mf.with_soc = True
    mf.grids = _make_grids(mol, grid_level, q_frame)
    mf.conv_tol = conv_tol
    mf.conv_tol_grad = np.sqrt(conv_tol) / 10
    mf.max_cycle = 200
    mf.init_guess = "minao"
    return mf


def spinful_ao_order(perm: np.ndarray, offsets: np.ndarray, nao: int) -> np.ndarray:
    """Permutation of PySCF's 2 nao GHF rows into DeepH spinful order (see the module docstring).

    Args:
        perm: [nao] spinless DeepH permutation (:func:`~.scf.deeph_ao_order`).
        offsets: [n_atoms + 1] spinless atom offsets in DeepH order.
        nao: number of spatial AOs.

    Returns:
        [2 nao] int64 with ``deeph = pyscf[p][:, p]``; the atom offsets of the result are
        ``2 * offsets``.
    """
    out: List[np.ndarray] = []
    for a in range(len(offsets) - 1):
        own = np.asarray(perm[offsets[a]:offsets[a + 1]], dtype=np.int64)
        out.extend([own, own + nao])
    p = np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
    if sorted(p.tolist()) != list(range(2 * nao)):
        raise AssertionError("spinful AO permutation is not a permutation")
    return p


def run_gks_soc(species: Sequence[str], positions: np.ndarray, xc: str, basis: str, ecp: str,
                grid_level: int, conv_tol: float, q_frame: Optional[np.ndarray] = None) -> Dict[str, object]:
    """Spin-orbit GKS for one geometry (positions [n, 3] in A).

    Returns (DeepH order; energies eV):
        ``hamiltonian`` [2n, 2n] complex128 F[D] in the spinful layout (blocks cut at
        ``2 * offsets``), ``density_matrix`` [2n, 2n] complex128 (same layout, trace(D (S x I_2)) =
        nelectron), ``overlap`` [n, n] float64 (spinless), ``mo_energy`` [2n] eigenvalues of
        (F[D], S x I_2) from PySCF's ``mf.eig``, ``offsets`` [n_atoms + 1] spinless,
        ``elements_orbital_map``, ``nelectron``, ``scf_mo_energy_shift`` (max |eig(F[D]) -
        mf.mo_energy|, eV), ``scf_cycles``, ``ecp_elements``, ``collinear``.

    Raises:
        RuntimeError: if the SCF does not converge.
    """
    mf = gks(species, positions, xc, basis, ecp, grid_level, conv_tol, q_frame)
    mf.kernel()
    if not mf.converged:
        raise RuntimeError(f"GKS+SOC did not converge for {''.join(species)} ({xc}, {basis}/{ecp})")
    mol = mf.mol
    dm = mf.make_rdm1()
    s2 = mf.get_ovlp()
    fock = mf.get_fock(dm=dm)  # hcore (with ECP SOC) + veff[dm]: no DIIS, damping or level shift
    mo_energy, _ = mf.eig(fock, s2)
    nao = mol.nao_nr()
    s = np.asarray(s2[:nao, :nao].real, dtype=np.float64)
    perm, eom, offsets = deeph_ao_order(mol)
    p2 = spinful_ao_order(perm, offsets, nao)
    idx2 = np.ix_(p2, p2)
    return {
        "hamiltonian": np.asarray(fock, dtype=np.complex128)[idx2] * HARTREE_TO_EV,
        "density_matrix": np.asarray(dm, dtype=np.complex128)[idx2],
        "overlap": s[np.ix_(perm, perm)],
        "mo_energy": np.asarray(mo_energy, dtype=np.float64) * HARTREE_TO_EV,
        "scf_mo_energy_shift": float(np.max(np.abs(mo_energy - mf.mo_energy))) * HARTREE_TO_EV,
        "offsets": offsets,
        "elements_orbital_map": eom,
        "nelectron": int(mol.nelectron),
        "scf_cycles": int(getattr(mf, "cycles", -1)),
        "ecp_elements": sorted(mol._ecp),
        "collinear": COLLINEAR,
    }
