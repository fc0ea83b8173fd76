"""Real Wigner-D matrices: Y^l(Q r) = D^l(Q) Y^l(r), homomorphism, orthogonality, XLA."""
import numpy as np
import pytest
import tensorflow as tf

from conftest import TOLERANCE
from deeph_tf.conventions import euler_zyz_to_matrix, matrix_to_euler_zyz
from deeph_tf.so3 import (
    edge_alignment_angles,
    spherical_harmonics,
    wigner_D,
    wigner_D_from_euler,
    wigner_D_numpy,
    z_rotation_D,
)
from deeph_tf.so3.rotations import random_rotation_matrices

LMAX = 8


def test_harmonics_rotate_with_D(rng, float_dtype):
    """Acceptance: max |Y(Q r) - D(Q) Y(r)| <= 1e-5 (float32), 1e-10 (float64), all l <= 8."""
    rotations = random_rotation_matrices(16, seed=1, dtype=float_dtype)  # tensorflow-graphics
    vectors = tf.constant(rng.normal(size=(16, 20, 3)), dtype=float_dtype)
    rotated = tf.einsum("bij,bnj->bni", rotations, vectors)
    y_rotated = spherical_harmonics(LMAX, rotated)
    y = spherical_harmonics(LMAX, vectors)
    for l, d in enumerate(wigner_D(LMAX, rotations)):
        assert d.dtype == tf.as_dtype(float_dtype)
        predicted = tf.einsum("bij,bnj->bni", d, y[..., l * l : (l + 1) ** 2])
        error = np.abs(predicted.numpy() - y_rotated[..., l * l : (l + 1) ** 2].numpy()).max()
        assert error <= TOLERANCE[float_dtype], f"l={l}: {error:.2e}"


def test_homomorphism_and_orthogonality():
    q1, q2 = random_rotation_matrices(2, seed=7).numpy()
    for l in range(LMAX + 1):
        d1, d2, d12 = wigner_D_numpy(l, q1), wigner_D_numpy(l, q2), wigner_D_numpy(l, q1 @ q2)
        np.testing.assert_allclose(d12, d1 @ d2, atol=1e-12)
        np.testing.assert_allclose(d1 @ d1.T, np.eye(2 * l + 1), atol=1e-12)
        np.testing.assert_allclose(wigner_D_numpy(l, np.eye(3)), np.eye(2 * l + 1), atol=1e-12)
        np.testing.assert_allclose(np.linalg.det(d1), 1.0, atol=1e-10)


def test_l1_is_the_rotation_in_y_z_x_order():
    q = random_rotation_matrices(1, seed=3).numpy()[0]
    perm = [1, 2, 0]  # DeepH p order (y, z, x)
    np.testing.assert_allclose(wigner_D_numpy(1, q), q[np.ix_(perm, perm)], atol=1e-12)


def test_euler_construction_matches_matrix_construction(rng, float_dtype):
    angles = rng.uniform(-np.pi, np.pi, size=(6, 3))
    angles[0] = [0.3, 0.0, 0.2]  # beta = 0 (gimbal lock)
    angles[1] = [0.3, np.pi, -0.4]  # beta = pi
    matrices = np.stack([euler_zyz_to_matrix(*a) for a in angles])
    by_matrix = wigner_D(LMAX, tf.constant(matrices, dtype=float_dtype))
    for l in range(LMAX + 1):
        by_euler = wigner_D_from_euler(l, *[tf.constant(angles[:, k], dtype=float_dtype) for k in range(3)])
        np.testing.assert_allclose(by_euler.numpy(), by_matrix[l].numpy(), atol=10 * TOLERANCE[float_dtype])
        np.testing.assert_allclose(by_matrix[l].numpy(), wigner_D_numpy(l, matrices), atol=TOLERANCE[float_dtype])
    for a, q in zip(angles[2:], matrices[2:]):
        np.testing.assert_allclose(euler_zyz_to_matrix(*matrix_to_euler_zyz(q)), q, atol=1e-12)


def test_z_rotation_is_sparse_and_exact():
    angle = 0.7
    rz = euler_zyz_to_matrix(angle, 0.0, 0.0)
    for l in range(LMAX + 1):
        d = z_rotation_D(l, tf.constant(angle, dtype=tf.float64)).numpy()
        np.testing.assert_allclose(d, wigner_D_numpy(l, rz), atol=1e-12)
        assert np.count_nonzero(np.abs(d) > 1e-14) <= 2 * (2 * l + 1)


def test_edge_alignment_maps_z_onto_the_edge(rng):
    edges = np.concatenate([rng.normal(size=(10, 3)), [[0, 0, 2.0], [0, 0, -1.0], [3.0, 0, 0], [0, 0, 0]]])
    alpha, beta = edge_alignment_angles(tf.constant(edges))
    d1 = wigner_D_from_euler(1, alpha, beta, tf.zeros_like(alpha)).numpy()
    ez_in_yzx = np.array([0.0, 1.0, 0.0])
    for edge, d in zip(edges[:-1], d1[:-1]):
        unit = edge / np.linalg.norm(edge)
        np.testing.assert_allclose(d @ ez_in_yzx, unit[[1, 2, 0]], atol=1e-12)
    np.testing.assert_allclose(d1[-1], np.eye(3), atol=1e-12)  # zero edge (padding) -> identity
    variable = tf.Variable(edges)
    with tf.GradientTape() as tape:
        a, b = edge_alignment_angles(variable)
        total = tf.reduce_sum(a + b)
    assert np.all(np.isfinite(tape.gradient(total, variable).numpy()))


def test_runs_under_xla():
    rotations = random_rotation_matrices(4, seed=5, dtype="float32")
    compiled = tf.function(lambda q: wigner_D(4, q), jit_compile=True)
    for l, d in enumerate(compiled(rotations)):
        np.testing.assert_allclose(d.numpy(), wigner_D_numpy(l, rotations.numpy()), atol=1e-5)
    compiled_euler = tf.function(lambda a, b: wigner_D_from_euler(3, a, b, 0.0 * a), jit_compile=True)
    a, b = tf.constant([0.1, 2.0]), tf.constant([0.5, 3.0])
    expected = wigner_D_numpy(3, np.stack([euler_zyz_to_matrix(x, y, 0) for x, y in zip(a.numpy(), b.numpy())]))
    np.testing.assert_allclose(compiled_euler(a, b).numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("bad", [9, -1])
def test_rejects_unsupported_l(bad):
    with pytest.raises(ValueError, match="lmax"):
        wigner_D_numpy(bad, np.eye(3))
