"""The spinful model (spin-orbit blocks H = I (x) A + i sigma.B): equivariance under
D^{1/2}(Q) (x) D^l(Q) (tested as D^l on A and D^l plus the axial rotation on B), inversion,
translation, lattice shifts, permutation, exact Hermiticity and time reversal of the merged
complex blocks, get_config round trip; float32 and float64. Inputs: real water geometries
(only positions, species and edges enter the model)."""
import numpy as np
import pytest
import tensorflow as tf

from conftest import TOLERANCE, WATER
from deeph_tf.data import keys
from deeph_tf.data.pipeline import GraphSet
from deeph_tf.data.shards import GraphBuildOptions, build_graph_sets
from deeph_tf.model.network import HamiltonianModel, model_inputs
from deeph_tf.so3.rotations import random_rotation_matrices
from deeph_tf.so3.spin_blocks import PAULI, merge_spinful, rotate_spin_vector
from deeph_tf.so3.wigner import wigner_D_numpy

SMALL = dict(irreps_hidden="8x0e+4x1o+4x2e+2x3o", num_blocks=2, lmax_sh=3, num_radial_basis=4, radial_hidden=[8])
#: A smaller common layout than water's (the model reads geometry only): s, p, d, so L' reaches 5.
SHELLS = [0, 1, 2]


@pytest.fixture(scope="module")
def water_batch(tmp_path_factory):
    graph_dir = tmp_path_factory.mktemp("graphs")
    build_graph_sets(WATER, graph_dir, GraphBuildOptions(dtype="float64", targets=("hamiltonian",)))
    graph_set = GraphSet(graph_dir)
    dataset, _ = graph_set.dataset("train", batch_size=2)
    return graph_set.layout, model_inputs(next(iter(dataset)))


def _model(layout, dtype="float64", **overrides):
    options = dict(SMALL, cutoff=4.0, avg_num_neighbors=2.0, spinful=True)
    options.update(overrides)
    return HamiltonianModel(layout.elements, SHELLS, dtype=dtype, **options)


def _cast(batch, dtype):
    return {k: (tf.cast(v, dtype) if v.dtype.is_floating else v) for k, v in batch.items()}


def _valid(batch, name, values):
    return values[batch["node_valid" if name.startswith("node") else "edge_valid"].numpy()].astype(np.float64)


def _orbital_rotation(q):
    det = np.sign(np.linalg.det(q))
    blocks = [wigner_D_numpy(l, q * det) * det**l for l in SHELLS]
    n = sum(len(b) for b in blocks)
    u, start = np.zeros((n, n)), 0
    for b in blocks:
        u[start:start + len(b), start:start + len(b)] = b
        start += len(b)
    return u


def _moved(batch, q):
    out = dict(batch)
    dtype = batch[keys.POSITIONS].dtype
    out[keys.POSITIONS] = tf.constant(batch[keys.POSITIONS].numpy() @ q.T, dtype)
    out[keys.EDGE_SHIFT_VECTOR] = tf.constant(batch[keys.EDGE_SHIFT_VECTOR].numpy() @ q.T, dtype)
    return out


def _relative_error(actual, expected):
    return np.abs(actual - expected).max() / np.abs(expected).max()


@pytest.mark.parametrize("convolution", ["so2", "cg"])
def test_spinful_o3_equivariance(water_batch, float_dtype, convolution):
    """Rotations and inversion: A' = U A U^T, B'_j = (det Q Q)_jk U B_k U^T (relative 1e-5 / 1e-10)."""
    layout, batch = water_batch
    batch = _cast(batch, float_dtype)
    model = _model(layout, float_dtype, convolution=convolution)
    reference = model(batch)
    assert reference["node_spin"].shape[1:] == (3, 9, 9)
    rotation = np.asarray(random_rotation_matrices(1, seed=11)[0])
    for q in (rotation, -np.eye(3), -rotation.T):
        out = model(_moved(batch, q))
        u = _orbital_rotation(q)
        for part in ("node", "edge"):
            expected_a = u @ _valid(batch, part, reference[part].numpy()) @ u.T
            assert _relative_error(_valid(batch, part, out[part].numpy()), expected_a) < TOLERANCE[float_dtype]
            spin = part + "_spin"
            expected_b = rotate_spin_vector(u @ _valid(batch, spin, reference[spin].numpy()) @ u.T, q)
            error = _relative_error(_valid(batch, spin, out[spin].numpy()), expected_b)
            assert error < TOLERANCE[float_dtype], (part, error)


