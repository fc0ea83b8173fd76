"""Dataset statistics the model is built with (explicit constructor arguments, as in MACE).

One pass over the training graphs gives:
- per element, the mean of each on-site scalar (0e) irreps term (shift) and the RMS of every
  on-site term around it (scale);
- per element pair, the RMS of every off-site term (scale);
- for spinful targets the same for the spin parts B (on-site 0e terms: the L.S-like scalar);
- the mean number of neighbours (edges per atom), to normalize message sums;
- the longest edge (Angstrom), the default radial cutoff;
- per element pair, the longest edge (Angstrom) and whether any edge crossed a cell
  boundary (R != 0): the graph rule of prediction on a POSCAR alone
  (:mod:`deeph_tf.data.inference_graph`).
Only masked (real, counted) entries contribute.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import List, Optional

import numpy as np

from deeph_tf.data import keys
from deeph_tf.so3.block_coupling import OrbitalBlockCoupling
from deeph_tf.so3.spin_blocks import SpinBlockCoupling


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
    #: Spinful targets: standardization of the spin parts B (columns: ``spin_block_irreps`` terms);
    #: None for spinless data.
    spin_node_scale: Optional[List[List[float]]] = None
    spin_node_shift: Optional[List[List[float]]] = None
    spin_edge_scale: Optional[List[List[float]]] = None

    @property
    def spinful(self) -> bool:
        """Whether these are the statistics of spinful (spin-orbit) targets."""
        return self.spin_node_scale is not None

    def to_dict(self) -> dict:
        return asdict(self)


class TermMoments:
    """Moments of every irreps term of node and edge blocks: per element (node) and element pair (edge).

    Args:
        w: orthogonal coupling matrix [entries, dim] (irreps = vec(block) @ w).
        irreps: its irreps (one term per entry of the list).
        n_species: number of elements.
    """

    def __init__(self, w: np.ndarray, irreps, n_species: int):
        self.w, self.n_species = w, n_species
        self.n_terms = len(irreps)
        self.scalar_terms = np.array([ir.l == 0 and ir.p == 1 for _, ir in irreps])
        self.term_of = np.repeat(np.arange(self.n_terms), [mul * ir.dim for mul, ir in irreps])
        self.node_sum = np.zeros((n_species, self.n_terms))
        self.node_sq = np.zeros((n_species, self.n_terms))
        self.node_count = np.zeros((n_species, self.n_terms))
        self.edge_sq = np.zeros((n_species**2, self.n_terms))
        self.edge_count = np.zeros((n_species**2, self.n_terms))

    def add_nodes(self, species: np.ndarray, blocks: np.ndarray, mask: np.ndarray) -> None:
        """species [n]; blocks, mask [n, entries] (a term counts where all its entries are masked in)."""
        irreps = (blocks * mask) @ self.w
        present = _term_present(mask, self.w, self.term_of, self.n_terms)
        for s in np.unique(species):
            rows = species == s
            for t in range(self.n_terms):
                keep = present[rows][:, t]
                if keep.any():
                    v = irreps[rows][keep][:, self.term_of == t]
                    self.node_sum[s, t] += v.sum()
                    self.node_sq[s, t] += (v**2).sum()
                    self.node_count[s, t] += v.size

    def add_edges(self, pair_row: np.ndarray, blocks: np.ndarray, mask: np.ndarray) -> None:
        """pair_row [n] (src species * n_species + dst species); blocks, mask [n, entries]."""
        irreps = (blocks * mask) @ self.w
        present = _term_present(mask, self.w, self.term_of, self.n_terms)
        for t in range(self.n_terms):
            keep = present[:, t]
            if keep.any():
                v = irreps[keep][:, self.term_of == t]
                np.add.at(self.edge_sq[:, t], pair_row[keep], (v**2).sum(axis=1))
                np.add.at(self.edge_count[:, t], pair_row[keep], v.shape[1])

    def finish(self):
        """(node_scale, node_shift, edge_scale) as nested lists: RMS around the mean (on-site 0e
        terms), the mean (0e terms only), RMS of the off-site terms."""
        mean = np.divide(self.node_sum, self.node_count, out=np.zeros_like(self.node_sum), where=self.node_count > 0)
        shift = np.where(self.scalar_terms[None, :], mean, 0.0)
        node_var = np.divide(self.node_sq, self.node_count, out=np.zeros_like(self.node_sq),
                             where=self.node_count > 0) - shift**2
        node_scale = _safe_scale(np.sqrt(np.maximum(node_var, 0.0)), self.node_count)
        edge_rms = np.sqrt(np.divide(self.edge_sq, self.edge_count, out=np.zeros_like(self.edge_sq),
                                     where=self.edge_count > 0))
        edge_scale = _safe_scale(edge_rms, self.edge_count)
        return node_scale.tolist(), shift.tolist(), edge_scale.tolist()


def compute_statistics(graph_set, subset: str = "train", operator: str = "hamiltonian", max_structures: int = 2000) -> TargetStatistics:
    """Statistics of ``operator`` over (up to ``max_structures`` of) a graph subset (for a spinful
    graph set also those of the spin parts B, :class:`~deeph_tf.so3.spin_blocks.SpinBlockCoupling`)."""

    layout = graph_set.layout
    coupling = OrbitalBlockCoupling(layout.common_shells, layout.common_shells)
    n_species = len(layout.elements)
    moments = TermMoments(coupling.matrix, coupling.irreps, n_species)
    spinful = bool(getattr(graph_set, "spinful", False)) and operator in keys.SPIN_OPERATORS
    spin_moments = None
    if spinful:
        spin_coupling = SpinBlockCoupling(layout.common_shells, layout.common_shells)
        spin_moments = TermMoments(spin_coupling.matrix, spin_coupling.irreps, n_species)
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
        pair_row = all_species[src] * n_species + all_species[dst]
        moments.add_nodes(species, node_blocks.reshape(len(species), -1), node_mask.reshape(len(species), -1))
        moments.add_edges(pair_row, edge_blocks.reshape(len(src), -1), edge_mask.reshape(len(src), -1))
        if spin_moments is not None:
            node_spin = batch[keys.node_spin_key(operator)].numpy()[valid_nodes].astype(np.float64)
            edge_spin = batch[keys.edge_spin_key(operator)].numpy()[valid_edges].astype(np.float64)
            spin_node_mask = np.broadcast_to(node_mask[:, None], node_spin.shape)
            spin_edge_mask = np.broadcast_to(edge_mask[:, None], edge_spin.shape)
            spin_moments.add_nodes(species, node_spin.reshape(len(species), -1), spin_node_mask.reshape(len(species), -1))
            spin_moments.add_edges(pair_row, edge_spin.reshape(len(src), -1), spin_edge_mask.reshape(len(src), -1))
    node_scale, shift, edge_scale = moments.finish()
    spin = {}
    if spin_moments is not None:
        spin = dict(zip(("spin_node_scale", "spin_node_shift", "spin_edge_scale"), spin_moments.finish()))
    return TargetStatistics(
        operator=operator,
        node_scale=node_scale,
        node_shift=shift,
        edge_scale=edge_scale,
        avg_num_neighbors=float(n_edges / max(n_nodes, 1)),
        max_edge_length=longest,
        num_structures=n_structures,
        pair_max_edge_length=pair_longest.tolist(),
        periodic_edges=periodic,
        **spin,
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
