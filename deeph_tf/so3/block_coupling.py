"""Orbital blocks <-> irreps: how a Hamiltonian block becomes network outputs and back.

A block B of shells l1, l2 (shape [2l1+1, 2l2+1], rows m1 = -l1..l1) transforms as
B' = D^l1 B D^l2^T. It is the tensor product l1 (x) l2 and splits exactly into irreps
L = |l1-l2|..l1+l2 (parity (-1)^(l1+l2)):

    v_L[M] = sum_{m1 m2} C^{l1 l2 L}[m1, m2, M] B[m1, m2],    B = sum_L sum_M C[., ., M] v_L[M]

with the real Clebsch-Gordan tensor C (``deeph_tf.so3.clebsch_gordan``). The map is one
orthogonal matrix W of shape [(2l1+1)(2l2+1), (2l1+1)(2l2+1)]: irreps = vec(B) W and
vec(B) = irreps W^T, exact in both directions.

:class:`ShellPairCoupling` handles one shell pair; :class:`OrbitalBlockCoupling` handles a
whole atom-pair block of two orbital layouts (e.g. O [0,0,1,1,2] with H [0,0,1]) with a single
matrix, which is what the network's output head uses.
"""
from __future__ import annotations

from functools import cached_property
from typing import List, Sequence, Tuple

import numpy as np

from deeph_tf.conventions import LMAX_SUPPORTED
from deeph_tf.so3.clebsch_gordan import clebsch_gordan
from deeph_tf.so3.irreps import Irreps, coupled_irreps


def _coupling_matrix(l1: int, l2: int) -> np.ndarray:
    """W [ (2l1+1)(2l2+1), sum_L (2L+1) ] float64 orthogonal; columns ordered L ascending, M."""
    columns = [
        clebsch_gordan(l1, l2, big_l).reshape((2 * l1 + 1) * (2 * l2 + 1), 2 * big_l + 1)
        for big_l in range(abs(l1 - l2), l1 + l2 + 1)
    ]
    return np.concatenate(columns, axis=1)


class ShellPairCoupling:
    """Coupling of one (l1, l2) orbital block to the irreps ``coupled_irreps(l1, l2)``.

    Args:
        l1: angular momentum of the row shell (0..4: outputs then reach L = 8).
        l2: angular momentum of the column shell.
    """

    def __init__(self, l1: int, l2: int):
        if l1 + l2 > LMAX_SUPPORTED:
            raise ValueError(f"shell pair ({l1}, {l2}) needs L up to {l1 + l2}; at most {LMAX_SUPPORTED} is supported")
        self.l1, self.l2 = int(l1), int(l2)
        self.irreps: Irreps = coupled_irreps(self.l1, self.l2)
        self.block_shape: Tuple[int, int] = (2 * self.l1 + 1, 2 * self.l2 + 1)

    @cached_property
    def matrix(self) -> np.ndarray:
        """Orthogonal W (float64, read-only): irreps = vec(block) @ W."""
        w = _coupling_matrix(self.l1, self.l2)
        w.setflags(write=False)
        return w

    def to_irreps_numpy(self, block: np.ndarray) -> np.ndarray:
        """[..., 2l1+1, 2l2+1] -> [..., dim]."""
        block = np.asarray(block)
        flat = block.reshape(block.shape[:-2] + (-1,))
        return flat @ self.matrix

    def to_block_numpy(self, irreps: np.ndarray) -> np.ndarray:
        """[..., dim] -> [..., 2l1+1, 2l2+1]."""
        irreps = np.asarray(irreps)
        return (irreps @ self.matrix.T).reshape(irreps.shape[:-1] + self.block_shape)

    def __repr__(self) -> str:
        return f"ShellPairCoupling(l1={self.l1}, l2={self.l2}) -> {self.irreps}"