def test_spinful_exactly_hermitian_and_time_reversal_symmetric(water_batch, float_dtype):
    layout, batch = water_batch
    out = _model(layout, float_dtype)(_cast(batch, float_dtype))
    node_b, edge_b = out["node_spin"].numpy(), out["edge_spin"].numpy()
    np.testing.assert_array_equal(node_b, -np.swapaxes(node_b, -1, -2))
    reverse = batch[keys.EDGE_REVERSE].numpy()
    np.testing.assert_array_equal(edge_b, -np.swapaxes(edge_b[reverse], -1, -2))
    h_edge = merge_spinful(out["edge"].numpy(), edge_b)
    np.testing.assert_allclose(h_edge, np.conj(np.swapaxes(h_edge[reverse], -1, -2)), atol=0)
    h_node = merge_spinful(out["node"].numpy(), node_b)
    np.testing.assert_allclose(h_node, np.conj(np.swapaxes(h_node, -1, -2)), atol=0)
    n_c = 9
    theta = np.kron(-1j * PAULI[1], np.eye(n_c))  # Theta = -i sigma_y K
    np.testing.assert_allclose(theta @ h_edge.conj() @ np.linalg.inv(theta), h_edge, atol=1e-6 * np.abs(h_edge).max())
    assert np.abs(node_b).max() > 0  # the on-site spin part is not trivially zero


def test_spinful_translation_lattice_shift_and_permutation(water_batch):
    layout, batch = water_batch
    model = _model(layout)
    reference = model(batch)
    moved = dict(batch)
    moved[keys.POSITIONS] = batch[keys.POSITIONS] + tf.constant([1.3, -0.4, 2.2], tf.float64)
    np.testing.assert_allclose(model(moved)["edge_spin"].numpy(), reference["edge_spin"].numpy(), atol=1e-10)
    lattice = batch[keys.LATTICE].numpy()[0]
    positions, shifts = batch[keys.POSITIONS].numpy().copy(), batch[keys.EDGE_SHIFT_VECTOR].numpy().copy()
    src, dst = batch[keys.EDGE_SRC].numpy(), batch[keys.EDGE_DST].numpy()
    positions[0] += lattice[1]
    shifts[src == 0] += lattice[1]
    shifts[dst == 0] -= lattice[1]
    shifted = dict(batch, **{keys.POSITIONS: tf.constant(positions), keys.EDGE_SHIFT_VECTOR: tf.constant(shifts)})
    out = model(shifted)
    for name in ("node_spin", "edge_spin"):
        np.testing.assert_allclose(out[name].numpy(), reference[name].numpy(), atol=1e-10)
    n = batch[keys.SPECIES].shape[0]
    perm = np.arange(n)
    perm[1], perm[2] = 2, 1
    inverse = np.argsort(perm)
    permuted = dict(batch)
    for name in (keys.SPECIES, keys.ATOMIC_NUMBERS, keys.POSITIONS, "node_graph", "node_valid"):
        permuted[name] = tf.gather(batch[name], perm)
    permuted[keys.EDGE_SRC] = tf.gather(inverse, batch[keys.EDGE_SRC])
    permuted[keys.EDGE_DST] = tf.gather(inverse, batch[keys.EDGE_DST])
    out = model(permuted)
    np.testing.assert_allclose(out["node_spin"].numpy(), reference["node_spin"].numpy()[perm], atol=1e-10)
    np.testing.assert_allclose(out["edge_spin"].numpy(), reference["edge_spin"].numpy(), atol=1e-10)


def test_spinful_config_round_trip(water_batch):
    layout, batch = water_batch
    model = _model(layout)
    reference = model(batch)
    config = model.get_config()
    assert config["spinful"] is True
    clone = HamiltonianModel.from_config(config)
    clone(batch)
    clone.set_weights(model.get_weights())
    out = clone(batch)
    for name in ("node", "edge", "node_spin", "edge_spin"):
        np.testing.assert_array_equal(out[name].numpy(), reference[name].numpy())
    assert "spinful" not in HamiltonianModel(layout.elements, SHELLS, **SMALL).get_config()
