"""Spinful (spin-orbit) blocks as a scalar part and an axial-vector part.

A spinful block of atoms i, j (DeepH layout: [2n_i, 2n_j] complex, [[up-up, up-down],
[down-up, down-down]], spin outer, orbital inner) is written as

    H = I_2 (x) A + i * sum_k sigma_k (x) B_k,        k = x, y, z (Pauli matrices)

with A and B_k real [n_i, n_j] (Kronecker order spin (x) orbital). In components:

    H_uu = A + i B_z,   H_dd = A - i B_z,   H_ud = B_y + i B_x,   H_du = -B_y + i B_x.

Every time-reversal-symmetric H (Theta H Theta^-1 = H, Theta = -i sigma_y K) has exactly this
form; a general Hermitian-per-pair complex block has four more real parts (Im of the sigma_0
part and Re of the sigma_k parts), the *time-reversal-odd residual* (magnetism), which this
decomposition cannot hold and :func:`time_reversal_residual` measures.

Symmetries in terms of (A, B):

- Hermiticity H_ij(R)^dagger = H_ji(-R): A_ji(-R) = A_ij(R)^T and B_k,ji(-R) = -B_k,ij(R)^T
  (on-site B_ii(0) antisymmetric).
- Rotation Q (spin rotates with U = D^{1/2}(Q), U sigma_k U^dagger = sum_j R_jk sigma_j):
  A' = D^{l_i} A D^{l_j}^T and B'_j = sum_k R_jk D^{l_i} B_k D^{l_j}^T, R = Q for proper
  rotations; spin is axial, so for improper Q the vector index rotates with det(Q) Q
  (inversion leaves it alone, the orbital parity (-1)^(l_i+l_j) acts on A and B alike).

So B's vector index is an l = 1, even-parity (1e) irrep. In this project's real-harmonic
order, l = 1 components are (y, z, x) (``conventions``); :data:`L1_FROM_CARTESIAN` maps them.
:class:`SpinBlockCoupling` turns the l_i (x) l_j (x) 1e tensor B of a whole atom-pair block into
irreps (l_i (x) l_j -> L, then L (x) 1 -> L' = |L-1|..L+1, parity (-1)^(l_i+l_j)) with one
orthogonal matrix, as :class:`~deeph_tf.so3.block_coupling.OrbitalBlockCoupling` does for A.

NumPy functions take any leading batch shape; the TensorFlow ones (suffix ``_tf``) the same.
B arrays are [..., 3, n_i, n_j] with the Cartesian index k = (x, y, z) first.
"""
from __future__ import annotations

from functools import cached_property
from typing import List, Sequence, Tuple

import numpy as np

from deeph_tf.conventions import LMAX_SUPPORTED
from deeph_tf.so3.block_coupling import OrbitalBlockCoupling
from deeph_tf.so3.clebsch_gordan import clebsch_gordan
from deeph_tf.so3.irreps import Irrep, Irreps

__all__ = ["PAULI", "L1_FROM_CARTESIAN", "CARTESIAN_FROM_L1", "split_spinful", "merge_spinful",
           "time_reversal_residual", "axial_rotation", "rotate_spin_vector", "split_spinful_tf",
           "merge_spinful_tf", "SpinBlockCoupling", "max_spinful_shell"]

#: [3, 2, 2] complex128 Pauli matrices sigma_x, sigma_y, sigma_z.
PAULI = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=np.complex128)
PAULI.setflags(write=False)
#: l = 1 component m (order y, z, x) -> Cartesian index: B_l1[..., m, :, :] = B[..., L1_FROM_CARTESIAN[m], :, :].
L1_FROM_CARTESIAN = (1, 2, 0)
#: Cartesian index k (x, y, z) -> l = 1 component: B[..., k, :, :] = B_l1[..., CARTESIAN_FROM_L1[k], :, :].
CARTESIAN_FROM_L1 = (2, 0, 1)


def max_spinful_shell() -> int:
    """Largest shell l a spinful layout may have: L' = 2l + 1 must stay <= LMAX_SUPPORTED."""
    return (LMAX_SUPPORTED - 1) // 2


