"""The Hamiltonian model: embeddings, interaction blocks, block heads, Hermitian symmetrization.

Input: a batch dict from ``deeph_tf.data.pipeline`` (padded disjoint union of graphs).
Output: ``{"node": [N, n_c, n_c], "edge": [E, n_c, n_c]}`` predicted blocks of the target
operator in the common orbital layout (eV for the Hamiltonian), exactly Hermitian and
equivariant: rotating the structure by Q gives U(Q) H U(Q)^T.

A spinful model (``spinful=True``, spin-orbit Hamiltonians) adds ``"node_spin"`` [N, 3, n_c, n_c]
and ``"edge_spin"`` [E, 3, n_c, n_c]: the axial parts B_k (k = x, y, z) of
H = I_2 (x) A + i sum_k sigma_k (x) B_k, with A in ``"node"``/``"edge"``
(:mod:`deeph_tf.so3.spin_blocks`). Such predictions are time-reversal symmetric by
construction, exactly Hermitian (A symmetrized, B antisymmetrized with the partner edge) and
transform with D^{1/2}(Q) (x) D^l(Q).
"""
from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from deeph_tf.data import keys
from deeph_tf.model.backbone import PRESETS, Backbone, BackboneModel
from deeph_tf.model.head import BlockHead, block_irreps, symmetrize_blocks
from deeph_tf.model.spin_head import SpinBlockHead, antisymmetrize_spin, spin_block_irreps


def model_inputs(batch: dict) -> dict:
    """The numeric fields of a pipeline batch (strings such as structure ids cannot enter XLA)."""
    return {name: value for name, value in batch.items() if value.dtype != tf.string}


