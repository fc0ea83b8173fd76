"""Basic equivariant layers: irreps helpers, EquivariantLinear, Gate, EquivariantLayerNorm, radial parts.

Checked for every layer: rotation equivariance (float64 to 1e-10, float32 to 1e-5), parity,
get_config -> from_config round trip with identical outputs, XLA (jit_compile=True), finite
gradients (zero inputs, zero distances), hand-computed small cases and clear ValueErrors.
"""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import TOLERANCE
from deeph_tf.model.gate import Gate, gate_irreps
from deeph_tf.model.irreps_ops import (
    invert_features,
    merge_irreps,
    parity_signs,
    rotate_features,
    split_irreps,
)
from deeph_tf.model.linear import EquivariantLinear
from deeph_tf.model.norm import EquivariantLayerNorm
from deeph_tf.model.radial import (
    BesselBasis,
    PolynomialCutoff,
    RadialEmbedding,
    RadialMLP,
    bessel_basis,
    polynomial_cutoff,
)
from deeph_tf.so3 import Irreps, wigner_D
from deeph_tf.so3.rotations import random_rotation_matrices

LIN_IN = Irreps("3x0e+2x1o+1x2e+2x0e+1x1e+1x0o")
LIN_OUT = Irreps("4x0e+3x1o+2x2e+1x1e+1x0o")
GATE_PARTS = (Irreps("3x0e+2x0o"), Irreps("6x0e"), Irreps("3x1o+2x2e+1x1e"))
NORM_IRREPS = Irreps("4x0e+3x1o+2x2e+1x0o+2x0e+1x1e")
CUTOFF = 5.0


@pytest.fixture(autouse=True)
def _seed_keras():
    keras.utils.set_random_seed(1234)


def _wigner(count, lmax, seed=3):
    """Float64 Wigner-D list for ``count`` random rotations, each [count, 1, 2l+1, 2l+1]."""
    rotations = random_rotation_matrices(count, seed=seed, dtype="float64")
    return [d[:, None] for d in wigner_D(lmax, rotations)]


def _max_error(a, b):
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def assert_equivariant(layer, irreps_in, irreps_out, dtype, rng, rows=6, rotations=4):
    """Rotation and parity check: layer(g x) == g layer(x) for 4 rotations and the inversion."""
    lmax = max(irreps_in.lmax, irreps_out.lmax)
    d = _wigner(rotations, lmax)
    x = tf.constant(rng.normal(size=(rotations, rows, irreps_in.dim)), dtype=dtype)
    y = layer(x)
    rotated_first = layer(rotate_features(x, irreps_in, d))
    rotated_after = rotate_features(y, irreps_out, d)
    error = _max_error(rotated_first, rotated_after)
    assert error <= TOLERANCE[dtype], f"rotation equivariance error {error:.2e}"
    error = _max_error(layer(invert_features(x, irreps_in)), invert_features(y, irreps_out))
    assert error <= TOLERANCE[dtype], f"parity equivariance error {error:.2e}"
    return y


# --- irreps_ops -----------------------------------------------------------------------------


def test_split_merge_roundtrip_and_layout(rng):
    irreps = Irreps("2x0e+1x1o+0x2e+3x2e")
    x = rng.normal(size=(3, 4, irreps.dim))
    parts = split_irreps(tf.constant(x), irreps)
    assert [tuple(p.shape) for p in parts] == [(3, 4, 2, 1), (3, 4, 1, 3), (3, 4, 0, 5), (3, 4, 3, 5)]
    np.testing.assert_array_equal(parts[3].numpy(), x[..., 5:].reshape(3, 4, 3, 5))
    np.testing.assert_array_equal(merge_irreps(parts, irreps).numpy(), x)
    with pytest.raises(ValueError, match="3 parts"):
        merge_irreps(parts[:3], irreps)
    with pytest.raises(ValueError, match="dim 20"):
        split_irreps(tf.zeros((2, 7)), irreps)


