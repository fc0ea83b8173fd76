"""The Hamiltonian model: embeddings, interaction blocks, block heads, Hermitian symmetrization.

Input: a batch dict from ``deeph_tf.data.pipeline`` (padded disjoint union of graphs).
Output: ``{"node": [N, n_c, n_c], "edge": [E, n_c, n_c]}`` predicted blocks of the target
operator in the common orbital layout (eV for the Hamiltonian), exactly Hermitian and
equivariant: rotating the structure by Q gives U(Q) H U(Q)^T.
"""
from __future__ import annotations

from typing import Dict, Sequence

import keras
import numpy as np
import tensorflow as tf

from deeph_tf.data import keys
from deeph_tf.model.blocks import InteractionBlock
from deeph_tf.model.head import BlockHead, block_irreps, symmetrize_blocks
from deeph_tf.model.radial import RadialEmbedding, RadialMLP
from deeph_tf.model.tensor_product import edge_rotations
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


def model_inputs(batch: dict) -> dict:
    """The numeric fields of a pipeline batch (strings such as structure ids cannot enter XLA)."""
    return {name: value for name, value in batch.items() if value.dtype != tf.string}


def _even(irreps: Irreps) -> Irreps:
    return Irreps([(mul, Irrep(ir.l, 1)) for mul, ir in irreps])


def last_block_irreps(irreps_hidden: Irreps, needed: Irreps) -> Irreps:
    """Hidden irreps plus any (l, p) the output needs, with the output's multiplicity."""
    present = {ir for _, ir in irreps_hidden}
    extra: Dict[Irrep, int] = {}
    for mul, ir in needed:
        if ir not in present:
            extra[ir] = extra.get(ir, 0) + mul
    return (irreps_hidden + Irreps([(m, ir) for ir, m in extra.items()])).sort()[0].simplify()


def set_backbone_options(model, elements, irreps_hidden, num_blocks, lmax_sh, cutoff, num_radial_basis, radial_hidden,
                         avg_num_neighbors, convolution, parity) -> None:
    """Check and store the backbone's options on ``model`` (the attributes :func:`build_backbone` reads)."""
    if num_blocks < 1:
        raise ValueError(f"num_blocks must be >= 1, received: num_blocks={num_blocks}")
    model.elements = [str(e) for e in elements]
    model.irreps_hidden = Irreps(irreps_hidden).sort()[0].simplify()
    if not parity:
        model.irreps_hidden = _even(model.irreps_hidden).sort()[0].simplify()
    model.num_blocks, model.lmax_sh = int(num_blocks), int(lmax_sh)
    model.cutoff, model.num_radial_basis = float(cutoff), int(num_radial_basis)
    model.radial_hidden = [int(u) for u in radial_hidden]
    model.avg_num_neighbors, model.convolution, model.parity = float(avg_num_neighbors), convolution, bool(parity)


def backbone_config(model) -> dict:
    """The backbone's part of ``get_config()`` (the arguments of :func:`set_backbone_options`)."""
    return dict(
        elements=model.elements, irreps_hidden=str(model.irreps_hidden), num_blocks=model.num_blocks,
        lmax_sh=model.lmax_sh, cutoff=model.cutoff, num_radial_basis=model.num_radial_basis,
        radial_hidden=model.radial_hidden, avg_num_neighbors=model.avg_num_neighbors,
        convolution=model.convolution, parity=model.parity,
    )


def build_backbone(model, irreps_last: Irreps, last_edges: bool = True):
    """Create the shared message-passing layers on ``model`` (a Keras model with the backbone
    attributes irreps_hidden, num_blocks, lmax_sh, cutoff, num_radial_basis, radial_hidden,
    avg_num_neighbors, convolution, parity set): radial embedding, node and edge embeddings,
    ``num_blocks`` interaction blocks, the last one with ``irreps_last`` (and no edge update
    unless ``last_edges``: an energy head reads nodes only). Returns the dtype
    policy kept for geometry and heads (float32 under mixed precision).
    """
    policy = model.dtype_policy
    # Mixed precision ("mixed_bfloat16"): message passing computes in bf16, while geometry,
    # radial basis, edge rotations, output heads (-500 eV shifts) and the loss stay float32.
    precise = policy.variable_dtype if policy.compute_dtype != policy.variable_dtype else policy
    model._precise_dtype = precise if isinstance(precise, str) else precise.compute_dtype
    model._convert_input_args = False  # positions must not be cast to bf16 on entry
    scalar_width = model.irreps_hidden.count("0e") or 16
    model.irreps_embedding = Irreps(f"{scalar_width}x0e")
    model.radial = RadialEmbedding(model.num_radial_basis, model.cutoff, dtype=precise)
    model.node_embedding = keras.layers.Dense(scalar_width, use_bias=False, dtype=policy, name="node_embedding")
    model.edge_embedding = RadialMLP([scalar_width], scalar_width, dtype=policy, name="edge_embedding")
    model.blocks = []
    node_in = edge_in = model.irreps_embedding
    for index in range(model.num_blocks):
        out = irreps_last if index == model.num_blocks - 1 else model.irreps_hidden
        model.blocks.append(
            InteractionBlock(
                node_in, edge_in, out, out, model.lmax_sh, model.radial_hidden, model.avg_num_neighbors,
                convolution=model.convolution, parity=model.parity, dtype=policy, name=f"block_{index}",
                update_edges=last_edges or index < model.num_blocks - 1,
            )
        )
        node_in = edge_in = out
    model._lmax_rotation = max(block.lmax_rotation for block in model.blocks)
    return precise


