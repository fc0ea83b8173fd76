"""Checks of spinful blocks: the time-reversal form H = I_2 (x) A + i sum_k sigma_k (x) B_k, S (x) I_2.

A spinful block (2 n_i x 2 n_j, spin outer: [[uu, ud], [du, dd]]) can always be written as
``I_2 (x) A + i (sigma_x (x) B_x + sigma_y (x) B_y + sigma_z (x) B_z)`` with complex n_i x n_j
matrices::

    A   = (uu + dd) / 2          B_z = (uu - dd) / (2i)
    B_x = (ud + du) / (2i)       B_y = (ud - du) / 2

Time-reversal symmetry (Theta = -i sigma_y K) holds exactly when A and every B_k are real; then A
is the scalar (spin-independent) part and B = (B_x, B_y, B_z) the spin-orbit part, an axial vector
times an orbital block. :func:`time_reversal_deviation` measures max |Im| over A and B_k, in the
units of the block (eV for H).
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np


def spin_components(block: np.ndarray) -> Dict[str, np.ndarray]:
    """{"A", "Bx", "By", "Bz"}: the complex n_i x n_j parts of a [2 n_i, 2 n_j] spinful block."""
    b = np.asarray(block)
    if b.ndim != 2 or b.shape[0] % 2 or b.shape[1] % 2:
        raise ValueError(f"a spinful block has even shape (2 n_i, 2 n_j), got {b.shape}")
    ni, nj = b.shape[0] // 2, b.shape[1] // 2
    uu, ud, du, dd = b[:ni, :nj], b[:ni, nj:], b[ni:, :nj], b[ni:, nj:]
    return {"A": (uu + dd) / 2, "Bx": (ud + du) / 2j, "By": (ud - du) / 2, "Bz": (uu - dd) / 2j}


def time_reversal_deviation(block: np.ndarray) -> float:
    """max |Im| of A, B_x, B_y, B_z of one spinful block (0 for a time-reversal-symmetric block)."""
    parts = spin_components(block)
    return float(max((np.max(np.abs(p.imag)) if p.size else 0.0) for p in parts.values()))


def spin_orbit_magnitude(block: np.ndarray) -> float:
    """max |Re B_k| of one spinful block: the size of its spin-orbit part (units of the block)."""
    parts = spin_components(block)
    return float(max((np.max(np.abs(parts[k].real)) if parts[k].size else 0.0) for k in ("Bx", "By", "Bz")))


def spinful_overlap_dense(overlap: np.ndarray, offsets: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """S (x) I_2 in the DeepH spinful dense order (atom by atom: its up orbitals, then its down ones).

    Args:
        overlap: [n, n] spinless dense overlap, atoms in order, cut by ``offsets`` [n_atoms + 1].

    Returns:
        ([2n, 2n] float64 matrix, [n_atoms + 1] doubled offsets).
    """
    off = np.asarray(offsets, dtype=np.int64)
    off2 = 2 * off
    n2 = int(off2[-1])
    out = np.zeros((n2, n2))
    for i in range(len(off) - 1):
        for j in range(len(off) - 1):
            out[off2[i]:off2[i + 1], off2[j]:off2[j + 1]] = np.kron(np.eye(2), overlap[off[i]:off[i + 1],
                                                                                        off[j]:off[j + 1]])
    return out, off2


def check_spinful_structure(structure, mo_energy_eV: np.ndarray) -> Dict[str, float]:
    """The numbers :mod:`.validate` checks for one spinful structure read from disk.

    Args:
        structure: a loaded :class:`deeph_tf.data.StructureFolder` with ``spinful: true``.
        mo_energy_eV: [2n] PySCF's orbital energies (eV), the reference.

    Returns:
        ``eig_err`` max |eig(H, S (x) I_2) - mo_energy| (eV), ``herm_err`` max Hermiticity deviation
        of hamiltonian.h5 / overlap.h5 / density_matrix.h5, ``tr_err_hamiltonian`` (eV) and
        ``tr_err_density_matrix``: the largest time-reversal deviation (:func:`time_reversal_deviation`)
        over all blocks, ``so_max_hamiltonian`` max |B_k| (eV), ``n_electrons`` trace(D (S (x) I_2))
        (real part; NaN without density_matrix.h5), ``eig_min``/``eig_max`` (eV).

    Raises:
        AssertionError: if ``mo_energy_eV`` does not have one energy per spin-orbital.
    """
    import scipy.linalg

    from deeph_tf.data import blocks_to_dense

    off = structure.atom_orbital_offsets()
    out: Dict[str, float] = {"herm_err": 0.0}
    overlap = structure.read_blocks("overlap")
    out["herm_err"] = overlap.max_hermiticity_deviation()
    s2, off2 = spinful_overlap_dense(blocks_to_dense(overlap, off), off)
    dense = {}
    for name in ("hamiltonian", "density_matrix"):
        if not structure.has_blocks(name):
            continue
        bs = structure.read_blocks(name)
        out["herm_err"] = max(out["herm_err"], bs.max_hermiticity_deviation())
        out[f"tr_err_{name}"] = max((time_reversal_deviation(b) for b in bs.blocks), default=0.0)
        if name == "hamiltonian":
            out["so_max_hamiltonian"] = max((spin_orbit_magnitude(b) for b in bs.blocks), default=0.0)
        dense[name] = blocks_to_dense(bs, off2)
    h = dense["hamiltonian"]
    eig = scipy.linalg.eigh((h + h.conj().T) / 2, s2, eigvals_only=True)
    ref = np.asarray(mo_energy_eV, dtype=np.float64).ravel()
    if ref.shape != eig.shape:
        raise AssertionError(f"{structure.path}: {ref.size} reference energies for {eig.size} spin-orbitals")
    out["eig_err"] = float(np.max(np.abs(eig - ref)))
    out["eig_min"], out["eig_max"] = float(eig[0]), float(eig[-1])
    out["n_electrons"] = (float(np.trace(dense["density_matrix"] @ s2).real) if "density_matrix" in dense
                          else float("nan"))
    return out
