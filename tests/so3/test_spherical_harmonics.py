"""Real spherical harmonics: independent formula, norms, dtypes, gradients, XLA."""
import numpy as np
import pytest
import tensorflow as tf
from scipy import special

from conftest import TOLERANCE
from deeph_tf.so3 import spherical_harmonics, spherical_harmonics_numpy

LMAX = 8


def _scipy_real_harmonics(lmax, vectors):
    """Real harmonics without Condon-Shortley phase from scipy's complex Y_l^m (integral norm)."""
    unit = vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)
    theta = np.arccos(np.clip(unit[:, 2], -1, 1))
    phi = np.arctan2(unit[:, 1], unit[:, 0])
    columns = []
    for l in range(lmax + 1):
        for m in range(-l, l + 1):
            y = special.sph_harm_y(l, abs(m), theta, phi)
            if m > 0:
                columns.append(np.sqrt(2) * (-1) ** m * y.real)
            elif m < 0:
                columns.append(np.sqrt(2) * (-1) ** m * y.imag)
            else:
                columns.append(y.real)
    return np.stack(columns, axis=-1)


def test_matches_scipy_complex_harmonics(rng):
    vectors = rng.normal(size=(200, 3)) * rng.uniform(0.1, 5.0, size=(200, 1))
    ours = spherical_harmonics_numpy(LMAX, vectors, normalization="integral")
    np.testing.assert_allclose(ours, _scipy_real_harmonics(LMAX, vectors), atol=1e-12)
    component = spherical_harmonics_numpy(LMAX, vectors)
    np.testing.assert_allclose(component, ours * np.sqrt(4 * np.pi), atol=1e-12)


def test_deeph_m_order_of_p_and_d(rng):
    v = rng.normal(size=(10, 3))
    u = v / np.linalg.norm(v, axis=-1, keepdims=True)
    x, y, z = u.T
    y1 = spherical_harmonics_numpy(1, v)[:, 1:4]
    np.testing.assert_allclose(y1, np.sqrt(3) * np.stack([y, z, x], -1), atol=1e-14)
    y2 = spherical_harmonics_numpy(2, v)[:, 4:9]
    shape = np.stack([x * y, y * z, (3 * z * z - 1) / (2 * np.sqrt(3)), x * z, (x * x - y * y) / 2], -1)
    np.testing.assert_allclose(y2, np.sqrt(15) * shape, atol=1e-13)


def test_component_normalization(rng):
    y = spherical_harmonics_numpy(LMAX, rng.normal(size=(50, 3)))
    for l in range(LMAX + 1):
        np.testing.assert_allclose(np.sum(y[:, l * l : (l + 1) ** 2] ** 2, -1), 2 * l + 1, rtol=1e-12)


def test_tensorflow_matches_numpy_in_both_dtypes(rng, float_dtype):
    vectors = rng.normal(size=(64, 3))
    reference = spherical_harmonics_numpy(LMAX, vectors)
    ours = spherical_harmonics(LMAX, tf.constant(vectors, dtype=float_dtype))
    assert ours.dtype == tf.as_dtype(float_dtype)
    assert ours.shape == (64, (LMAX + 1) ** 2)
    np.testing.assert_allclose(ours.numpy(), reference, atol=TOLERANCE[float_dtype], rtol=0)


def test_origin_is_defined_and_gradients_finite(float_dtype):
    axis_and_origin = np.array(
        [[0, 0, 0], [0, 0, 1], [0, 0, -1], [1, 0, 0], [0, -1, 0], [1e-30, 0, 0], [1, 1, 1]], dtype=float_dtype
    )
    vectors = tf.Variable(axis_and_origin)
    with tf.GradientTape() as tape:
        y = spherical_harmonics(LMAX, vectors)
        loss = tf.reduce_sum(y * tf.range(1, (LMAX + 1) ** 2 + 1, dtype=y.dtype))
    gradient = tape.gradient(loss, vectors)
    assert np.all(np.isfinite(y.numpy()))
    assert np.all(np.isfinite(gradient.numpy()))
    np.testing.assert_allclose(y.numpy()[0], np.eye(1, (LMAX + 1) ** 2)[0], atol=0)


def test_gradient_matches_finite_differences(rng):
    vectors = tf.Variable(rng.normal(size=(5, 3)))
    weights = tf.constant(rng.normal(size=(LMAX + 1) ** 2))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(spherical_harmonics(LMAX, vectors) * weights)
    analytic = tape.gradient(loss, vectors).numpy()
    numeric = np.zeros_like(analytic)
    base = vectors.numpy()
    for index in np.ndindex(base.shape):
        for sign in (1, -1):
            shifted = base.copy()
            shifted[index] += sign * 1e-6
            numeric[index] += sign * np.sum(spherical_harmonics_numpy(LMAX, shifted) * weights.numpy()) / 2e-6
    np.testing.assert_allclose(analytic, numeric, atol=1e-6)


def test_runs_under_xla(rng):
    vectors = tf.constant(rng.normal(size=(33, 3)), dtype=tf.float32)
    compiled = tf.function(lambda v: spherical_harmonics(6, v), jit_compile=True)
    np.testing.assert_allclose(
        compiled(vectors).numpy(), spherical_harmonics_numpy(6, vectors.numpy()), atol=1e-5
    )


def test_solid_harmonics_are_homogeneous(rng):
    vectors = rng.normal(size=(8, 3))
    solid = spherical_harmonics_numpy(3, 2.0 * vectors, normalize=False)
    unit = spherical_harmonics_numpy(3, vectors, normalize=False)
    for l in range(4):
        np.testing.assert_allclose(solid[:, l * l : (l + 1) ** 2], 2.0**l * unit[:, l * l : (l + 1) ** 2])


@pytest.mark.parametrize("bad_lmax", [-1, 9, 2.0])
def test_rejects_unsupported_lmax(bad_lmax):
    with pytest.raises(ValueError, match="lmax"):
        spherical_harmonics_numpy(bad_lmax, np.ones((1, 3)))
