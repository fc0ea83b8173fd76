"""Output head of the spin part of spinful (spin-orbit) blocks, and its Hermiticity.

A spinful block is H = I_2 (x) A + i sum_k sigma_k (x) B_k (:mod:`deeph_tf.so3.spin_blocks`):
the ordinary :class:`~deeph_tf.model.head.BlockHead` predicts A, :class:`SpinBlockHead`
predicts B [n, 3, n_c, n_c] (k = x, y, z) from the irreps l_i (x) l_j (x) 1e of every shell pair
(``SpinBlockCoupling``), scaled per element (pair) with dataset statistics and shifted on
on-site 0e terms only (the L.S-like scalar of p-p, d-d blocks: equivariant). Because B is real
and enters with i sigma_k, predictions are time-reversal symmetric by construction;
:func:`antisymmetrize_spin` makes them exactly Hermitian: B_ji(-R) = -B_ij(R)^T.
"""
from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf

from deeph_tf.model.head import BlockHead, _with_parity
from deeph_tf.so3.irreps import Irreps
from deeph_tf.so3.spin_blocks import SpinBlockCoupling


def spin_block_irreps(common_shells: Sequence[int], parity: bool = True) -> Irreps:
    """Irreps of the spin part [3, n_c, n_c] of a spinful block, in coupling order."""
    return _with_parity(SpinBlockCoupling(common_shells, common_shells).irreps, parity)


@keras.saving.register_keras_serializable(package="deeph_tf")
class SpinBlockHead(BlockHead):
    """Features -> standardized irreps -> spin parts B of spinful blocks.

    Arguments as :class:`BlockHead` (``scale``/``shift`` have one column per term of
    :func:`spin_block_irreps`). Output: [n, 3, n_c, n_c], B_k with k = x, y, z (eV for H).
    """

    def _make_coupling(self):
        return SpinBlockCoupling(self.common_shells, self.common_shells)

    @property
    def block_shape(self):
        return [3, self.coupling.n_i, self.coupling.n_j]


def antisymmetrize_spin(node_spin, edge_spin, edge_reverse):
    """Exactly Hermitian spin parts: on-site (B - B^T)/2, off-site (B_e - B_rev(e)^T)/2.

    With H = I (x) A + i sigma.B, H_ij(R)^dagger = H_ji(-R) holds iff A_ji(-R) = A_ij(R)^T and
    B_ji(-R) = -B_ij(R)^T (transpose of the orbital indices, per k).

    Args:
        node_spin: [N, 3, n_c, n_c]; edge_spin: [E, 3, n_c, n_c]; edge_reverse: [E] int32.
    Returns:
        (node [N, 3, n_c, n_c], edge [E, 3, n_c, n_c]), dtype of the inputs.
    """
    node = 0.5 * (node_spin - tf.linalg.matrix_transpose(node_spin))
    partner = tf.gather(edge_spin, edge_reverse)
    edge = 0.5 * (edge_spin - tf.linalg.matrix_transpose(partner))
    return node, edge
