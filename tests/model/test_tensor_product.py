"""SO(2) (eSCN) and Clebsch-Gordan edge tensor products: same values, both equivariant."""
import numpy as np
import pytest
import tensorflow as tf

from deeph_tf.model.irreps_ops import rotate_features
from deeph_tf.model.tensor_product import CGEdgeTensorProduct, SO2EdgeTensorProduct, plan_paths
from deeph_tf.so3.irreps import Irreps
from deeph_tf.so3.rotations import random_rotation_matrices
from deeph_tf.so3.wigner import wigner_D

CASES = [("4x0e+2x1o+2x2e", 2), ("2x0e+2x1o+2x2e+1x3o+1x4e", 4), ("1x0e+1x3o+1x5e+1x6e", 6)]


@pytest.mark.parametrize("irreps,lmax_sh", CASES)
def test_so2_equals_cg_and_both_are_equivariant(irreps, lmax_sh, rng):
    cg = CGEdgeTensorProduct(irreps, lmax_sh, dtype="float64")
    so2 = SO2EdgeTensorProduct(irreps, lmax_sh, dtype="float64")
    assert cg.irreps_out == so2.irreps_out and cg.num_weights == so2.num_weights
    edges = 40
    x = tf.constant(rng.normal(size=(edges, Irreps(irreps).dim)))
    vectors = rng.normal(size=(edges, 3))
    vectors[0] = [0.0, 0.0, 1.3]  # along +z and -z: the edge frame is degenerate there
    vectors[1] = [0.0, 0.0, -0.7]
    vectors = tf.constant(vectors)
    weights = tf.constant(rng.normal(size=(edges, cg.num_weights)))
    reference = cg(x, vectors, weights).numpy()
    np.testing.assert_allclose(so2(x, vectors, weights).numpy(), reference, atol=1e-11 * np.abs(reference).max())

    q = random_rotation_matrices(1, seed=lmax_sh)[0]
    wigner_in = wigner_D(8, q)
    x_rotated = rotate_features(x, Irreps(irreps), wigner_in)
    vectors_rotated = tf.matmul(vectors, q, transpose_b=True)
    expected = rotate_features(tf.constant(reference), cg.irreps_out, wigner_in).numpy()
    for layer in (cg, so2):
        out = layer(x_rotated, vectors_rotated, weights).numpy()
        np.testing.assert_allclose(out, expected, atol=1e-10 * np.abs(expected).max())


def test_parity_rule_and_filters():
    paths = plan_paths(Irreps("1x1o"), 2)
    assert [(l2, l3, p) for _, l2, l3, p in paths] == [(0, 1, -1), (1, 0, 1), (1, 1, 1), (1, 2, 1), (2, 1, -1), (2, 2, -1), (2, 3, -1)]
    only_even = plan_paths(Irreps("1x1o"), 2, allowed_out=["1e", "2e"])
    assert [(l3, p) for _, _, l3, p in only_even] == [(1, 1), (2, 1)]
    no_parity = plan_paths(Irreps("1x1e"), 1, parity=False)
    assert all(p == 1 for *_, p in no_parity)
    with pytest.raises(ValueError, match="no tensor-product path"):
        CGEdgeTensorProduct("1x0e", 1, allowed_out=["3e"])


def test_layers_round_trip_config():
    layer = SO2EdgeTensorProduct("2x0e+1x1o", 2, allowed_out=["0e", "1o", "2e"], parity=True)
    clone = SO2EdgeTensorProduct.from_config(layer.get_config())
    assert clone.irreps_out == layer.irreps_out and clone.get_config() == layer.get_config()
