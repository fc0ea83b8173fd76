"""Output head: irreps -> orbital blocks of the common layout, standardized and Hermitian.

Node (on-site) and edge (off-site) features are mapped linearly onto the irreps of every
orbital-shell pair of the dataset's common layout (``OrbitalBlockCoupling``: L = |l1-l2|..l1+l2,
parity (-1)^(l1+l2)), scaled and shifted per element (pair) with dataset statistics, and
turned into [n_c, n_c] blocks by the exact Clebsch-Gordan coupling. Scaling each irrep and
shifting only on-site scalars keeps the map equivariant.

:func:`symmetrize_blocks` then makes predictions exactly Hermitian:
H_ii <- (H_ii + H_ii^dagger) / 2 and H_ij(R) <- (H_ij(R) + H_ji(-R)^dagger) / 2 (dagger: conjugate
transpose; the plain transpose for real blocks).
"""
from __future__ import annotations

from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from deeph_tf.model.linear import EquivariantLinear
from deeph_tf.so3.block_coupling import OrbitalBlockCoupling
from deeph_tf.so3.irreps import Irrep, Irreps


def _with_parity(irreps: Irreps, parity: bool) -> Irreps:
    """``irreps`` as they are, or with every parity 'e' (an SO(3)-only model)."""
    return irreps if parity else Irreps([(mul, Irrep(ir.l, 1)) for mul, ir in irreps])


def block_irreps(common_shells: Sequence[int], parity: bool = True) -> Irreps:
    """Irreps of a [n_c, n_c] block in coupling order (parity dropped to 'e' when ``parity`` is False)."""
    return _with_parity(OrbitalBlockCoupling(common_shells, common_shells).irreps, parity)


@keras.saving.register_keras_serializable(package="deeph_tf")
class BlockHead(keras.layers.Layer):
    """Features -> standardized irreps -> orbital blocks.

    Args:
        irreps_in: irreps of the node or edge features.
        common_shells: l of each shell of the common orbital layout, e.g. [0, 0, 1, 1, 2].
        num_species: number of elements (species indices 0..num_species-1).
        pair: False for on-site heads (one species per row), True for edge heads (species pairs).
        parity: use O(3) parities; False treats every irrep as even.
        scale: [num_species (or num_species^2), n_terms] initial per-term scales (default 1).
        shift: [num_species, n_terms] initial shifts, only non-zero on 0e terms (default 0).

    Input: features [n, irreps_in.dim], species [n] int32 (pair=False) or species pairs [n, 2].
    Output: [n, n_c, n_c] blocks.
    """

    def __init__(
        self,
        irreps_in,
        common_shells: Sequence[int],
        num_species: int,
        pair: bool,
        parity: bool = True,
        scale: Optional[Sequence] = None,
        shift: Optional[Sequence] = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.irreps_in = Irreps(irreps_in)
        self.common_shells = [int(l) for l in common_shells]
        self.num_species = int(num_species)
        self.pair = bool(pair)
        self.parity = bool(parity)
        self.coupling = self._make_coupling()
        self.irreps_out = _with_parity(self.coupling.irreps, self.parity)
        self.n_terms = len(self.irreps_out)
        rows = self.num_species**2 if self.pair else self.num_species
        self._scale_init = np.ones((rows, self.n_terms)) if scale is None else np.asarray(scale, dtype=np.float64)
        self._shift_init = np.zeros((rows, self.n_terms)) if shift is None else np.asarray(shift, dtype=np.float64)
        if self._scale_init.shape != (rows, self.n_terms) or self._shift_init.shape != (rows, self.n_terms):
            raise ValueError(
                f"scale/shift must have shape {(rows, self.n_terms)}, received: "
                f"{self._scale_init.shape} and {self._shift_init.shape}"
            )
        scalar_terms = np.array([ir.l == 0 and ir.p == 1 for _, ir in self.irreps_out])
        if np.any(self._shift_init[:, ~scalar_terms] != 0):
            raise ValueError("shift must be zero on non-scalar terms (it would break equivariance)")
        self.linear = EquivariantLinear(self.irreps_in, self.irreps_out, use_bias=False, dtype=self.dtype_policy)
        # term index of every irreps component, to broadcast per-term scale/shift
        self._term_of_component = np.repeat(np.arange(self.n_terms), [ir.dim * mul for mul, ir in self.irreps_out])
        self._scalar_terms = scalar_terms

    def build(self, input_shape=None):
        self.linear.build((None, self.irreps_in.dim))
        self.scale = self.add_weight(
            name="scale", shape=self._scale_init.shape, initializer=keras.initializers.Constant(self._scale_init), trainable=True
        )
        self.shift = self.add_weight(
            name="shift", shape=self._shift_init.shape, initializer=keras.initializers.Constant(self._shift_init), trainable=True
        )
        self.built = True

    def call(self, features, species):
        species = tf.cast(species, tf.int32)
        row = species[:, 0] * self.num_species + species[:, 1] if self.pair else species
        irreps = self.linear(features)  # [n, dim]
        component_terms = tf.constant(self._term_of_component, dtype=tf.int32)
        shift_mask = tf.constant(self._scalar_terms, dtype=irreps.dtype)
        scale = tf.gather(tf.gather(tf.cast(self.scale, irreps.dtype), row), component_terms, axis=1)
        shift_terms = tf.gather(tf.cast(self.shift, irreps.dtype), row) * shift_mask
        standardized = irreps * scale + tf.gather(shift_terms, component_terms, axis=1)
        coupling = tf.constant(self.coupling.matrix.T, dtype=irreps.dtype)  # [dim, entries]
        return tf.reshape(tf.matmul(standardized, coupling), [-1, *self.block_shape])

    def _make_coupling(self):
        """The irreps <-> block map (``irreps`` and an orthogonal ``matrix`` [entries, dim])."""
        return OrbitalBlockCoupling(self.common_shells, self.common_shells)

    @property
    def block_shape(self):
        """Shape of one output block: [n_c, n_c]."""
        return [self.coupling.n_i, self.coupling.n_j]

    def get_config(self):
        config = super().get_config()
        config.update(
            irreps_in=str(self.irreps_in),
            common_shells=self.common_shells,
            num_species=self.num_species,
            pair=self.pair,
            parity=self.parity,
            scale=self._scale_init.tolist(),
            shift=self._shift_init.tolist(),
        )
        return config


def symmetrize_blocks(node_blocks, edge_blocks, edge_reverse):
    """Exactly Hermitian predictions: on-site (B + B^dagger)/2, off-site (H_e + H_rev(e)^dagger)/2.

    ``^dagger`` is the conjugate transpose, so complex (spinful) blocks satisfy
    H_ij(R) = H_ji(-R)^dagger; for real blocks it is the plain transpose (bit for bit).

    Args:
        node_blocks: [N, n_c, n_c]; edge_blocks: [E, n_c, n_c]; edge_reverse: [E] int32, the
            index of each edge's partner (-R, j, i).

    Returns:
        (node [N, n_c, n_c], edge [E, n_c, n_c]), dtype of the inputs.
    """
    node = 0.5 * (node_blocks + tf.linalg.adjoint(node_blocks))
    partner = tf.gather(edge_blocks, edge_reverse)
    edge = 0.5 * (edge_blocks + tf.linalg.adjoint(partner))
    return node, edge