def test_rotate_and_invert_features(rng):
    irreps = Irreps("2x0e+1x1o+2x2e")
    q = random_rotation_matrices(1, seed=5, dtype="float64")[0]
    d = wigner_D(2, q)
    x = rng.normal(size=(5, irreps.dim))
    y = rotate_features(tf.constant(x), irreps, d).numpy()
    np.testing.assert_allclose(y[:, :2], x[:, :2], atol=1e-12)
    np.testing.assert_allclose(y[:, 2:5], x[:, 2:5] @ d[1].numpy().T, atol=1e-12)
    expected = x[:, 5:].reshape(5, 2, 5) @ d[2].numpy().T
    np.testing.assert_allclose(y[:, 5:].reshape(5, 2, 5), expected, atol=1e-12)
    signs = parity_signs(irreps)
    np.testing.assert_array_equal(signs, [1, 1, -1, -1, -1] + [1] * 10)
    np.testing.assert_array_equal(invert_features(tf.constant(x), irreps).numpy(), x * signs)
    with pytest.raises(ValueError, match="l=2"):
        rotate_features(tf.constant(x), irreps, d[:2])


# --- generic Keras checks for every layer ---------------------------------------------------


def _distances(rng, count=9):
    r = rng.uniform(0.0, 1.3 * CUTOFF, size=count)
    r[:3] = [0.0, CUTOFF, 2.0 * CUTOFF]
    return r


