"""Dataset statistics the model is built with (explicit constructor arguments, as in MACE).

One pass over the training graphs gives:
- per element, the mean of each on-site scalar (0e) irreps term (shift) and the RMS of every
  on-site term around it (scale);
- per element pair, the RMS of every off-site term (scale);
- the mean number of neighbours (edges per atom), to normalize message sums;
- the longest edge (Angstrom), the default radial cutoff;
- per element pair, the longest edge (Angstrom) and whether any edge crossed a cell
  boundary (R != 0): the graph rule of prediction on a POSCAR alone
  (:mod:`deeph_tf.data.inference_graph`).
Only masked (real, counted) entries contribute.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import List

import numpy as np

from deeph_tf.data import keys
from deeph_tf.so3.block_coupling import OrbitalBlockCoupling


@dataclass
class TargetStatistics:
    operator: str
    node_scale: List[List[float]]  # [n_species, n_terms]
    node_shift: List[List[float]]  # [n_species, n_terms] (0 except on 0e terms)
    edge_scale: List[List[float]]  # [n_species^2, n_terms]
    avg_num_neighbors: float
    max_edge_length: float
    num_structures: int
    #: [n_species, n_species] longest edge of each (src, dst) element pair, Angstrom (0: no edge).
    pair_max_edge_length: List[List[float]] = field(default_factory=list)
    #: Whether any training edge joined an atom to a periodic image (R != 0).
    periodic_edges: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def compute_statistics(graph_set, subset: str = "train", operator: str = "hamiltonian", max_structures: int = 2000) -> TargetStatistics:
    """Statistics of ``operator`` over (up to ``max_structures`` of) a graph subset."""

    layout = graph_set.layout
    coupling = OrbitalBlockCoupling(layout.common_shells, layout.common_shells)
    n_species, n_terms = len(layout.elements), len(coupling.irreps)
    scalar_terms = np.array([ir.l == 0 and ir.p == 1 for _, ir in coupling.irreps])
    term_of = np.repeat(np.arange(n_terms), [mul * ir.dim for mul, ir in coupling.irreps])
    w = coupling.matrix  # [n_c^2, dim]

    node_sum = np.zeros((n_species, n_terms))
    node_sq = np.zeros((n_species, n_terms))
    node_count = np.zeros((n_species, n_terms))
    edge_sq = np.zeros((n_species**2, n_terms))
    edge_count = np.zeros((n_species**2, n_terms))
    n_nodes = n_edges = n_structures = 0
    longest = 0.0
    pair_longest = np.zeros((n_species, n_species))
    periodic = False
    dataset, _ = graph_set.dataset(subset, batch_size=1, shuffle=False, prefetch=False)
    for batch in dataset.take(max_structures):
        valid_nodes = batch[keys.NODE_VALID].numpy()
        valid_edges = batch[keys.EDGE_VALID].numpy()
        species = batch[keys.SPECIES].numpy()[valid_nodes]
        src, dst = batch[keys.EDGE_SRC].numpy()[valid_edges], batch[keys.EDGE_DST].numpy()[valid_edges]
        node_blocks = batch[keys.node_key(operator)].numpy()[valid_nodes].astype(np.float64)
        edge_blocks = batch[keys.edge_key(operator)].numpy()[valid_edges].astype(np.float64)
        node_mask = batch[keys.NODE_MASK].numpy()[valid_nodes]
        edge_mask = batch[keys.EDGE_MASK].numpy()[valid_edges]
        vectors = batch[keys.EDGE_VECTOR].numpy()[valid_edges]
        all_species = batch[keys.SPECIES].numpy()
        if len(vectors):
            lengths = np.linalg.norm(vectors.astype(np.float64), axis=-1)
            longest = max(longest, float(lengths.max()))
            np.maximum.at(pair_longest, (all_species[src], all_species[dst]), lengths)
            periodic = periodic or bool(np.any(batch[keys.EDGE_SHIFT].numpy()[valid_edges] != 0))
        n_nodes += len(species)
        n_edges += len(src)
        n_structures += 1
        # A term counts for a row when all of its block entries are masked in (real and counted).
        node_irreps = (node_blocks * node_mask).reshape(len(species), -1) @ w
        node_present = _term_present(node_mask, w, term_of, n_terms)
        for s in np.unique(species):
            rows = species == s
            present = node_present[rows]
            values = node_irreps[rows]
            for t in range(n_terms):
                keep = present[:, t]
                if keep.any():
                    v = values[keep][:, term_of == t]
                    node_sum[s, t] += v.sum()
                    node_sq[s, t] += (v**2).sum()
                    node_count[s, t] += v.size
        edge_irreps = (edge_blocks * edge_mask).reshape(len(src), -1) @ w
        edge_present = _term_present(edge_mask, w, term_of, n_terms)
        pair_row = all_species[src] * n_species + all_species[dst]
        for t in range(n_terms):
            keep = edge_present[:, t]
            if keep.any():
                v = edge_irreps[keep][:, term_of == t]
                np.add.at(edge_sq[:, t], pair_row[keep], (v**2).sum(axis=1))
                np.add.at(edge_count[:, t], pair_row[keep], v.shape[1])
    mean = np.divide(node_sum, node_count, out=np.zeros_like(node_sum), where=node_count > 0)
    shift = np.where(scalar_terms[None, :], mean, 0.0)
    node_var = np.divide(node_sq, node_count, out=np.zeros_like(node_sq), where=node_count > 0) - shift**2
    node_scale = _safe_scale(np.sqrt(np.maximum(node_var, 0.0)), node_count)
    edge_scale = _safe_scale(np.sqrt(np.divide(edge_sq, edge_count, out=np.zeros_like(edge_sq), where=edge_count > 0)), edge_count)
    return TargetStatistics(
        operator=operator,
        node_scale=node_scale.tolist(),
        node_shift=shift.tolist(),
        edge_scale=edge_scale.tolist(),
        avg_num_neighbors=float(n_edges / max(n_nodes, 1)),
        max_edge_length=longest,
        num_structures=n_structures,
        pair_max_edge_length=pair_longest.tolist(),
        periodic_edges=periodic,
    )


def _term_present(mask: np.ndarray, w: np.ndarray, term_of: np.ndarray, n_terms: int) -> np.ndarray:
    """[n, n_terms] bool: the block entries feeding each term are all masked in."""
    support = np.abs(w) > 1e-12  # [n_c^2, dim]
    flat = mask.reshape(len(mask), -1)
    out = np.zeros((len(mask), n_terms), dtype=bool)
    for t in range(n_terms):
        entries = support[:, term_of == t].any(axis=1)
        out[:, t] = flat[:, entries].all(axis=1)
    return out


def _safe_scale(scale: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Unseen terms get scale 1; tiny scales are floored at 1e-3 of the typical scale."""
    seen = count > 0
    typical = float(np.median(scale[seen])) if seen.any() else 1.0
    floor = max(1e-3 * typical, 1e-8)
    return np.where(seen, np.maximum(scale, floor), 1.0)
