"""EdgeFrame applies D^l(R) (R e_z = r_hat) and its transpose without dense matrices: it must
equal the dense reference, with and without a fixed frame rotation, for every l <= 8."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from deeph_tf.model.tensor_product import edge_rotations
from deeph_tf.so3.edge_frame import EdgeFrame
from deeph_tf.so3.wigner import wigner_D_numpy


def edge_vectors(rng, dtype):
    v = rng.normal(size=(40, 3))
    v[0] = 0.0  # zero vector: identity
    v[1] = [0.0, 0.0, 1.5]  # on the pole
    v[2] = [0.0, 0.0, -0.7]  # opposite pole
    v[3] = [1.0, 0.0, 0.0]
    return tf.constant(v, dtype)


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 5e-6)])
def test_edge_frame_equals_the_dense_wigner_matrices(rng, dtype, tol):
    vectors = edge_vectors(rng, dtype)
    frame, dense = EdgeFrame(vectors, 8), edge_rotations(vectors, 8)
    for l in range(9):
        x = tf.constant(rng.normal(size=(40, 3, 2 * l + 1)), dtype)
        np.testing.assert_allclose(frame.to_frame(x, l), tf.matmul(x, dense[l]), atol=tol)
        np.testing.assert_allclose(frame.from_frame(x, l), tf.matmul(x, dense[l], transpose_b=True), atol=tol)
        np.testing.assert_allclose(frame.from_frame(frame.to_frame(x, l), l), x, atol=tol)  # orthogonal


def test_fixed_rotation_premultiplies_its_wigner_matrix(rng):
    from scipy.spatial.transform import Rotation

    q0 = Rotation.random(random_state=3).as_matrix()
    vectors = edge_vectors(rng, "float64")
    rotated = edge_rotations(tf.linalg.matvec(tf.constant(q0), vectors), 5)
    frame = EdgeFrame(vectors, 5, fixed_rotation=q0)
    for l in range(6):
        expected = np.einsum("ij,ejk->eik", wigner_D_numpy(l, q0).T, rotated[l].numpy())
        np.testing.assert_allclose(frame.matrix(l), expected, atol=1e-12)


def test_an_l_outside_the_frame_is_refused(rng):
    with pytest.raises(ValueError, match="outside"):
        EdgeFrame(edge_vectors(rng, "float64"), 2).to_frame(tf.zeros([40, 1, 7], tf.float64), 3)