LAYER_CASES = {
    "linear": (lambda dt: EquivariantLinear(LIN_IN, LIN_OUT, dtype=dt), lambda rng: rng.normal(size=(5, LIN_IN.dim))),
    "gate": (lambda dt: Gate(*GATE_PARTS, dtype=dt), lambda rng: rng.normal(size=(5, sum(i.dim for i in GATE_PARTS)))),
    "norm": (lambda dt: EquivariantLayerNorm(NORM_IRREPS, dtype=dt), lambda rng: rng.normal(size=(5, NORM_IRREPS.dim))),
    "bessel": (lambda dt: BesselBasis(8, CUTOFF, dtype=dt), _distances),
    "cutoff": (lambda dt: PolynomialCutoff(CUTOFF, p=6, dtype=dt), _distances),
    "embedding": (lambda dt: RadialEmbedding(8, CUTOFF, dtype=dt), _distances),
    "mlp": (lambda dt: RadialMLP([16, 16], 5, dtype=dt), lambda rng: rng.normal(size=(7, 8))),
}


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_config_roundtrip_jit_and_dtype(case, float_dtype, rng):
    make, make_input = LAYER_CASES[case]
    layer = make(float_dtype)
    x = tf.constant(make_input(rng), dtype=float_dtype)
    y = layer(x)
    assert y.dtype == tf.as_dtype(float_dtype)
    assert tuple(y.shape) == tuple(layer.compute_output_shape(tuple(x.shape)))

    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(x).numpy(), y.numpy())
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is type(layer) and revived.get_config() == config

    @tf.function(jit_compile=True)
    def compiled(inputs):
        return layer(inputs)

    assert _max_error(compiled(x), y) <= TOLERANCE[float_dtype]


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
@pytest.mark.parametrize("zero", [False, True], ids=["random", "zeros"])
def test_gradients_finite(case, zero, rng):
    make, make_input = LAYER_CASES[case]
    layer = make("float64")
    x = make_input(rng)
    x = tf.constant(np.zeros_like(x) if zero else x, dtype="float64")
    layer(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(tf.square(y)) + tf.reduce_sum(y)
    grads = [tape.gradient(loss, x)] + tape.gradient(loss, layer.trainable_weights)
    assert np.isfinite(y.numpy()).all()
    for grad in grads:
        assert grad is not None and np.isfinite(grad.numpy()).all()


# --- EquivariantLinear ----------------------------------------------------------------------


def test_linear_equivariant(float_dtype, rng):
    layer = EquivariantLinear(LIN_IN, LIN_OUT, dtype=float_dtype)
    layer.build((None, LIN_IN.dim))
    layer.bias.assign(rng.normal(size=layer.bias.shape))  # a nonzero 0e bias must not break anything
    assert_equivariant(layer, LIN_IN, LIN_OUT, float_dtype, rng)


def test_linear_hand_computed(rng):
    layer = EquivariantLinear("2x0e+1x1o+1x0e+2x1o", "2x1o+1x0e+1x2e", allow_zero_outputs=True, dtype="float64")
    layer.build((None, 12))
    assert [w.name for w in layer.weights] == ["kernel_1o", "kernel_0e", "bias_0e"]
    w1, w0, b = rng.normal(size=(3, 2)), rng.normal(size=(3, 1)), rng.normal(size=(1,))
    layer.set_weights([w1, w0, b])
    x = rng.normal(size=(4, 12))
    x0 = np.concatenate([x[:, 0:2], x[:, 5:6]], axis=1)  # 2x0e then 1x0e: [4, 3]
    x1 = np.concatenate([x[:, 2:5].reshape(4, 1, 3), x[:, 6:12].reshape(4, 2, 3)], axis=1)  # [4, 3, 3]
    expected = np.concatenate(
        [np.einsum("nim,io->nom", x1, w1).reshape(4, 6), x0 @ w0 + b, np.zeros((4, 5))], axis=1
    )
    np.testing.assert_allclose(layer(tf.constant(x)).numpy(), expected, atol=1e-12)


def test_linear_variance_preserving_init(rng):
    irreps = Irreps("256x0e+128x1o")
    layer = EquivariantLinear(irreps, irreps, dtype="float64")
    y = layer(tf.constant(rng.normal(size=(400, irreps.dim)))).numpy()
    assert layer.kernels[0].shape == (256, 256) and layer.kernels[1].shape == (128, 128)
    np.testing.assert_allclose(np.std(layer.kernels[0].numpy()), 1 / 16, rtol=0.05)
    assert 0.85 < np.mean(y[:, :256] ** 2) < 1.15 and 0.85 < np.mean(y[:, 256:] ** 2) < 1.15


def test_linear_errors():
    with pytest.raises(ValueError, match=r"2e.*allow_zero_outputs"):
        EquivariantLinear("4x0e+2x1o", "1x1o+3x2e")
    with pytest.raises(ValueError, match="irreps_in='4y0e'"):
        EquivariantLinear("4y0e", "1x0e")
    with pytest.raises(ValueError, match="irreps_out must have a positive dimension"):
        EquivariantLinear("4x0e", "")
    layer = EquivariantLinear("4x0e", "2x0e")
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 4|irreps_in.dim=4"):
        layer(tf.zeros((3, 5)))
    no_bias = EquivariantLinear("4x0e+1x1o", "2x0e+1x1o", use_bias=False)
    no_bias.build((None, 7))
    assert [w.name for w in no_bias.weights] == ["kernel_0e", "kernel_1o"]


# --- Gate -----------------------------------------------------------------------------------


def test_gate_irreps_planner():
    scalars, gates, gated = gate_irreps("64x0e+32x1o+16x2e")
    assert (str(scalars), str(gates), str(gated)) == ("64x0e", "48x0e", "32x1o+16x2e")
    scalars, gates, gated = gate_irreps("2x1o+3x0e+1x0o")
    assert (str(scalars), str(gates), str(gated)) == ("3x0e+1x0o", "2x0e", "2x1o")
    scalars, gates, gated = gate_irreps("8x0e")
    assert (str(scalars), gates.dim, gated.dim) == ("8x0e", 0, 0)
    assert Gate(*gate_irreps("8x0e"))(tf.ones((2, 8))).shape == (2, 8)


def test_gate_equivariant(float_dtype, rng):
    layer = Gate(*GATE_PARTS, dtype=float_dtype)
    assert layer.irreps_out == GATE_PARTS[0] + GATE_PARTS[2]
    assert_equivariant(layer, layer.irreps_in, layer.irreps_out, float_dtype, rng)


def test_gate_hand_computed(rng):
    layer = Gate("2x0e+1x0o", "3x0e", "2x1o+1x2e", dtype="float64")
    x = rng.normal(size=(4, 3 + 3 + 6 + 5))
    sig = 1.0 / (1.0 + np.exp(-x[:, 3:6]))
    expected = np.concatenate(
        [
            x[:, :2] * (1.0 / (1.0 + np.exp(-x[:, :2]))),  # silu on 0e
            np.tanh(x[:, 2:3]),  # tanh on 0o
            x[:, 6:9] * sig[:, 0:1],
            x[:, 9:12] * sig[:, 1:2],
            x[:, 12:17] * sig[:, 2:3],
        ],
        axis=1,
    )
    np.testing.assert_allclose(layer(tf.constant(x)).numpy(), expected, atol=1e-12)


def test_gate_errors():
    with pytest.raises(ValueError, match="only l = 0.*1o"):
        Gate("2x0e+1x1o", "1x0e", "1x1o")
    with pytest.raises(ValueError, match="only 0e.*0o"):
        Gate("2x0e", "1x0o", "1x1o")
    with pytest.raises(ValueError, match="one gate per gated irrep.*has 2.*has 3"):
        Gate("2x0e", "2x0e", "1x1o+2x2e")
    with pytest.raises(ValueError, match="unknown activation act_scalars='nope'"):
        Gate("2x0e", "", "", act_scalars="nope")
    with pytest.raises(ValueError, match="irreps_gated='1xz'"):
        Gate("2x0e", "1x0e", "1xz")


# --- EquivariantLayerNorm -------------------------------------------------------------------


def test_norm_equivariant(float_dtype, rng):
    layer = EquivariantLayerNorm(NORM_IRREPS, dtype=float_dtype)
    layer.build((None, NORM_IRREPS.dim))
    for weight in layer.weights:  # non-trivial scales and biases
        weight.assign(rng.normal(size=weight.shape))
    assert_equivariant(layer, NORM_IRREPS, NORM_IRREPS, float_dtype, rng)


def test_norm_hand_computed(rng):
    irreps = Irreps("3x0e+2x1o+1x0e")
    layer = EquivariantLayerNorm(irreps, epsilon=1e-6, dtype="float64")
    layer.build((None, irreps.dim))
    assert [w.name for w in layer.weights] == ["scale_0e", "bias_0e", "scale_1_1o"]
    scale0, bias0, scale1 = rng.normal(size=4), rng.normal(size=4), rng.normal(size=2)
    layer.set_weights([scale0, bias0, scale1])
    x = rng.normal(size=(5, irreps.dim))
    s = np.concatenate([x[:, :3], x[:, 9:10]], axis=1)
    s = (s - s.mean(1, keepdims=True)) / np.sqrt(s.var(1, keepdims=True) + 1e-6) * scale0 + bias0
    v = x[:, 3:9].reshape(5, 2, 3)
    v = v / np.sqrt(np.mean(np.sum(v**2, axis=-1), axis=-1) + 1e-6)[:, None, None] * scale1[:, None]
    expected = np.concatenate([s[:, :3], v.reshape(5, 6), s[:, 3:]], axis=1)
    np.testing.assert_allclose(layer(tf.constant(x)).numpy(), expected, atol=1e-12)


def test_norm_zero_rows_and_errors():
    layer = EquivariantLayerNorm(NORM_IRREPS, dtype="float32")
    y = layer(tf.zeros((3, NORM_IRREPS.dim))).numpy()
    np.testing.assert_array_equal(y, 0.0)  # zero scalars -> bias (zeros); zero vectors stay zero
    with pytest.raises(ValueError, match="epsilon must be a positive number"):
        EquivariantLayerNorm("2x0e", epsilon=0.0)
    with pytest.raises(ValueError, match="irreps must have a positive dimension"):
        EquivariantLayerNorm("")
    with pytest.raises(ValueError, match="invalid irreps='2x0q'"):
        EquivariantLayerNorm("2x0q")


# --- radial parts ---------------------------------------------------------------------------


def test_bessel_basis_values():
    r = np.array([0.0, 1e-12, 1e-6, 0.01, 0.0199, 0.0201, 0.5, 2.0, 4.9, CUTOFF])
    n = np.arange(1, 9)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = math.sqrt(2 / CUTOFF) * np.sin(n * np.pi * r[:, None] / CUTOFF) / r[:, None]
    expected[0] = math.sqrt(2 / CUTOFF) * n * np.pi / CUTOFF  # the limit at r = 0
    np.testing.assert_allclose(bessel_basis(tf.constant(r), 8, CUTOFF).numpy(), expected, rtol=1e-12, atol=1e-12)


def test_bessel_gradient_matches_analytic_and_is_zero_at_origin():
    r = tf.constant([0.0, 1e-8, 0.003, 0.02, 0.5, 3.0], dtype="float64")
    with tf.GradientTape() as tape:
        tape.watch(r)
        e = bessel_basis(r, 8, CUTOFF)
    jac = np.einsum("ene->en", tape.jacobian(e, r).numpy())  # de[i, n] / dr[i]: [E, N]
    a = np.arange(1, 9) * np.pi / CUTOFF
    rr = r.numpy()[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = math.sqrt(2 / CUTOFF) * (a * rr * np.cos(a * rr) - np.sin(a * rr)) / rr**2
    expected[0] = 0.0
    expected[1] = -math.sqrt(2 / CUTOFF) * a**3 * rr[1] / 3  # first order of the series
    np.testing.assert_allclose(jac, expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("p", [3, 6])
def test_polynomial_cutoff_smooth_at_cutoff(p, float_dtype):
    d = [0.0, 0.5, 1 - 1e-3, 1.0, 1 + 1e-3, 3.0]
    r = tf.constant([CUTOFF * x for x in d] + [1e30], dtype=float_dtype)
    with tf.GradientTape() as outer:
        outer.watch(r)
        with tf.GradientTape() as inner:
            inner.watch(r)
            u = polynomial_cutoff(r, CUTOFF, p)
        du = inner.gradient(u, r)
    d2u = outer.gradient(du, r).numpy()
    u, du = u.numpy(), du.numpy()
    assert u[0] == 1.0 and 0.0 < u[1] < 1.0
    assert (u[3:] == 0.0).all() and (du[3:] == 0.0).all() and (d2u[3:] == 0.0).all()
    # Approaching the cutoff from inside: u ~ h^3, u' ~ h^2, u'' ~ h (h = 1e-3 relative).
    assert abs(u[2]) < 1e-6 and abs(du[2]) < 1e-3 and abs(d2u[2]) < 0.1
    assert du[0] == 0.0 and du[1] < 0.0


@pytest.mark.parametrize("p", [1, 3, 6, 9])
def test_polynomial_cutoff_matches_dimenet_formula(p):
    d = np.linspace(0.0, 1.0, 201)
    expected = 1 - (p + 1) * (p + 2) / 2 * d**p + p * (p + 2) * d ** (p + 1) - p * (p + 1) / 2 * d ** (p + 2)
    got = polynomial_cutoff(tf.constant(d * CUTOFF), CUTOFF, p).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert (np.diff(got) <= 1e-15).all()  # monotone from 1 down to 0 (up to round-off near d = 0)


def test_radial_embedding_cutoff_invariance_and_padding(float_dtype, rng):
    layer = RadialEmbedding(8, CUTOFF, dtype=float_dtype)
    vectors = rng.normal(size=(4, 10, 3)) * 3.0
    q = random_rotation_matrices(4, seed=11, dtype="float64").numpy()
    rotated = np.einsum("bij,bnj->bni", q, vectors)
    e = layer(tf.constant(np.linalg.norm(vectors, axis=-1), dtype=float_dtype))
    e_rot = layer(tf.constant(np.linalg.norm(rotated, axis=-1), dtype=float_dtype))
    assert _max_error(e, e_rot) <= TOLERANCE[float_dtype]  # distances are invariant, so is the embedding
    r = tf.constant([0.0, CUTOFF, CUTOFF + 0.1, 100.0], dtype=float_dtype)
    with tf.GradientTape() as tape:
        tape.watch(r)
        e = layer(r)
    grad = tape.gradient(e, r).numpy()
    assert e.shape == (4, 8) and (e.numpy()[1:] == 0.0).all() and (grad[1:] == 0.0).all()
    assert np.isfinite(e.numpy()).all() and grad[0] == 0.0


def test_radial_mlp_zero_in_zero_out_and_layers():
    mlp = RadialMLP([16, 32], 7, dtype="float64")
    y = mlp(tf.zeros((3, 8), dtype="float64"))
    np.testing.assert_array_equal(y.numpy(), 0.0)
    assert [tuple(w.shape) for w in mlp.weights] == [(8, 16), (16, 32), (32, 7)]
    assert mlp.dense_layers[-1].activation is keras.activations.linear
    with_bias = RadialMLP([4], 2, use_bias=True)
    with_bias.build((None, 3))
    assert len(with_bias.weights) == 4


def test_radial_errors():
    with pytest.raises(ValueError, match="num_basis must be a positive integer"):
        BesselBasis(0, CUTOFF)
    with pytest.raises(ValueError, match="cutoff must be a positive finite number"):
        RadialEmbedding(8, -1.0)
    with pytest.raises(ValueError, match="p must be a positive integer"):
        PolynomialCutoff(CUTOFF, p=2.5)
    with pytest.raises(ValueError, match="hidden_units must be a list"):
        RadialMLP(16, 4)
    with pytest.raises(ValueError, match="unknown activation activation='relu6x'"):
        RadialMLP([16], 4, activation="relu6x")
