"""The force-field model: forces = -dE/dr and virial = -dE/d(strain) by finite differences,
E(3) invariance of E and equivariance of F, smoothness at the cutoff."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from deeph_tf.data import keys
from deeph_tf.data.neighbors import radius_graph
from deeph_tf.model.builder import model_from_config
from deeph_tf.model.energy import EnergyForceModel

CUTOFF = 4.0


def make_model(seed: int = 0, dtype: str = "float64", **kwargs) -> EnergyForceModel:
    import keras

    keras.utils.set_random_seed(seed)
    options = dict(irreps_hidden="16x0e+8x1o+4x2e", num_blocks=2, lmax_sh=2, cutoff=CUTOFF, num_radial_basis=6,
                   radial_hidden=[16], energy_hidden=[16], atom_energies=[-13.6, -2040.0], energy_scale=2.0, dtype=dtype)
    options.update(kwargs)
    return EnergyForceModel(["H", "O"], **options)


def graph_batch(species, positions, lattice, pbc=True, strain=None):
    """A one-structure batch (the model's inputs) with a radius graph of CUTOFF."""
    positions = np.asarray(positions, np.float64)
    src, dst, shifts = radius_graph(positions, lattice, CUTOFF, pbc=pbc)
    deformation = np.eye(3) + (np.zeros((3, 3)) if strain is None else strain)
    return {
        keys.SPECIES: tf.constant(species, tf.int32),
        keys.POSITIONS: tf.constant(positions @ deformation),
        keys.EDGE_SRC: tf.constant(src, tf.int32),
        keys.EDGE_DST: tf.constant(dst, tf.int32),
        "edge_shift_vector": tf.constant(shifts @ lattice @ deformation),
    }


def energy(model, *args, **kwargs) -> float:
    return float(model(graph_batch(*args, **kwargs))["energy"][0])


@pytest.fixture(scope="module")
def crystal():
    """A periodic H2O + H cell where some edges lie exactly along z (the edge-frame pole)."""
    rng = np.random.default_rng(3)
    lattice = np.diag([3.1, 3.3, 3.0])
    positions = np.array([[0.0, 0.0, 0.0], [0.95, 0.1, 0.0], [-0.2, 0.93, 0.05], [0.0, 0.0, 1.45]])
    positions[1:3] += rng.normal(0, 0.03, (2, 3))
    return [1, 0, 0, 0], positions, lattice


def test_forces_and_virial_are_minus_gradients(crystal):
    species, positions, lattice = crystal
    model = make_model()
    out = model(graph_batch(species, positions, lattice))
    forces, virial = out["forces"].numpy(), out["virial"].numpy()[0]
    src, dst, shifts = radius_graph(positions, lattice, CUTOFF)
    vectors = positions[dst] + shifts @ lattice - positions[src]
    assert np.sum(np.all(np.abs(vectors[:, :2]) < 1e-12, axis=1)) > 0  # z-aligned edges are present
    h = 1e-5
    numeric = np.zeros_like(positions)
    for i in range(len(positions)):
        for a in range(3):
            plus, minus = positions.copy(), positions.copy()
            plus[i, a] += h
            minus[i, a] -= h
            numeric[i, a] = -(energy(model, species, plus, lattice) - energy(model, species, minus, lattice)) / (2 * h)
    assert np.abs(forces).max() > 1e-2
    np.testing.assert_allclose(forces, numeric, atol=1e-7)
    numeric_virial = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            eps = np.zeros((3, 3))
            eps[a, b] = h
            numeric_virial[a, b] = -(energy(model, species, positions, lattice, strain=eps)
                                     - energy(model, species, positions, lattice, strain=-eps)) / (2 * h)
    np.testing.assert_allclose(virial, numeric_virial, atol=1e-7)


def _rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_energy_invariant_forces_equivariant(crystal):
    species, positions, lattice = crystal
    model = make_model(seed=1)
    out = model(graph_batch(species, positions, lattice))
    for seed in (0, 1):
        q = _rotation(seed)
        rotated = model(graph_batch(species, positions @ q.T, lattice @ q.T))
        np.testing.assert_allclose(rotated["energy"].numpy(), out["energy"].numpy(), rtol=1e-10)
        np.testing.assert_allclose(rotated["forces"].numpy(), out["forces"].numpy() @ q.T, atol=1e-9)
        np.testing.assert_allclose(rotated["virial"].numpy()[0], q @ out["virial"].numpy()[0] @ q.T, atol=1e-9)
    inverted = model(graph_batch(species, -positions, -lattice))
    np.testing.assert_allclose(inverted["energy"].numpy(), out["energy"].numpy(), rtol=1e-10)
    shifted = model(graph_batch(species, positions + np.array([0.3, -1.1, 0.7]), lattice))
    np.testing.assert_allclose(shifted["energy"].numpy(), out["energy"].numpy(), rtol=1e-10)
    order = [2, 0, 3, 1]
    permuted = model(graph_batch([species[k] for k in order], positions[order], lattice))
    np.testing.assert_allclose(permuted["energy"].numpy(), out["energy"].numpy(), rtol=1e-10)
    np.testing.assert_allclose(permuted["forces"].numpy(), out["forces"].numpy()[order], atol=1e-9)


def test_energy_is_continuous_at_the_cutoff():
    """A molecule pair moved across the cutoff: no jump when the edge appears."""
    model = make_model(seed=2)
    lattice = np.eye(3) * 30.0
    values = []
    for distance in (CUTOFF - 1e-6, CUTOFF + 1e-6):
        positions = np.array([[0.0, 0.0, 0.0], [distance, 0.0, 0.0]])
        values.append(energy(model, [0, 1], positions, lattice, pbc=False))
    assert abs(values[0] - values[1]) < 1e-9


def test_config_round_trip_and_float32():
    model = make_model(dtype="float32")
    _, positions, lattice = [1, 0, 0, 0], np.array([[0.0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]), np.eye(3) * 20
    batch = graph_batch([0, 1, 1], positions, lattice, pbc=False)
    batch = {k: tf.cast(v, tf.float32) if v.dtype == tf.float64 else v for k, v in batch.items()}
    out = model(batch)
    assert out["energy"].dtype == tf.float32 and out["forces"].shape == (3, 3)
    clone = model_from_config(model.get_config())
    for a, b in zip(clone.weights, model.weights):
        a.assign(b)
    np.testing.assert_allclose(clone(batch)["forces"].numpy(), out["forces"].numpy(), atol=1e-6)
    # The reference energies carry the scale: an untrained model's energy is near sum of e_Z (H, O, O).
    assert abs(float(out["energy"][0]) - (-13.6 - 2 * 2040.0)) < 50.0
