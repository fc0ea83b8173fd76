"""Edge convolutions: the Clebsch-Gordan reference and the SO(2) (eSCN) one, both equivariant;
the SO(2) one reproduces the CG product exactly when its weights are set from CG coefficients."""
import numpy as np
import pytest
import tensorflow as tf

from deeph_tf.model.irreps_ops import invert_features, rotate_features
from deeph_tf.model.tensor_product import CGEdgeTensorProduct, SO2Convolution, allowed_couplings, plan_paths
from deeph_tf.so3.clebsch_gordan import clebsch_gordan
from deeph_tf.so3.irreps import Irreps
from deeph_tf.so3.rotations import random_rotation_matrices
from deeph_tf.so3.wigner import wigner_D


def _edges(rng, n=40):
    vectors = rng.normal(size=(n, 3))
    vectors[0] = [0.0, 0.0, 1.3]  # along +z and -z: the edge frame is degenerate there
    vectors[1] = [0.0, 0.0, -0.7]
    return tf.constant(vectors)


def _check_equivariance(layer, irreps_in, irreps_out, x, vectors, weights, parity=True):
    reference = layer(x, vectors, weights).numpy()
    scale = np.abs(reference).max()
    for q in random_rotation_matrices(2, seed=3).numpy():
        wigner = wigner_D(8, tf.constant(q))
        out = layer(rotate_features(x, irreps_in, wigner), tf.matmul(vectors, q, transpose_b=True), weights).numpy()
        expected = rotate_features(tf.constant(reference), irreps_out, wigner).numpy()
        np.testing.assert_allclose(out, expected, atol=1e-10 * scale)
    if parity:
        out = layer(invert_features(x, irreps_in), -vectors, weights).numpy()
        np.testing.assert_allclose(out, invert_features(tf.constant(reference), irreps_out).numpy(), atol=1e-10 * scale)


@pytest.mark.parametrize(
    "irreps_in,irreps_out,lmax_sh",
    [("4x0e+2x1o+2x2e", "3x0e+2x1o+2x1e+2x2e", 2), ("2x0e+2x1o+2x2e+1x3o+1x4e", "2x0e+2x1e+2x2o+1x3o+1x4e", 4),
     ("1x0e+1x3o+1x5e+1x6e", "1x1o+1x4e+1x6o", 6)],
)
def test_so2_convolution_is_o3_equivariant(irreps_in, irreps_out, lmax_sh, rng):
    layer = SO2Convolution(irreps_in, irreps_out, lmax_sh, dtype="float64")
    x = tf.constant(rng.normal(size=(40, Irreps(irreps_in).dim)))
    weights = tf.constant(rng.normal(size=(40, layer.num_weights)))
    vectors = _edges(rng)
    layer(x, vectors, weights)
    for kernel in layer.symmetric_kernels + [k for k in layer.antisymmetric_kernels if k is not None]:
        kernel.assign(rng.normal(size=kernel.shape))
    _check_equivariance(layer, Irreps(irreps_in), Irreps(irreps_out), x, vectors, weights)


@pytest.mark.parametrize("irreps,lmax_sh", [("4x0e+2x1o+2x2e", 2), ("2x0e+2x1o+2x2e+1x3o+1x4e", 4)])
def test_cg_product_is_o3_equivariant(irreps, lmax_sh, rng):
    layer = CGEdgeTensorProduct(irreps, lmax_sh, dtype="float64")
    x = tf.constant(rng.normal(size=(40, Irreps(irreps).dim)))
    weights = tf.constant(rng.normal(size=(40, layer.num_weights)))
    _check_equivariance(layer, Irreps(irreps), layer.irreps_out, x, weights=weights, vectors=_edges(rng))


@pytest.mark.parametrize("l1,l2,l3", [(1, 1, 1), (2, 1, 2), (2, 2, 3), (3, 2, 1), (2, 0, 2), (1, 2, 3)])
def test_so2_reproduces_a_cg_path(l1, l2, l3, rng):
    """With A_m, B_m set from C[:, l2, :] sqrt(2 l2 + 1), SO(2) equals the CG path (l1 (x) Y^l2 -> l3)."""
    p1 = 1
    p3 = p1 * (-1) ** l2
    irreps_in, irreps_out = Irreps([(1, (l1, p1))]), Irreps([(1, (l3, p3))])
    cg = CGEdgeTensorProduct(irreps_in, l2, allowed_out=[str(irreps_out[0].ir)], dtype="float64")
    cg_paths = [i for i, path in enumerate(cg.paths) if path[1] == l2]
    so2 = SO2Convolution(irreps_in, irreps_out, l2, dtype="float64")
    vectors = _edges(rng)
    x = tf.constant(rng.normal(size=(40, irreps_in.dim)))
    so2(x, vectors, tf.ones((40, so2.num_weights), tf.float64))
    kernel = clebsch_gordan(l1, l2, l3)[:, l2, :] * np.sqrt(2 * l2 + 1)
    for m in range(so2.m_max + 1):
        so2.symmetric_kernels[m].assign([[kernel[l1 + m, l3 + m]]])
        if m > 0:
            so2.antisymmetric_kernels[m].assign([[-kernel[l1 - m, l3 + m]]])
    cg_weights = np.zeros((40, cg.num_weights))
    cg_weights[:, cg_paths] = 1.0
    expected = cg(x, vectors, tf.constant(cg_weights)).numpy()
    start = sum(cg.irreps_out[i].dim for i in range(cg_paths[0]))
    expected = expected[:, start : start + irreps_out.dim]
    np.testing.assert_allclose(so2(x, vectors, tf.ones((40, so2.num_weights), tf.float64)).numpy(), expected, atol=1e-12)


def test_coupling_rules():
    assert allowed_couplings(1, -1, 1, -1, lmax_sh=2) == (True, False)  # 1o -> 1o via l2 = 0, 2 (even sums)
    assert allowed_couplings(1, -1, 1, 1, lmax_sh=2) == (False, True)  # 1o -> 1e via l2 = 1 (cross product)
    assert allowed_couplings(0, 1, 3, 1, lmax_sh=2) == (False, False)  # needs l2 = 3 > lmax_sh
    assert allowed_couplings(1, 1, 1, 1, lmax_sh=2, parity=False) == (True, True)
    paths = plan_paths(Irreps("1x1o"), 2)
    assert [(l2, l3, p) for _, l2, l3, p in paths] == [(0, 1, -1), (1, 0, 1), (1, 1, 1), (1, 2, 1), (2, 1, -1), (2, 2, -1), (2, 3, -1)]
    with pytest.raises(ValueError, match="no tensor-product path"):
        CGEdgeTensorProduct("1x0e", 1, allowed_out=["3e"])
    with pytest.raises(ValueError, match="no coupling"):
        SO2Convolution("1x0e", "1x3e", 1)


def test_layers_round_trip_config():
    layer = SO2Convolution("2x0e+1x1o", "1x0e+1x1o+1x2e", 2, parity=True)
    clone = SO2Convolution.from_config(layer.get_config())
    assert clone.irreps_out == layer.irreps_out and clone.get_config() == layer.get_config()
