"""The message-passing backbone shared by the Hamiltonian and the force-field models.

Edge geometry (vectors, lengths, radial basis, per-edge Wigner rotations) is computed from the
positions, then species embeddings and ``num_blocks`` interaction blocks give node and edge
features. Under mixed precision (``mixed_bfloat16``) message passing runs in bfloat16 while the
geometry stays in the *precise* dtype (float32): the layers that receive geometry are built with
``autocast=False``, so Keras does not cast their float arguments to the compute dtype, and the
SO(2) convolution rotates features with float32 Wigner matrices (a bfloat16 D(R) is orthogonal
only to ~3 digits, which breaks equivariance).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from deeph_tf.model.blocks import CONVOLUTIONS, InteractionBlock
from deeph_tf.model.radial import RadialEmbedding, RadialMLP
from deeph_tf.so3.edge_frame import EdgeFrame
from deeph_tf.so3.irreps import Irrep, Irreps

#: Named configurations, like DeepH's: hidden irreps, blocks, harmonics, radial basis.
PRESETS: Dict[str, dict] = {
    "light": {
        "irreps_hidden": "64x0e+32x1o+16x2e+8x3o+8x4e",
        "num_blocks": 3,
        "lmax_sh": 4,
        "num_radial_basis": 8,
        "radial_hidden": [64],
    },
    "accurate": {
        "irreps_hidden": "160x0e+128x1o+80x2e+48x3o+40x4e",
        "num_blocks": 5,
        "lmax_sh": 4,
        "num_radial_basis": 16,
        "radial_hidden": [128, 128],
    },
}

#: The backbone's options that the models' ``get_config()`` carry (the models' own argument names).
MODEL_OPTIONS = ("elements", "irreps_hidden", "num_blocks", "lmax_sh", "cutoff", "num_radial_basis", "radial_hidden",
                 "avg_num_neighbors", "convolution", "parity")


def last_block_irreps(irreps_hidden: Irreps, needed: Irreps) -> Irreps:
    """Hidden irreps plus any (l, p) the output needs, with the output's multiplicity."""
    present = {ir for _, ir in irreps_hidden}
    extra: Dict[Irrep, int] = {}
    for mul, ir in needed:
        if ir not in present:
            extra[ir] = extra.get(ir, 0) + mul
    return (irreps_hidden + Irreps([(m, ir) for ir, m in extra.items()])).sort()[0].simplify()


def precise_dtype(policy) -> str:
    """The dtype of geometry and output heads under a Keras dtype policy: its variable dtype
    (float32 under "mixed_bfloat16", else the compute dtype)."""
    return keras.dtype_policies.get(policy).variable_dtype


def _normalized_hidden(irreps_hidden, parity: bool) -> Irreps:
    irreps = Irreps(irreps_hidden).sort()[0].simplify()
    if parity:
        return irreps
    return Irreps([(mul, Irrep(ir.l, 1)) for mul, ir in irreps]).sort()[0].simplify()


def _checked_rotation(rotation) -> Optional[np.ndarray]:
    if rotation is None:
        return None
    matrix = np.asarray(rotation, np.float64)
    if matrix.shape != (3, 3) or not np.allclose(matrix @ matrix.T, np.eye(3), atol=1e-9) or np.linalg.det(matrix) < 0:
        raise ValueError(f"frame_rotation must be a 3x3 proper rotation matrix, received: {rotation!r}")
    return matrix


