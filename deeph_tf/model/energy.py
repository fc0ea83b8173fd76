"""The force-field model: the Hamiltonian model's backbone with an invariant per-atom energy head.

    E     = sum_i [ scale * MLP(h_i^{0e}) + e_{Z_i} ]          eV; h^{0e}: invariant node features
    F_i   = -dE/dr_i                                             eV/Angstrom (automatic differentiation)
    W     = -dE/d(strain)                                        eV, the virial (DeePMD's convention)

Forces are the exact gradient of the energy, so they are conservative. The virial comes from
a symmetric-free strain ``eps`` applied to positions and cell, r -> r (1 + eps), per structure.
``e_Z`` are per-element reference energies (least squares over the training set) and
``scale`` the RMS of the training forces, so the network learns a standardized residual.
Edges are a radius graph of ``cutoff``; messages vanish smoothly there (radial envelope, no
biases), so E is continuous as atoms cross the cutoff.

Input: a batch of the pipeline (force-field graph sets). Output::

    {"energy": [n_graphs] eV, "atom_energy": [N] eV, "forces": [N, 3] eV/A, "virial": [n_graphs, 3, 3] eV}
"""
from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from deeph_tf.data import keys
from deeph_tf.model.backbone import PRESETS, Backbone, BackboneModel

#: A fixed rotation (about the axis (1, 2, 3)/|.|, 1 rad) applied before the edge-frame angles are
#: taken: their pole then lies along an irrational direction instead of the z axis, where lattice
#: edges are common and the angles' derivatives are undefined.
def _frame_rotation() -> np.ndarray:
    axis = np.array([1.0, 2.0, 3.0]) / np.sqrt(14.0)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(1.0) * k + (1 - np.cos(1.0)) * (k @ k)


FRAME_ROTATION = _frame_rotation()


