"""One message-passing block with node and edge updates (DeepH-E3 style).

For each edge e = (i -> j, R):
    t_e   = Linear([h_i, h_j, e_e])                          equivariant mixing of both atoms and the edge
    m_e   = TP(t_e, Y(r_ij)) with per-path radial weights     the equivariant convolution
    h_i'  = Norm(Gate(Linear(sum_{e from i} m_e / n_avg)) + SelfLinear(h_i))
    e_e'  = Norm(Gate(Linear(m_e)) + SelfLinear(e_e))
The convolution is the SO(2) (eSCN) one by default, or the Clebsch-Gordan product
(``convolution="cg"``, the reference; its path outputs are mixed by the following linear layers).
"""
from __future__ import annotations

from typing import Dict, Sequence

import keras
import tensorflow as tf

from deeph_tf.model.gate import Gate, gate_irreps
from deeph_tf.model.linear import EquivariantLinear
from deeph_tf.model.norm import EquivariantLayerNorm
from deeph_tf.model.radial import RadialMLP
from deeph_tf.model.tensor_product import CGEdgeTensorProduct, SO2Convolution
from deeph_tf.so3.irreps import Irrep, Irreps

CONVOLUTIONS = ("so2", "cg")


def _distinct(irreps: Irreps):
    return {ir for _, ir in irreps}


def merged_irreps(first: Irreps, second: Irreps) -> Irreps:
    """Every (l, p) of either, with the larger total multiplicity, sorted by l."""
    muls: Dict[Irrep, int] = {}
    for irreps in (first, second):
        totals: Dict[Irrep, int] = {}
        for mul, ir in irreps:
            totals[ir] = totals.get(ir, 0) + mul
        for ir, mul in totals.items():
            muls[ir] = max(muls.get(ir, 0), mul)
    return Irreps([(mul, ir) for ir, mul in muls.items()]).sort()[0].simplify()


def tp_input_irreps(irreps_in: Irreps, irreps_target: Irreps) -> Irreps:
    """Irreps fed to the tensor product: the (l, p) of ``irreps_in``, with the multiplicity the
    target has for that (l, p) (the input's own where the target lacks it), sorted by l."""
    target_mul: Dict[Irrep, int] = {}
    for mul, ir in irreps_target:
        target_mul[ir] = target_mul.get(ir, 0) + mul
    own_mul: Dict[Irrep, int] = {}
    for mul, ir in irreps_in:
        own_mul[ir] = own_mul.get(ir, 0) + mul
    irreps = Irreps([(target_mul.get(ir, own_mul[ir]), ir) for ir in own_mul])
    return irreps.sort()[0].simplify()


