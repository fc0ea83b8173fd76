"""Hermitian symmetrization of predicted blocks, real and complex (spinful) alike."""
import numpy as np
import tensorflow as tf

from deeph_tf.model.head import symmetrize_blocks


def _blocks(rng, n, n_c, complex_values):
    real = rng.normal(size=(n, n_c, n_c))
    return real + 1j * rng.normal(size=(n, n_c, n_c)) if complex_values else real


def test_complex_blocks_become_hermitian(rng):
    """H_ii = H_ii^dagger and H_ij(R) = H_ji(-R)^dagger (conjugate transpose) for complex blocks."""
    node, edge = _blocks(rng, 3, 4, True), _blocks(rng, 4, 4, True)
    reverse = np.array([1, 0, 3, 2], np.int32)  # edges (R, i, j) and (-R, j, i) in pairs
    sym_node, sym_edge = (t.numpy() for t in symmetrize_blocks(tf.constant(node), tf.constant(edge), tf.constant(reverse)))
    np.testing.assert_allclose(sym_node, np.conj(np.swapaxes(sym_node, -1, -2)), atol=1e-15)
    np.testing.assert_allclose(sym_edge, np.conj(np.swapaxes(sym_edge[reverse], -1, -2)), atol=1e-15)
    # The Hermitian part, computed by hand: (H + H^dagger) / 2.
    np.testing.assert_allclose(sym_edge[0], 0.5 * (edge[0] + np.conj(edge[1]).T), atol=1e-15)
    assert np.abs(sym_edge.imag).max() > 0.1  # the imaginary parts survive (antisymmetric, not zeroed)


def test_hermitian_input_is_unchanged_and_real_blocks_use_the_transpose(rng):
    node = _blocks(rng, 2, 3, True)
    node = 0.5 * (node + np.conj(np.swapaxes(node, -1, -2)))
    edge = _blocks(rng, 2, 3, True)
    edge[1] = np.conj(edge[0]).T
    sym_node, sym_edge = symmetrize_blocks(tf.constant(node), tf.constant(edge), tf.constant([1, 0]))
    np.testing.assert_allclose(sym_node.numpy(), node, atol=1e-15)
    np.testing.assert_allclose(sym_edge.numpy(), edge, atol=1e-15)
    real = _blocks(rng, 2, 3, False)
    sym_real, _ = symmetrize_blocks(tf.constant(real), tf.constant(real), tf.constant([1, 0]))
    assert sym_real.dtype == tf.float64
    np.testing.assert_array_equal(sym_real.numpy(), 0.5 * (real + np.swapaxes(real, -1, -2)))