def run_backbone(model, batch, positions, shift, frame_rotation=None):
    """The backbone's forward pass: (node [N, irreps], edge [E, irreps], species, src, dst).

    ``positions`` [N, 3] and ``shift`` [E, 3] (R @ lattice), Angstrom, in the precise dtype;
    edge vectors are computed here, so gradients with respect to them reach the positions.
    ``frame_rotation``: optional [3, 3] rotation Q0 applied before the edge-frame angles are
    taken (D(R) = D(Q0)^T D(R')), which moves the pole of the (alpha, beta) angles away from
    the z axis, where their derivatives are not defined (lattice-aligned edges).
    """
    species = tf.cast(batch[keys.SPECIES], tf.int32)
    src = tf.cast(batch[keys.EDGE_SRC], tf.int32)
    dst = tf.cast(batch[keys.EDGE_DST], tf.int32)
    vectors = tf.gather(positions, dst) + shift - tf.gather(positions, src)
    lengths = tf.sqrt(tf.maximum(tf.reduce_sum(vectors * vectors, axis=-1), tf.cast(1e-24, vectors.dtype)))
    radial = model.radial(lengths)
    one_hot = tf.one_hot(species, len(model.elements), dtype=model.compute_dtype)
    node = model.node_embedding(one_hot)
    edge = model.edge_embedding(
        tf.concat([tf.cast(radial, model.compute_dtype), tf.gather(one_hot, src), tf.gather(one_hot, dst)], axis=-1)
    )
    wigner = None
    if model.convolution == "so2":
        if frame_rotation is None:
            wigner = edge_rotations(vectors, model._lmax_rotation)
        else:
            q0 = tf.cast(frame_rotation, vectors.dtype)
            rotated = edge_rotations(tf.linalg.matvec(q0, vectors), model._lmax_rotation)
            wigner = [tf.matmul(tf.cast(d0, vectors.dtype), d, transpose_a=True)
                      for d0, d in zip(fixed_rotation_wigner(frame_rotation, model._lmax_rotation), rotated)]
    for block in model.blocks:
        node, edge = block(node, edge, radial, vectors, src, dst, wigner=wigner)
    return node, edge, species, src, dst


def fixed_rotation_wigner(rotation, lmax: int):
    """Real Wigner-D matrices [2l+1, 2l+1] (l = 0..lmax) of a fixed 3x3 rotation, as NumPy arrays."""
    from deeph_tf.so3.wigner import wigner_D_numpy

    return [wigner_D_numpy(l, np.asarray(rotation, np.float64)) for l in range(lmax + 1)]


@keras.saving.register_keras_serializable(package="deeph_tf")
class HamiltonianModel(keras.Model):
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
        **kwargs,
    ):
        super().__init__(**kwargs)
        set_backbone_options(self, elements, irreps_hidden, num_blocks, lmax_sh, cutoff, num_radial_basis,
                             radial_hidden, avg_num_neighbors, convolution, parity)
        self.common_shells = [int(l) for l in common_shells]
        self.symmetrize = bool(symmetrize)
        self._statistics = {
            "node_scale": None if node_scale is None else np.asarray(node_scale).tolist(),
            "node_shift": None if node_shift is None else np.asarray(node_shift).tolist(),
            "edge_scale": None if edge_scale is None else np.asarray(edge_scale).tolist(),
        }
        n_species = len(self.elements)
        precise = build_backbone(self, last_block_irreps(self.irreps_hidden, block_irreps(self.common_shells, self.parity)))
        last = self.blocks[-1].irreps_node_out
        self.node_head = BlockHead(
            last, self.common_shells, n_species, pair=False, parity=self.parity,
            scale=node_scale, shift=node_shift, dtype=precise, name="node_head",
        )
        self.edge_head = BlockHead(
            last, self.common_shells, n_species, pair=True, parity=self.parity,
            scale=edge_scale, dtype=precise, name="edge_head",
        )

    def build(self, *input_shapes):
        self.built = True

    def call(self, batch, training=False):
        positions = tf.cast(batch[keys.POSITIONS], self._precise_dtype)
        shift = tf.cast(batch["edge_shift_vector"], self._precise_dtype)
        node, edge, species, src, dst = run_backbone(self, batch, positions, shift)
        node_blocks = self.node_head(node, species)
        edge_blocks = self.edge_head(edge, tf.stack([tf.gather(species, src), tf.gather(species, dst)], axis=-1))
        if self.symmetrize:
            node_blocks, edge_blocks = symmetrize_blocks(node_blocks, edge_blocks, tf.cast(batch[keys.EDGE_REVERSE], tf.int32))
        return {"node": node_blocks, "edge": edge_blocks}

    def get_config(self):
        config = super().get_config()
        config.update(backbone_config(self), common_shells=self.common_shells, symmetrize=self.symmetrize,
                      **self._statistics)
        return config