@keras.saving.register_keras_serializable(package="deeph_tf")
class InteractionBlock(keras.layers.Layer):
    """Node and edge update (see module doc).

    Args:
        irreps_node_in, irreps_edge_in: irreps of the incoming node and edge features.
        irreps_node_out, irreps_edge_out: irreps after the block (scalars first).
        lmax_sh: largest l of the edge spherical harmonics.
        radial_hidden: hidden widths of the MLP giving per-path weights from the radial basis.
        avg_num_neighbors: normalization of the message sum (dataset statistic).
        convolution: "so2" (eSCN, O(L^3)) or "cg" (Clebsch-Gordan reference, O(L^6)).
        parity: O(3) parities (False: SO(3) only).
        update_edges: compute the edge update (False for a last block whose edges nobody
            reads, e.g. under an energy head: the edges are then returned unchanged).

    Call inputs: node [N, node_in], edge [E, edge_in], radial [E, n_basis], vectors [E, 3]
    (Angstrom), edge_src [E], edge_dst [E], wigner (list of [E, 2l+1, 2l+1] or None).
    Geometry (radial, vectors, wigner) is not cast to the compute dtype (``autocast=False``):
    under mixed precision it stays float32; node and edge features are cast to the compute dtype.
    Outputs: (node [N, node_out], edge [E, edge_out]), compute dtype.
    """

    def __init__(
        self,
        irreps_node_in,
        irreps_edge_in,
        irreps_node_out,
        irreps_edge_out,
        lmax_sh: int,
        radial_hidden: Sequence[int] = (64, 64),
        avg_num_neighbors: float = 1.0,
        convolution: str = "so2",
        parity: bool = True,
        update_edges: bool = True,
        **kwargs,
    ):
        super().__init__(autocast=False, **kwargs)  # geometry arguments keep their (float32) dtype
        self.update_edges = bool(update_edges)
        if convolution not in CONVOLUTIONS:
            raise ValueError(f"convolution must be one of {CONVOLUTIONS}, received: convolution={convolution!r}")
        if avg_num_neighbors <= 0:
            raise ValueError(f"avg_num_neighbors must be > 0, received: {avg_num_neighbors}")
        self.irreps_node_in, self.irreps_edge_in = Irreps(irreps_node_in), Irreps(irreps_edge_in)
        self.irreps_node_out, self.irreps_edge_out = Irreps(irreps_node_out), Irreps(irreps_edge_out)
        self.lmax_sh, self.radial_hidden = int(lmax_sh), [int(u) for u in radial_hidden]
        self.avg_num_neighbors, self.convolution, self.parity = float(avg_num_neighbors), convolution, bool(parity)

        policy = self.dtype_policy
        concat_in = self.irreps_node_in + self.irreps_node_in + self.irreps_edge_in
        self.irreps_tp_in = tp_input_irreps(concat_in, self.irreps_node_out)
        self.pre_linear = EquivariantLinear(concat_in, self.irreps_tp_in, dtype=policy)
        wanted = sorted(_distinct(self.irreps_node_out) | _distinct(self.irreps_edge_out))
        if convolution == "so2":
            self.tensor_product = SO2Convolution(
                self.irreps_tp_in, merged_irreps(self.irreps_node_out, self.irreps_edge_out), self.lmax_sh,
                parity=self.parity, dtype=policy,
            )
        else:
            self.tensor_product = CGEdgeTensorProduct(
                self.irreps_tp_in, self.lmax_sh, allowed_out=wanted, parity=self.parity, dtype=policy
            )
        self.radial_mlp = RadialMLP(self.radial_hidden, self.tensor_product.num_weights, dtype=policy)
        self.node_update = _GatedUpdate(self.tensor_product.irreps_out, self.irreps_node_in, self.irreps_node_out, dtype=policy)
        self.edge_update = (_GatedUpdate(self.tensor_product.irreps_out, self.irreps_edge_in, self.irreps_edge_out, dtype=policy)
                            if self.update_edges else None)

    def build(self, node_shape, edge_shape, radial_shape):
        """Sub-layer weights in the order of the forward pass; widths follow from the irreps and
        ``radial_shape`` [E, n_basis]."""
        for name, shape, irreps in (("node", node_shape, self.irreps_node_in), ("edge", edge_shape, self.irreps_edge_in)):
            if shape[-1] is not None and shape[-1] != irreps.dim:
                raise ValueError(f"{self.name}: {name} features must have {irreps.dim} columns ({irreps}), received {shape}")
        self.pre_linear.build((None, self.pre_linear.irreps_in.dim))
        self.radial_mlp.build(tuple(radial_shape))
        self.tensor_product.build()
        self.node_update.build()
        if self.edge_update is not None:
            self.edge_update.build()
        self.built = True

    @property
    def lmax_rotation(self) -> int:
        """Largest l whose edge rotation the SO(2) product needs."""
        return max(max(ir.l for _, ir in self.irreps_tp_in), max(ir.l for _, ir in self.tensor_product.irreps_out))

    def call(self, node, edge, radial, vectors, edge_src, edge_dst, frame=None):
        node, edge = tf.cast(node, self.compute_dtype), tf.cast(edge, self.compute_dtype)
        inputs = tf.concat([tf.gather(node, edge_src), tf.gather(node, edge_dst), edge], axis=-1)
        mixed = self.pre_linear(inputs)
        weights = self.radial_mlp(radial)
        if self.convolution == "so2":
            messages = self.tensor_product(mixed, vectors, weights, frame=frame)
        else:
            messages = self.tensor_product(mixed, vectors, weights)
        aggregated = tf.math.unsorted_segment_sum(messages, edge_src, tf.shape(node)[0])
        aggregated = aggregated / tf.cast(self.avg_num_neighbors, aggregated.dtype)
        if self.edge_update is None:
            return self.node_update(aggregated, node), edge
        return self.node_update(aggregated, node), self.edge_update(messages, edge)

    def get_config(self):
        config = super().get_config()
        config.update(
            irreps_node_in=str(self.irreps_node_in),
            irreps_edge_in=str(self.irreps_edge_in),
            irreps_node_out=str(self.irreps_node_out),
            irreps_edge_out=str(self.irreps_edge_out),
            lmax_sh=self.lmax_sh,
            radial_hidden=self.radial_hidden,
            avg_num_neighbors=self.avg_num_neighbors,
            convolution=self.convolution,
            parity=self.parity,
            update_edges=self.update_edges,
        )
        return config


class _GatedUpdate(keras.layers.Layer):
    """Norm(Gate(Linear(message)) + SelfLinear(previous)): one residual update."""

    def __init__(self, irreps_message, irreps_previous, irreps_out, **kwargs):
        super().__init__(**kwargs)
        scalars, gates, gated = gate_irreps(irreps_out)
        policy = self.dtype_policy
        self.linear = EquivariantLinear(irreps_message, scalars + gates + gated, allow_zero_outputs=True, dtype=policy)
        self.gate = Gate(scalars, gates, gated, dtype=policy)
        self.self_linear = EquivariantLinear(irreps_previous, scalars + gated, allow_zero_outputs=True, dtype=policy)
        self.norm = EquivariantLayerNorm(scalars + gated, dtype=policy)

    def build(self, *input_shapes):
        """Sub-layer weights in the order of the forward pass (widths follow from the irreps)."""
        self.linear.build((None, self.linear.irreps_in.dim))
        self.gate.build((None, self.gate.irreps_in.dim))
        self.self_linear.build((None, self.self_linear.irreps_in.dim))
        self.norm.build((None, self.norm.irreps.dim))
        self.built = True

    def call(self, message, previous):
        return self.norm(self.gate(self.linear(message)) + self.self_linear(previous))
