"""Orbital block <-> irreps coupling: exact round trip and equivariance."""
import numpy as np
import pytest
import tensorflow as tf

from deeph_tf.so3 import Irreps, OrbitalBlockCoupling, ShellPairCoupling, wigner_D_numpy
from deeph_tf.so3.rotations import random_rotation_matrices


@pytest.mark.parametrize("l1,l2", [(l1, l2) for l1 in range(5) for l2 in range(5)])
def test_shell_pair_round_trip_and_equivariance(l1, l2, rng):
    coupling = ShellPairCoupling(l1, l2)
    block = rng.normal(size=(3, 2 * l1 + 1, 2 * l2 + 1))
    irreps_vector = coupling.to_irreps_numpy(block)
    assert irreps_vector.shape == (3, coupling.irreps.dim)
    np.testing.assert_allclose(coupling.to_block_numpy(irreps_vector), block, atol=1e-12)

    q = random_rotation_matrices(1, seed=l1 * 5 + l2).numpy()[0]
    rotated_block = wigner_D_numpy(l1, q) @ block @ wigner_D_numpy(l2, q).T
    rotated_irreps = coupling.to_irreps_numpy(rotated_block)
    for (mul, ir), part in zip(coupling.irreps, coupling.irreps.slices()):
        expected = np.einsum("ij,bj->bi", wigner_D_numpy(ir.l, q), irreps_vector[:, part])
        np.testing.assert_allclose(rotated_irreps[:, part], expected, atol=1e-12)


def test_parity_of_coupled_irreps():
    assert ShellPairCoupling(1, 2).irreps == Irreps("1x1o+1x2o+1x3o")
    assert ShellPairCoupling(2, 2).irreps == Irreps("1x0e+1x1e+1x2e+1x3e+1x4e")


def test_rejects_pairs_beyond_l8():
    with pytest.raises(ValueError, match="at most 8"):
        ShellPairCoupling(5, 4)


def test_orbital_block_coupling_numpy_and_tensorflow(rng):
    shells_o, shells_h = [0, 0, 1, 1, 2], [0, 0, 1]
    coupling = OrbitalBlockCoupling(shells_o, shells_h)
    assert (coupling.n_i, coupling.n_j) == (13, 5)
    assert coupling.irreps.dim == 13 * 5
    w = coupling.matrix
    np.testing.assert_allclose(w.T @ w, np.eye(65), atol=1e-12)

    blocks = rng.normal(size=(4, 13, 5))
    vector = coupling.to_irreps_numpy(blocks)
    np.testing.assert_allclose(coupling.to_block_numpy(vector), blocks, atol=1e-12)
    # Each shell-pair part equals the shell-pair coupling of the sub-block.
    offsets_i, offsets_j = np.cumsum([0, 1, 1, 3, 3, 5]), np.cumsum([0, 1, 1, 3])
    for a, b, la, lb, part in coupling.shell_pairs:
        sub = blocks[:, offsets_i[a] : offsets_i[a + 1], offsets_j[b] : offsets_j[b + 1]]
        np.testing.assert_allclose(vector[:, part], ShellPairCoupling(la, lb).to_irreps_numpy(sub), atol=1e-12)

    compiled = tf.function(coupling.to_irreps, jit_compile=True)
    tf_vector = compiled(tf.constant(blocks, tf.float32))
    np.testing.assert_allclose(tf_vector.numpy(), vector, atol=1e-5)
    back = coupling.to_block(tf.constant(vector, tf.float64)).numpy()
    np.testing.assert_allclose(back, blocks, atol=1e-12)