@keras.saving.register_keras_serializable(package="deeph_tf")
class Backbone(keras.layers.Layer):
    """Radial embedding, node and edge embeddings and ``num_blocks`` interaction blocks.

    Args:
        elements: element symbols; species index = position.
        irreps_hidden: node and edge feature irreps, e.g. "64x0e+32x1o+16x2e+8x3o+8x4e" (sorted and
            simplified; parities set to even when ``parity`` is False).
        num_blocks: interaction blocks (>= 1).
        lmax_sh: largest l of the edge spherical harmonics.
        cutoff: radial cutoff, Angstrom.
        num_radial_basis: Bessel functions of the radial embedding.
        radial_hidden: hidden widths of the per-path radial MLPs.
        avg_num_neighbors: edges per atom (normalizes the message sums).
        convolution: "so2" (eSCN) or "cg" (Clebsch-Gordan reference).
        parity: O(3) model (True) or SO(3) only.
        irreps_required: irreps the last block must output besides the hidden ones (e.g. the
            irreps of the orbital blocks a head reads); None: the hidden irreps only.
        last_edges: whether the last block updates the edges (False when nobody reads them).
        frame_rotation: optional fixed 3x3 rotation Q0 applied to the edge vectors before the
            edge-frame angles are taken (D(R) = D(Q0)^T D(Q0 R)): moves the pole of the angles,
            where their derivatives are undefined, off the z axis (lattice-aligned edges).
        **kwargs: ``keras.layers.Layer`` arguments (``dtype`` may be a mixed policy).

    Call arguments:
        positions: [N, 3] Angstrom; edge_shift: [E, 3] Angstrom (R @ lattice); species: [N] int;
        edge_src, edge_dst: [E] int. Geometry is computed in :attr:`precise_dtype` (gradients
        with respect to positions and edge_shift are exact).

    Output shape:
        (node [N, irreps_out.dim], edge [E, irreps_out.dim]) in the compute dtype; with
        ``last_edges=False`` the edges are those entering the last block.
    """

    def __init__(
        self,
        elements: Sequence[str],
        irreps_hidden: str = PRESETS["light"]["irreps_hidden"],
        num_blocks: int = 3,
        lmax_sh: int = 4,
        cutoff: float = 8.0,
        num_radial_basis: int = 8,
        radial_hidden: Sequence[int] = (64,),
        avg_num_neighbors: float = 1.0,
        convolution: str = "so2",
        parity: bool = True,
        irreps_required: Optional[str] = None,
        last_edges: bool = True,
        frame_rotation=None,
        **kwargs,
    ):
        super().__init__(autocast=False, **kwargs)  # positions and edge shifts stay in the precise dtype
        if num_blocks < 1:
            raise ValueError(f"num_blocks must be >= 1, received: num_blocks={num_blocks}")
        if convolution not in CONVOLUTIONS:
            raise ValueError(f"convolution must be one of {CONVOLUTIONS}, received: convolution={convolution!r}")
        if not elements:
            raise ValueError("elements must name at least one element")
        self.elements: List[str] = [str(e) for e in elements]
        self.parity = bool(parity)
        self.irreps_hidden = _normalized_hidden(irreps_hidden, self.parity)
        self.num_blocks, self.lmax_sh = int(num_blocks), int(lmax_sh)
        self.cutoff, self.num_radial_basis = float(cutoff), int(num_radial_basis)
        self.radial_hidden = [int(u) for u in radial_hidden]
        self.avg_num_neighbors, self.convolution = float(avg_num_neighbors), convolution
        self.irreps_required = None if irreps_required is None else Irreps(irreps_required)
        self.last_edges = bool(last_edges)
        self.frame_rotation = _checked_rotation(frame_rotation)
        #: irreps of the last block's output.
        self.irreps_out = (self.irreps_hidden if self.irreps_required is None
                           else last_block_irreps(self.irreps_hidden, self.irreps_required))

        policy, precise = self.dtype_policy, self.precise_dtype
        scalar_width = self.irreps_hidden.count("0e") or 16
        self.irreps_embedding = Irreps(f"{scalar_width}x0e")
        self.radial = RadialEmbedding(self.num_radial_basis, self.cutoff, dtype=precise)
        self.node_embedding = keras.layers.Dense(scalar_width, use_bias=False, dtype=policy, name="node_embedding")
        self.edge_embedding = RadialMLP([scalar_width], scalar_width, dtype=policy, name="edge_embedding")
        self.blocks = []
        irreps_in = self.irreps_embedding
        for index in range(self.num_blocks):
            last = index == self.num_blocks - 1
            irreps_block = self.irreps_out if last else self.irreps_hidden
            self.blocks.append(InteractionBlock(
                irreps_in, irreps_in, irreps_block, irreps_block, self.lmax_sh, self.radial_hidden,
                self.avg_num_neighbors, convolution=self.convolution, parity=self.parity, dtype=policy,
                name=f"block_{index}", update_edges=self.last_edges or not last,
            ))
            irreps_in = irreps_block
        self._lmax_rotation = max(block.lmax_rotation for block in self.blocks)

    @property
    def precise_dtype(self) -> str:
        """The dtype of the geometry (float32 under mixed precision)."""
        return precise_dtype(self.dtype_policy)

    def build(self, positions_shape=None):
        """Every sub-layer's weights, in the order of the forward pass (widths follow from the options)."""
        n_species = len(self.elements)
        self.node_embedding.build((None, n_species))
        self.edge_embedding.build((None, self.num_radial_basis + 2 * n_species))
        for block in self.blocks:
            block.build((None, block.irreps_node_in.dim), (None, block.irreps_edge_in.dim), (None, self.num_radial_basis))
        self.built = True

    def call(self, positions, edge_shift, species, edge_src, edge_dst):
        precise, compute = self.precise_dtype, self.compute_dtype
        positions, edge_shift = tf.cast(positions, precise), tf.cast(edge_shift, precise)
        species = tf.cast(species, tf.int32)
        src, dst = tf.cast(edge_src, tf.int32), tf.cast(edge_dst, tf.int32)
        vectors = tf.gather(positions, dst) + edge_shift - tf.gather(positions, src)
        lengths = tf.sqrt(tf.maximum(tf.reduce_sum(vectors * vectors, axis=-1), tf.cast(1e-24, vectors.dtype)))
        radial = self.radial(lengths)
        one_hot = tf.one_hot(species, len(self.elements), dtype=compute)
        node = self.node_embedding(one_hot)
        edge = self.edge_embedding(tf.concat([tf.cast(radial, compute), tf.gather(one_hot, src), tf.gather(one_hot, dst)], axis=-1))
        # One edge frame (angles, no dense Wigner matrices) shared by every block.
        frame = EdgeFrame(vectors, self._lmax_rotation, self.frame_rotation) if self.convolution == "so2" else None
        for block in self.blocks:
            node, edge = block(node, edge, radial, vectors, src, dst, frame=frame)
        return node, edge

    def model_options(self) -> dict:
        """The options a model's ``get_config()`` carries (:data:`MODEL_OPTIONS`)."""
        return dict(
            elements=list(self.elements), irreps_hidden=str(self.irreps_hidden), num_blocks=self.num_blocks,
            lmax_sh=self.lmax_sh, cutoff=self.cutoff, num_radial_basis=self.num_radial_basis,
            radial_hidden=list(self.radial_hidden), avg_num_neighbors=self.avg_num_neighbors,
            convolution=self.convolution, parity=self.parity,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            self.model_options(),
            irreps_required=None if self.irreps_required is None else str(self.irreps_required),
            last_edges=self.last_edges,
            frame_rotation=None if self.frame_rotation is None else self.frame_rotation.tolist(),
        )
        return config


class BackboneModel:
    """Mixin of the models built on ``self.backbone``: its options as read-only attributes."""

    backbone: Backbone

    @property
    def elements(self) -> List[str]:
        return self.backbone.elements

    @property
    def irreps_hidden(self) -> Irreps:
        return self.backbone.irreps_hidden

    @property
    def num_blocks(self) -> int:
        return self.backbone.num_blocks

    @property
    def cutoff(self) -> float:
        """Radial cutoff, Angstrom."""
        return self.backbone.cutoff

    @property
    def convolution(self) -> str:
        return self.backbone.convolution

    @property
    def parity(self) -> bool:
        return self.backbone.parity