def _halves(h: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(uu, ud, du, dd) of [..., 2n, 2m] blocks, each [..., n, m]."""
    rows, cols = h.shape[-2], h.shape[-1]
    if rows % 2 or cols % 2:
        raise ValueError(f"a spinful block has an even number of rows and columns, received shape {h.shape}")
    n, m = rows // 2, cols // 2
    return h[..., :n, :m], h[..., :n, m:], h[..., n:, :m], h[..., n:, m:]


def _pauli_parts(h: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """H = sum_mu sigma_mu (x) C_mu: (C_0 [..., n, m], C [..., 3, n, m]) complex."""
    uu, ud, du, dd = _halves(np.asarray(h))
    c0 = 0.5 * (uu + dd)
    c = np.stack([0.5 * (ud + du), 0.5j * (ud - du), 0.5 * (uu - dd)], axis=-3)
    return c0, c


def split_spinful(h: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """[..., 2n, 2m] complex -> (A [..., n, m], B [..., 3, n, m]) float64.

    The time-reversal-symmetric part of H (exact for TR-symmetric data); the rest is dropped
    (check it with :func:`time_reversal_residual`).
    """
    c0, c = _pauli_parts(h)
    return np.ascontiguousarray(c0.real, dtype=np.float64), np.ascontiguousarray(c.imag, dtype=np.float64)


def time_reversal_residual(h: np.ndarray) -> float:
    """max |.| of the time-reversal-odd parts of [..., 2n, 2m] blocks (Im C_0, Re C_k), same unit as H."""
    h = np.asarray(h)
    if h.size == 0:
        return 0.0
    c0, c = _pauli_parts(h)
    return float(max(np.max(np.abs(c0.imag)), np.max(np.abs(c.real))))


def merge_spinful(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A [..., n, m], B [..., 3, n, m]) real -> [..., 2n, 2m] complex128, I (x) A + i sum_k sigma_k (x) B_k."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if b.shape[:-3] != a.shape[:-2] or b.shape[-3] != 3 or b.shape[-2:] != a.shape[-2:]:
        raise ValueError(f"B must have shape {a.shape[:-2] + (3,) + a.shape[-2:]} for A of shape {a.shape}, "
                         f"received {b.shape}")
    bx, by, bz = b[..., 0, :, :], b[..., 1, :, :], b[..., 2, :, :]
    top = np.concatenate([a + 1j * bz, by + 1j * bx], axis=-1)
    bottom = np.concatenate([-by + 1j * bx, a - 1j * bz], axis=-1)
    return np.concatenate([top, bottom], axis=-2)


def axial_rotation(q: np.ndarray) -> np.ndarray:
    """[3, 3] how an axial vector (spin) transforms under the O(3) matrix Q: det(Q) Q."""
    q = np.asarray(q, dtype=np.float64)
    return np.linalg.det(q) * q


def rotate_spin_vector(b: np.ndarray, q: np.ndarray) -> np.ndarray:
    """B'_j = sum_k (det(Q) Q)_jk B_k for B [..., 3, n, m] (the orbital part is left alone)."""
    return np.einsum("jk,...kab->...jab", axial_rotation(q), np.asarray(b))


def split_spinful_tf(h):
    """TensorFlow [..., 2n, 2m] complex -> (A [..., n, m], B [..., 3, n, m]), real dtype of ``h``."""
    import tensorflow as tf

    h = tf.convert_to_tensor(h)
    n, m = h.shape[-2] // 2, h.shape[-1] // 2
    uu, ud, du, dd = h[..., :n, :m], h[..., :n, m:], h[..., n:, :m], h[..., n:, m:]
    a = tf.math.real(0.5 * (uu + dd))
    b = tf.stack([tf.math.imag(0.5 * (ud + du)), tf.math.real(0.5 * (ud - du)), tf.math.imag(0.5 * (uu - dd))], axis=-3)
    return a, b


def merge_spinful_tf(a, b):
    """TensorFlow (A [..., n, m], B [..., 3, n, m]) real -> [..., 2n, 2m] complex (complex64 for float32)."""
    import tensorflow as tf

    a, b = tf.convert_to_tensor(a), tf.convert_to_tensor(b)
    bx, by, bz = b[..., 0, :, :], b[..., 1, :, :], b[..., 2, :, :]
    top = tf.concat([tf.complex(a, bz), tf.complex(by, bx)], axis=-1)
    bottom = tf.concat([tf.complex(-by, bx), tf.complex(a, -bz)], axis=-1)
    return tf.concat([top, bottom], axis=-2)


class SpinBlockCoupling:
    """B of a whole [3, n_i, n_j] atom-pair block <-> one flat irreps vector.

    Args:
        shells_i, shells_j: l of each radial shell of the row and column atoms.

    Each term L of the orbital coupling (``OrbitalBlockCoupling``, parity p = (-1)^(l1+l2))
    couples with the axial l = 1 index to L' = |L-1|..L+1, parity p (L' = 0 from L = 1 is the
    L.S-like scalar of on-site p-p blocks). ``irreps`` lists the terms in that order (orbital
    terms, then L' ascending); ``matrix`` W [3 n_i n_j, 3 n_i n_j] is orthogonal with
    irreps = vec(B) @ W, vec(B) row-major over (k, a, b), k Cartesian.
    """

    def __init__(self, shells_i: Sequence[int], shells_j: Sequence[int]):
        largest = max(list(shells_i) + list(shells_j) + [0])
        if largest > max_spinful_shell():
            raise ValueError(f"spinful blocks of shells up to l = {largest} need L' up to {2 * largest + 1}; "
                             f"at most l = {max_spinful_shell()} is supported (L' <= {LMAX_SUPPORTED})")
        self.orbital = OrbitalBlockCoupling(shells_i, shells_j)
        self.n_i, self.n_j = self.orbital.n_i, self.orbital.n_j
        terms: List[Tuple[int, int, int]] = []  # (orbital component start, L, L')
        irreps: List[Tuple[int, Irrep]] = []
        start = 0
        for mul, ir in self.orbital.irreps:
            for _ in range(mul):
                for big_l2 in range(abs(ir.l - 1), ir.l + 2):
                    terms.append((start, ir.l, big_l2))
                    irreps.append((1, Irrep(big_l2, ir.p)))
                start += ir.dim
        self._terms = terms
        self.irreps: Irreps = Irreps(irreps)

    @cached_property
    def matrix(self) -> np.ndarray:
        """Orthogonal W [3 n_i n_j, irreps.dim] float64 (read-only): irreps = vec(B) @ W."""
        w_orb = self.orbital.matrix  # [n_i n_j, dim_orb]
        n_entries = self.n_i * self.n_j
        w = np.zeros((3, n_entries, self.irreps.dim))
        column = 0
        for start, big_l, big_l2 in self._terms:
            cg = clebsch_gordan(big_l, 1, big_l2)  # [2L+1, 3 (l=1 order y,z,x), 2L'+1]
            part = w_orb[:, start : start + 2 * big_l + 1]  # [n_entries, 2L+1]
            block = np.einsum("aM,Mmc->mac", part, cg)  # [3 (l=1 order), n_entries, 2L'+1]
            w[:, :, column : column + 2 * big_l2 + 1] = block[list(CARTESIAN_FROM_L1)]
            column += 2 * big_l2 + 1
        w = w.reshape(3 * n_entries, self.irreps.dim)
        w.setflags(write=False)
        return w

    def to_irreps_numpy(self, b: np.ndarray) -> np.ndarray:
        """[..., 3, n_i, n_j] -> [..., irreps.dim]."""
        b = np.asarray(b)
        return b.reshape(b.shape[:-3] + (-1,)) @ self.matrix

    def to_block_numpy(self, irreps: np.ndarray) -> np.ndarray:
        """[..., irreps.dim] -> [..., 3, n_i, n_j]."""
        irreps = np.asarray(irreps)
        return (irreps @ self.matrix.T).reshape(irreps.shape[:-1] + (3, self.n_i, self.n_j))

    def __repr__(self) -> str:
        return f"SpinBlockCoupling({list(self.orbital.shells_i)}, {list(self.orbital.shells_j)}) -> {self.irreps}"