class OrbitalBlockCoupling:
    """Coupling of a whole [n_i, n_j] atom-pair block to a flat irreps vector.

    Args:
        shells_i: l of each radial shell of the row atom, e.g. [0, 0, 1, 1, 2].
        shells_j: l of each radial shell of the column atom.

    The irreps vector concatenates the shell pairs in row-major order (shell a of i, then
    shell b of j); ``irreps`` describes it exactly and ``shell_pairs`` lists (a, b, l_a, l_b,
    slice) for each part. One dense orthogonal matrix [n_i n_j, n_i n_j] does the whole map,
    so a TF head needs a single matmul: ``irreps = reshape(block, [-1, n_i n_j]) @ W``.
    """

    def __init__(self, shells_i: Sequence[int], shells_j: Sequence[int]):
        self.shells_i: Tuple[int, ...] = tuple(int(l) for l in shells_i)
        self.shells_j: Tuple[int, ...] = tuple(int(l) for l in shells_j)
        self.n_i = sum(2 * l + 1 for l in self.shells_i)
        self.n_j = sum(2 * l + 1 for l in self.shells_j)
        parts: List[Tuple[int, int, int, int, slice]] = []
        irreps = Irreps()
        start = 0
        for a, la in enumerate(self.shells_i):
            for b, lb in enumerate(self.shells_j):
                pair = ShellPairCoupling(la, lb)
                parts.append((a, b, la, lb, slice(start, start + pair.irreps.dim)))
                irreps = irreps + pair.irreps
                start += pair.irreps.dim
        self.shell_pairs = parts
        self.irreps: Irreps = irreps

    @cached_property
    def matrix(self) -> np.ndarray:
        """Orthogonal W [n_i n_j, n_i n_j] float64 (read-only): irreps = vec(block) @ W."""
        offsets_i = np.cumsum([0] + [2 * l + 1 for l in self.shells_i])
        offsets_j = np.cumsum([0] + [2 * l + 1 for l in self.shells_j])
        w = np.zeros((self.n_i * self.n_j, self.irreps.dim))
        rows = np.arange(self.n_i * self.n_j).reshape(self.n_i, self.n_j)
        for a, b, la, lb, part in self.shell_pairs:
            block_rows = rows[offsets_i[a] : offsets_i[a + 1], offsets_j[b] : offsets_j[b + 1]].reshape(-1)
            w[block_rows, part] = ShellPairCoupling(la, lb).matrix
        w.setflags(write=False)
        return w

    def to_irreps_numpy(self, block: np.ndarray) -> np.ndarray:
        """[..., n_i, n_j] -> [..., irreps.dim]."""
        block = np.asarray(block)
        return block.reshape(block.shape[:-2] + (-1,)) @ self.matrix

    def to_block_numpy(self, irreps: np.ndarray) -> np.ndarray:
        """[..., irreps.dim] -> [..., n_i, n_j]."""
        irreps = np.asarray(irreps)
        return (irreps @ self.matrix.T).reshape(irreps.shape[:-1] + (self.n_i, self.n_j))

    def to_irreps(self, block):
        """TensorFlow: [..., n_i, n_j] -> [..., irreps.dim], dtype of ``block``."""
        import tensorflow as tf

        block = tf.convert_to_tensor(block)
        w = tf.constant(self.matrix, dtype=block.dtype)
        flat = tf.reshape(block, tf.concat([tf.shape(block)[:-2], [self.n_i * self.n_j]], axis=0))
        return tf.linalg.matvec(w, flat, transpose_a=True)

    def to_block(self, irreps):
        """TensorFlow: [..., irreps.dim] -> [..., n_i, n_j], dtype of ``irreps``."""
        import tensorflow as tf

        irreps = tf.convert_to_tensor(irreps)
        w = tf.constant(self.matrix, dtype=irreps.dtype)
        flat = tf.linalg.matvec(w, irreps)
        return tf.reshape(flat, tf.concat([tf.shape(irreps)[:-1], [self.n_i, self.n_j]], axis=0))

    def __repr__(self) -> str:
        return f"OrbitalBlockCoupling({list(self.shells_i)}, {list(self.shells_j)}) -> {self.irreps}"
