"""Real Clebsch-Gordan tensors: equivariant coupling and orthogonality for l1, l2, L <= 8."""
import itertools

import numpy as np
import pytest

from deeph_tf.conventions import LMAX_SUPPORTED
from deeph_tf.so3 import clebsch_gordan, wigner_D_numpy
from deeph_tf.so3.rotations import random_rotation_matrices

TRIPLES = [
    (l1, l2, big_l)
    for l1, l2 in itertools.product(range(LMAX_SUPPORTED + 1), repeat=2)
    for big_l in range(abs(l1 - l2), min(l1 + l2, LMAX_SUPPORTED) + 1)
]


@pytest.fixture(scope="module")
def rotation_and_wigner():
    q = random_rotation_matrices(1, seed=11).numpy()[0]
    return {l: wigner_D_numpy(l, q) for l in range(LMAX_SUPPORTED + 1)}


def test_coupling_is_equivariant_for_every_triple(rotation_and_wigner, rng):
    """sum C[m1,m2,M] (D1 a)[m1] (D2 b)[m2] = (D_L (a (x) b)_L)[M]."""
    d = rotation_and_wigner
    worst = 0.0
    for l1, l2, big_l in TRIPLES:
        c = clebsch_gordan(l1, l2, big_l)
        a, b = rng.normal(size=2 * l1 + 1), rng.normal(size=2 * l2 + 1)
        lhs = np.einsum("ijk,i,j->k", c, d[l1] @ a, d[l2] @ b)
        rhs = d[big_l] @ np.einsum("ijk,i,j->k", c, a, b)
        worst = max(worst, np.abs(lhs - rhs).max())
    assert worst < 1e-12


@pytest.mark.parametrize("l1,l2", [(0, 0), (1, 1), (2, 1), (3, 3), (4, 4), (2, 6), (8, 0)])
def test_orthogonality_relations(l1, l2):
    ls = range(abs(l1 - l2), min(l1 + l2, LMAX_SUPPORTED) + 1)
    stacked = np.concatenate([clebsch_gordan(l1, l2, big_l) for big_l in ls], axis=-1)
    flat = stacked.reshape((2 * l1 + 1) * (2 * l2 + 1), -1)
    np.testing.assert_allclose(flat.T @ flat, np.eye(flat.shape[1]), atol=1e-12)
    if l1 + l2 <= LMAX_SUPPORTED:  # complete set: the other relation holds too
        np.testing.assert_allclose(flat @ flat.T, np.eye(flat.shape[0]), atol=1e-12)


def test_known_values_and_symmetry():
    np.testing.assert_allclose(clebsch_gordan(1, 1, 0)[:, :, 0], np.eye(3) / np.sqrt(3), atol=1e-15)
    np.testing.assert_allclose(clebsch_gordan(0, 3, 3)[0], np.eye(7), atol=1e-15)
    c = clebsch_gordan(1, 1, 1)
    np.testing.assert_allclose(c, -np.swapaxes(c, 0, 1), atol=1e-15)  # 1 (x) 1 -> 1 is antisymmetric


def test_returns_fresh_copies_in_requested_dtype():
    c32 = clebsch_gordan(2, 2, 2, dtype=np.float32)
    assert c32.dtype == np.float32
    c32[:] = 0
    assert np.abs(clebsch_gordan(2, 2, 2)).max() > 0


@pytest.mark.parametrize("triple", [(1, 1, 3), (2, 0, 1), (9, 0, 9), (1, 2, -1)])
def test_rejects_invalid_triples(triple):
    with pytest.raises(ValueError):
        clebsch_gordan(*triple)