@keras.saving.register_keras_serializable(package="deeph_tf")
class HamiltonianModel(BackboneModel, keras.Model):
    """E(3)-equivariant message-passing network predicting orbital blocks.

    Args:
        elements: element symbols; species index = position.
        common_shells: l of each shell of the common orbital layout.
        irreps_hidden: node and edge feature irreps, e.g. "64x0e+32x1o+16x2e+8x3o+8x4e".
        num_blocks: interaction blocks.
        lmax_sh: largest l of edge spherical harmonics.
        cutoff: radial cutoff in Angstrom (>= the longest edge, so every edge gets radial info).
        num_radial_basis: Bessel functions.
        radial_hidden: hidden widths of the per-path radial MLPs.
        avg_num_neighbors: edges per atom (normalizes message sums).
        convolution: "so2" (eSCN) or "cg" (reference).
        parity: O(3) model (True) or SO(3) only.
        node_scale, node_shift, edge_scale: standardization of the outputs (``statistics``).
        symmetrize: make predictions exactly Hermitian.
        pair_cutoffs: [n_species, n_species] Angstrom, the longest edge of each element pair in
            the training graphs (0: the pair never had a block); with ``periodic_images``
            (whether training edges crossed cell boundaries) the graph rule of prediction on a
            POSCAR alone (:mod:`deeph_tf.data.inference_graph`). Not used by ``call``.
        spinful: also predict the spin parts B of spin-orbit blocks (common shells l <= 3).
        spin_node_scale, spin_node_shift, spin_edge_scale: their standardization
            (``statistics``; one column per term of ``spin_block_irreps``).
    """

    def __init__(
        self,
        elements: Sequence[str],
        common_shells: Sequence[int],
        irreps_hidden: str = PRESETS["light"]["irreps_hidden"],
        num_blocks: int = 3,
        lmax_sh: int = 4,
        cutoff: float = 8.0,
        num_radial_basis: int = 8,
        radial_hidden: Sequence[int] = (64,),
        avg_num_neighbors: float = 1.0,
        convolution: str = "so2",
        parity: bool = True,
        node_scale=None,
        node_shift=None,
        edge_scale=None,
        symmetrize: bool = True,
        pair_cutoffs=None,
        periodic_images: bool = False,
        spinful: bool = False,
        spin_node_scale=None,
        spin_node_shift=None,
        spin_edge_scale=None,
        **kwargs,
    ):
        super().__init__(autocast=False, **kwargs)  # positions must not be cast to bf16 on entry
        self.common_shells = [int(l) for l in common_shells]
        self.symmetrize = bool(symmetrize)
        self.pair_cutoffs = _checked_pair_cutoffs(pair_cutoffs, len(elements))
        self.periodic_images = bool(periodic_images)
        self._statistics = {
            "node_scale": None if node_scale is None else np.asarray(node_scale).tolist(),
            "node_shift": None if node_shift is None else np.asarray(node_shift).tolist(),
            "edge_scale": None if edge_scale is None else np.asarray(edge_scale).tolist(),
        }
        self.spinful = bool(spinful)
        required = block_irreps(self.common_shells, bool(parity))
        if self.spinful:
            for name, value in (("spin_node_scale", spin_node_scale), ("spin_node_shift", spin_node_shift),
                                ("spin_edge_scale", spin_edge_scale)):
                self._statistics[name] = None if value is None else np.asarray(value).tolist()
            required = (required + spin_block_irreps(self.common_shells, bool(parity))).simplify()
        self.backbone = Backbone(
            elements, irreps_hidden, num_blocks, lmax_sh, cutoff, num_radial_basis, radial_hidden,
            avg_num_neighbors, convolution, parity, irreps_required=str(required),
            dtype=self.dtype_policy, name="backbone",
        )
        # Heads stay in the precise dtype (float32 under mixed precision): -500 eV shifts.
        precise, n_species = self.backbone.precise_dtype, len(self.backbone.elements)
        last = self.backbone.irreps_out
        self.node_head = BlockHead(
            last, self.common_shells, n_species, pair=False, parity=self.parity,
            scale=node_scale, shift=node_shift, dtype=precise, name="node_head",
        )
        self.edge_head = BlockHead(
            last, self.common_shells, n_species, pair=True, parity=self.parity,
            scale=edge_scale, dtype=precise, name="edge_head",
        )
        self.node_spin_head = self.edge_spin_head = None
        if self.spinful:
            self.node_spin_head = SpinBlockHead(
                last, self.common_shells, n_species, pair=False, parity=self.parity,
                scale=spin_node_scale, shift=spin_node_shift, dtype=precise, name="node_spin_head",
            )
            self.edge_spin_head = SpinBlockHead(
                last, self.common_shells, n_species, pair=True, parity=self.parity,
                scale=spin_edge_scale, dtype=precise, name="edge_spin_head",
            )

    def build(self, batch_shape=None):
        """The backbone's and the heads' weights (widths follow from the options)."""
        self.backbone.build()
        self.node_head.build()
        self.edge_head.build()
        if self.spinful:
            self.node_spin_head.build()
            self.edge_spin_head.build()
        self.built = True

    def call(self, batch, training=False):
        species = tf.cast(batch[keys.SPECIES], tf.int32)
        src, dst = tf.cast(batch[keys.EDGE_SRC], tf.int32), tf.cast(batch[keys.EDGE_DST], tf.int32)
        node, edge = self.backbone(batch[keys.POSITIONS], batch[keys.EDGE_SHIFT_VECTOR], species, src, dst)
        pair_species = tf.stack([tf.gather(species, src), tf.gather(species, dst)], axis=-1)
        node_blocks = self.node_head(node, species)
        edge_blocks = self.edge_head(edge, pair_species)
        reverse = tf.cast(batch[keys.EDGE_REVERSE], tf.int32)
        if self.symmetrize:
            node_blocks, edge_blocks = symmetrize_blocks(node_blocks, edge_blocks, reverse)
        out = {"node": node_blocks, "edge": edge_blocks}
        if self.spinful:
            node_spin = self.node_spin_head(node, species)
            edge_spin = self.edge_spin_head(edge, pair_species)
            if self.symmetrize:
                node_spin, edge_spin = antisymmetrize_spin(node_spin, edge_spin, reverse)
            out.update(node_spin=node_spin, edge_spin=edge_spin)
        return out

    def get_config(self):
        config = super().get_config()
        config.update(self.backbone.model_options(), common_shells=self.common_shells, symmetrize=self.symmetrize,
                      pair_cutoffs=self.pair_cutoffs, periodic_images=self.periodic_images, **self._statistics)
        if self.spinful:  # spinless configs stay exactly those of earlier versions
            config["spinful"] = True
        return config


def _checked_pair_cutoffs(pair_cutoffs, n_species: int):
    """[n_species, n_species] non-negative finite floats as nested lists, or None."""
    if pair_cutoffs is None:
        return None
    values = np.asarray(pair_cutoffs, dtype=np.float64)
    if values.shape != (n_species, n_species) or not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"pair_cutoffs must be a [{n_species}, {n_species}] array of distances >= 0 (Angstrom), "
                         f"received shape {values.shape}")
    return values.tolist()
