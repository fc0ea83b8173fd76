"""Bloch sums H(k), S(k) from blocks and the generalized eigenproblem H c = e S c.

A block is <phi_i(cell 0)| A |phi_j(cell R)>. With Bloch orbitals
|j, k> = sum_R exp(2 pi i k.R) |phi_j(R)>, the k-space matrices are
A_ij(k) = sum_R A_ij(R) exp(2 pi i k.R)  (:func:`deeph_tf.data.block_h5.blocks_to_dense`),
Hermitian because A_ij(R) = A_ji(-R)^dagger. For real (time-reversal symmetric) data the
opposite sign gives A(-k) = A(k)^*, with the same eigenvalues, so bands cannot tell the
sign apart; the data check is physical instead: with this assembly MoTe2 (occupation 46)
has exactly 23 and Si exactly 4 bands below the DFT Fermi energy at every k tested, with
the Fermi energy inside the gap, and S(k) is positive definite (tests/infer/test_eigen.py).
k in reduced (fractional) coordinates of the reciprocal lattice, R in lattice units, eV.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import scipy.linalg

from deeph_tf.data.block_h5 import BlockSet, blocks_to_dense
from deeph_tf.data.structure import StructureFolder

__all__ = ["is_molecule", "spinful_overlap", "BlochSum", "bloch_operators", "generalized_eigenvalues",
           "band_energies"]


def is_molecule(blockset: BlockSet) -> bool:
    """True if every block has R = 0 (no periodic images)."""
    return not np.any(blockset.atom_pairs[:, :3])


def spinful_overlap(overlap: BlockSet) -> BlockSet:
    """Spinless overlap blocks as spinful ones, S (x) 1: [[S, 0], [0, S]] per block."""
    return BlockSet(overlap.atom_pairs, [np.kron(np.eye(2), b) for b in overlap.blocks])


class BlochSum:
    """A(k) = sum_R A(R) exp(2 pi i k.R), with the dense A(R) precomputed once.

    Equivalent to ``blocks_to_dense(blockset, offsets, k)``; faster for many k.

    Args:
        blockset: the blocks (float64 or complex128).
        orbital_offsets: [n_atoms + 1] row offsets of the atoms (spinful: doubled).
    """

    def __init__(self, blockset: BlockSet, orbital_offsets: Sequence[int]) -> None:
        self.orbital_offsets = np.asarray(orbital_offsets, dtype=np.int64)
        pairs = blockset.atom_pairs
        self.lattice_vectors, inverse = np.unique(pairs[:, :3], axis=0, return_inverse=True)
        inverse = np.asarray(inverse).reshape(-1)
        mats = []
        for r in range(len(self.lattice_vectors)):
            rows = np.nonzero(inverse == r)[0]
            subset = BlockSet(pairs[rows], [blockset.blocks[k] for k in rows])
            mats.append(blocks_to_dense(subset, self.orbital_offsets))  # plain sum of the R blocks
        n = int(self.orbital_offsets[-1])
        self.matrices = np.stack(mats) if mats else np.zeros((0, n, n), dtype=blockset.dtype)  # [nR, n, n]

    @property
    def size(self) -> int:
        return int(self.orbital_offsets[-1])

    def __call__(self, k_frac: Optional[Sequence[float]] = None) -> np.ndarray:
        """A(k), [n, n]; real at Gamma for real data, else complex128."""
        k = np.zeros(3) if k_frac is None else np.asarray(k_frac, dtype=np.float64).reshape(3)
        if not np.any(k):
            return self.matrices.sum(axis=0)
        phases = np.exp(2j * np.pi * (self.lattice_vectors @ k))
        # einsum, not tensordot: no multi-threaded BLAS call for these small products (thread
        # contention on busy machines made tensordot ~20x slower)
        return np.einsum("r,rij->ij", phases, self.matrices)


def bloch_operators(hamiltonian: BlockSet, overlap: BlockSet,
                    structure: StructureFolder) -> Tuple[BlochSum, BlochSum]:
    """Bloch sums of H and of S on H's rows (S (x) 1 for spinful H)."""
    spinful = structure.spinful
    offsets = structure.atom_orbital_offsets(spinful=spinful)
    s = spinful_overlap(overlap) if spinful else overlap
    return BlochSum(hamiltonian, offsets), BlochSum(s, offsets)


def generalized_eigenvalues(h: np.ndarray, s: np.ndarray, context: str = "") -> np.ndarray:
    """Ascending eigenvalues of h c = e s c ([n], eV), both symmetrized to be exactly Hermitian.

    Raises:
        ValueError: if s is not positive definite (names ``context``).
    """
    h = 0.5 * (h + h.conj().T)
    s = 0.5 * (s + s.conj().T)
    try:
        return scipy.linalg.eigh(h, s, eigvals_only=True)
    except np.linalg.LinAlgError as exc:
        raise ValueError(f"{context}: generalized eigenproblem failed, is the overlap positive definite? "
                         f"({exc})") from exc


def band_energies(hamiltonian: BlochSum, overlap: BlochSum, k_points: np.ndarray,
                  context: str = "") -> np.ndarray:
    """Eigenvalues at each k: [n_k, n_bands] eV, ascending per k."""
    k_points = np.asarray(k_points, dtype=np.float64).reshape(-1, 3)
    out = np.empty((len(k_points), hamiltonian.size), dtype=np.float64)
    for m, k in enumerate(k_points):
        out[m] = generalized_eigenvalues(hamiltonian(k), overlap(k), f"{context} at k = {k.tolist()}")
    return out
