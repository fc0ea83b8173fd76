"""Rotations into and out of each edge's frame, built from angles instead of Euler matrix products.

An edge r = |r| R e_z has R = Rz(alpha) Ry(beta) (gamma = 0: the frame's roll is free in an
SO(2) convolution, so the third factor, an identity, is dropped), and
D^l(R) = Dz(alpha) J Dz(beta) J^T with the constant J = D^l(Rx(-pi/2)). In the real basis
Dz(theta) only mixes the +m/-m pair of each m by the angle m theta:

    A Dz(theta) = A * cos(m theta) + flip_columns(A) * sin(m theta)
    Dz(theta) A = A * cos(m theta) - flip_rows(A) * sin(m theta)

(flip reverses the m axis, m = -l..l; ``sin(m theta)`` is odd in m). :meth:`EdgeFrame.matrix`
builds D^l once per forward pass, shared by all blocks, as J mixed by m beta, one GEMM with the
constant J^T over all edges, and a mixing by m alpha: O((2l+1)^2) per edge plus one shared GEMM,
where :func:`~deeph_tf.so3.wigner.wigner_D_from_euler` does four batched per-edge matrix
products (one with the identity Dz(0)) and keeps their intermediates for backpropagation.
Applying D stays one batched matmul per l and direction: applying the z rotations and J to the
features directly (no D at all) was measured 1.6-2x slower on CPU, because J then multiplies
every channel twice per direction (``benchmarks/edge_rotation.py``). ``frame_rotation`` (a fixed
Q0 that moves the pole of the angles off lattice axes, D(R) = D(Q0)^T D(Q0 R)) adds one
constant factor.

Contract (tests/so3/test_edge_frame.py): ``to_frame(x, l) == x @ D^l(R)`` and
``from_frame(y, l) == y @ D^l(R)^T`` with D from :func:`~deeph_tf.so3.wigner.wigner_D_from_euler`,
to 1e-12 in float64 for l <= 8.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from deeph_tf.so3.wigner import _z_to_y_matrix, edge_alignment_angles


class EdgeFrame:
    """The rotations R (R e_z = r_hat) of a set of edges, as angles.

    Args:
        vectors: [E, 3] edge vectors (any length; zero vectors get R = identity).
        lmax: largest l to rotate (0..8).
        fixed_rotation: optional constant 3x3 proper rotation Q0 (see the module docstring).

    Attributes:
        dtype: the dtype of ``vectors``; rotations run in it.
    """

    def __init__(self, vectors, lmax: int, fixed_rotation: Optional[np.ndarray] = None):
        import tensorflow as tf

        vectors = tf.convert_to_tensor(vectors)
        self.dtype, self.lmax = vectors.dtype, int(lmax)
        self._fixed = None
        if fixed_rotation is not None:
            from deeph_tf.so3.wigner import wigner_D_numpy

            q0 = np.asarray(fixed_rotation, np.float64)
            vectors = tf.linalg.matvec(tf.constant(q0, self.dtype), vectors)
            self._fixed = [wigner_D_numpy(l, q0).T for l in range(self.lmax + 1)]  # D(Q0)^T
        alpha, beta = edge_alignment_angles(vectors)
        m = tf.constant(np.arange(-self.lmax, self.lmax + 1), self.dtype)
        a, b = alpha[:, None] * m, beta[:, None] * m  # [E, 2L+1]
        self._cos_a, self._sin_a = tf.cos(a), tf.sin(a)
        self._cos_b, self._sin_b = tf.cos(b), tf.sin(b)
        self._matrices = {}

    def _angles(self, l: int, which: str):
        lo, hi = self.lmax - l, self.lmax + l + 1
        cos, sin = (self._cos_a, self._sin_a) if which == "a" else (self._cos_b, self._sin_b)
        return cos[:, lo:hi], sin[:, lo:hi]  # [E, 2l+1]

    def matrix(self, l: int):
        """D^l(R) [E, 2l+1, 2l+1], built once per l (then cached on this frame).

        d(beta) = J Dz(beta) J^T: the columns of the constant J mixed by the angles m beta, then
        one GEMM with J^T over all edges; D = Dz(alpha) d: its rows mixed by m alpha (and one
        more constant GEMM for a fixed rotation). O((2l+1)^2) per edge plus one shared GEMM,
        where the Euler product Dz J Dz J^T Dz is four batched per-edge matrix products.
        """
        import tensorflow as tf

        self._check(l)
        if l not in self._matrices:
            j = tf.constant(_z_to_y_matrix(l), self.dtype)
            cos_b, sin_b = self._angles(l, "b")
            j_dz = j[None] * cos_b[:, None, :] + tf.reverse(j, axis=[-1])[None] * sin_b[:, None, :]  # J Dz(b)
            small_d = tf.einsum("eik,jk->eij", j_dz, j)  # J Dz(b) J^T
            cos_a, sin_a = self._angles(l, "a")
            d = small_d * cos_a[:, :, None] - tf.reverse(small_d, axis=[1]) * sin_a[:, :, None]  # Dz(a) d
            if self._fixed is not None:
                d = tf.einsum("ik,ekj->eij", tf.constant(self._fixed[l], self.dtype), d)
            self._matrices[l] = d
        return self._matrices[l]

    def to_frame(self, x, l: int):
        """x [E, mul, 2l+1] -> x D^l(R), the features in the edge frame (edge along z)."""
        import tensorflow as tf

        return x if l == 0 else tf.matmul(x, self.matrix(l))

    def from_frame(self, y, l: int):
        """y [E, mul, 2l+1] (edge frame) -> y D^l(R)^T, back in the global frame."""
        import tensorflow as tf

        return y if l == 0 else tf.matmul(y, self.matrix(l), transpose_b=True)

    def _check(self, l: int) -> None:
        if not 0 <= l <= self.lmax:
            raise ValueError(f"l = {l} is outside the edge frame's 0..{self.lmax}")


__all__ = ["EdgeFrame"]