@keras.saving.register_keras_serializable(package="deeph_tf")
class EnergyForceModel(BackboneModel, keras.Model):
    """E(3)-invariant energy, equivariant forces and virial.

    Args:
        elements: element symbols; species index = position.
        irreps_hidden, num_blocks, lmax_sh, cutoff, num_radial_basis, radial_hidden,
        avg_num_neighbors, convolution, parity: the backbone, as in ``HamiltonianModel``.
        energy_hidden: hidden widths of the per-atom energy MLP (SiLU).
        atom_energies: [n_species] reference energy per element, eV.
        energy_scale: multiplies the MLP output, eV (the training forces' RMS).
        compute_virial: also return the virial (one more gradient; off saves a little time).
    """

    def __init__(
        self,
        elements: Sequence[str],
        irreps_hidden: str = PRESETS["light"]["irreps_hidden"],
        num_blocks: int = 3,
        lmax_sh: int = 4,
        cutoff: float = 5.0,
        num_radial_basis: int = 8,
        radial_hidden: Sequence[int] = (64,),
        avg_num_neighbors: float = 1.0,
        convolution: str = "so2",
        parity: bool = True,
        energy_hidden: Sequence[int] = (64,),
        atom_energies=None,
        energy_scale: float = 1.0,
        compute_virial: bool = True,
        **kwargs,
    ):
        super().__init__(autocast=False, **kwargs)  # positions must not be cast to bf16 on entry
        n_species = len(elements)
        shifts = np.zeros(n_species) if atom_energies is None else np.asarray(atom_energies, np.float64)
        if shifts.shape != (n_species,):
            raise ValueError(f"atom_energies needs one value per element ({n_species}), got shape {shifts.shape}")
        self.backbone = Backbone(
            elements, irreps_hidden, num_blocks, lmax_sh, cutoff, num_radial_basis, radial_hidden,
            avg_num_neighbors, convolution, parity, last_edges=False, frame_rotation=FRAME_ROTATION,
            dtype=self.dtype_policy, name="backbone",
        )
        if self.irreps_hidden.count("0e") == 0:
            raise ValueError(f"irreps_hidden {self.irreps_hidden} has no 0e (invariant) channels for the energy head")
        self.energy_hidden = [int(u) for u in energy_hidden]
        self.atom_energies = shifts.tolist()
        self.energy_scale = float(energy_scale)
        self.compute_virial = bool(compute_virial)
        self._n_scalars = self.irreps_hidden.count("0e")
        # The energy head stays in the precise dtype (float32 under mixed precision).
        precise = self.backbone.precise_dtype
        self.energy_mlp = [
            keras.layers.Dense(width, activation="silu", dtype=precise, name=f"energy_dense_{k}")
            for k, width in enumerate(self.energy_hidden)
        ]
        self.energy_out = keras.layers.Dense(1, use_bias=False, dtype=precise, name="energy_out")

    def build(self, batch_shape=None):
        """The backbone's and the energy head's weights (widths follow from the options)."""
        self.backbone.build()
        width = self._n_scalars
        for layer in self.energy_mlp + [self.energy_out]:
            layer.build((None, width))
            width = layer.units
        self.built = True

    def shift_atom_energies(self, delta) -> None:
        """Add ``delta`` [n_species] (eV) to the reference energy per element (DeePMD's bias change
        at fine-tuning); call before the model's functions are traced (the energies are constants)."""
        delta = np.asarray(delta, np.float64)
        if delta.shape != (len(self.atom_energies),):
            raise ValueError(f"delta needs one value per element ({len(self.atom_energies)}), got shape {delta.shape}")
        self.atom_energies = (np.asarray(self.atom_energies) + delta).tolist()

    def _scalar_slice(self) -> slice:
        start = 0
        for mul, ir in self.irreps_hidden:
            if ir.l == 0 and ir.p == 1:
                return slice(start, start + mul)
            start += mul * ir.dim
        raise ValueError("no 0e channels")  # excluded in __init__

    def _energies(self, batch, positions, shift):
        """(atom energies [N], structure energies [n_graphs]) in the precise dtype, eV."""
        species = tf.cast(batch[keys.SPECIES], tf.int32)
        src, dst = tf.cast(batch[keys.EDGE_SRC], tf.int32), tf.cast(batch[keys.EDGE_DST], tf.int32)
        node, _ = self.backbone(positions, shift, species, src, dst)
        dtype = self.backbone.precise_dtype
        hidden = tf.cast(node[:, self._scalar_slice()], dtype)
        for layer in self.energy_mlp:
            hidden = layer(hidden)
        atom = self.energy_out(hidden)[:, 0] * tf.cast(self.energy_scale, dtype)
        atom = atom + tf.gather(tf.constant(self.atom_energies, dtype), species)
        if keys.NODE_VALID in batch:
            atom = atom * tf.cast(batch[keys.NODE_VALID], dtype)
        n_graphs = tf.shape(batch[keys.GRAPH_VALID])[0] if keys.GRAPH_VALID in batch else 1
        node_graph = tf.cast(batch[keys.NODE_GRAPH], tf.int32) if keys.NODE_GRAPH in batch else tf.zeros_like(species)
        total = tf.math.unsorted_segment_sum(atom, node_graph, n_graphs + 1)[:n_graphs]
        return atom, total

    def call(self, batch, training=False):
        dtype = self.backbone.precise_dtype
        positions = tf.cast(batch[keys.POSITIONS], dtype)
        shift = tf.cast(batch[keys.EDGE_SHIFT_VECTOR], dtype)
        n_graphs = tf.shape(batch[keys.GRAPH_VALID])[0] if keys.GRAPH_VALID in batch else 1
        node_graph = tf.cast(batch[keys.NODE_GRAPH], tf.int32) if keys.NODE_GRAPH in batch else tf.zeros_like(tf.cast(batch[keys.SPECIES], tf.int32))
        edge_graph = tf.gather(node_graph, tf.cast(batch[keys.EDGE_SRC], tf.int32))
        strain = tf.zeros([n_graphs + 1, 3, 3], dtype)
        with tf.GradientTape(watch_accessed_variables=False, persistent=self.compute_virial) as tape:
            tape.watch(positions)
            tape.watch(strain)
            deformation = tf.eye(3, dtype=dtype) + strain
            strained_positions = tf.einsum("ni,nij->nj", positions, tf.gather(deformation, node_graph))
            strained_shift = tf.einsum("ei,eij->ej", shift, tf.gather(deformation, edge_graph))
            atom, energy = self._energies(batch, strained_positions, strained_shift)
            total = tf.reduce_sum(energy)
        gradient = tape.gradient(total, positions, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        out = {keys.ENERGY: energy, "atom_energy": atom, keys.FORCES: -tf.convert_to_tensor(gradient)}
        if self.compute_virial:
            dstrain = tape.gradient(total, strain, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            out[keys.VIRIAL] = -tf.convert_to_tensor(dstrain)[:n_graphs]
            del tape
        return out

    def get_config(self):
        config = super().get_config()
        config.update(self.backbone.model_options(), energy_hidden=self.energy_hidden, atom_energies=self.atom_energies,
                      energy_scale=self.energy_scale, compute_virial=self.compute_virial)
        return config
