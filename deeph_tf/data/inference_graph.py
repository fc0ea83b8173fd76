"""Graphs of structures to predict: from overlap.h5, or from a POSCAR and the model's pair cutoffs.

DeepH's inference takes a structure with its overlap (graph type ``S``: the atom pairs are the
overlap's) or a structure alone. For the second case a model carries, per element pair, the
longest distance at which that pair had a block in its training graphs
(``HamiltonianModel.pair_cutoffs``, Angstrom) and whether training edges crossed cell
boundaries (``periodic_images``): the POSCAR-only graph holds every pair (i, j, R) with
``|r_j + R @ lattice - r_i| <= pair_cutoffs[s_i, s_j] + PAIR_CUTOFF_TOLERANCE``, self-images
(i, i, R != 0) included, both directions, plus the on-site pairs. A model trained only on
molecules (no periodic images) gets molecular graphs (R = 0 only) whatever the POSCAR box.
A uniform ``radius`` (dpredict ``--radius-cutoff``, or the training input's
``dataset.radius_cutoff``) replaces the per-pair rule when given.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from deeph_tf.data import keys
from deeph_tf.data.errors import DataFormatError
from deeph_tf.data.graph import Graph, assemble_graph, build_graph
from deeph_tf.data.layout import OrbitalLayout
from deeph_tf.data.neighbors import radius_graph
from deeph_tf.data.structure import StructureFolder

__all__ = ["PAIR_CUTOFF_TOLERANCE", "GraphRule", "pair_cutoff_pairs", "prediction_graph"]

#: Added to each pair cutoff (Angstrom): training lengths are measured in float32.
PAIR_CUTOFF_TOLERANCE = 1e-4


@dataclass(frozen=True)
class GraphRule:
    """How the atom pairs of a structure without overlap.h5 are chosen.

    Attributes:
        elements: the model's elements (species index = position).
        pair_cutoffs: [n_species, n_species] Angstrom (0: the pair is never an edge), or None.
        periodic: whether lattice images are neighbours (False: a molecular graph).
        radius: a uniform cutoff (Angstrom) that replaces ``pair_cutoffs`` when set.
    """

    elements: Tuple[str, ...]
    pair_cutoffs: Optional[Tuple[Tuple[float, ...], ...]] = None
    periodic: bool = True
    radius: Optional[float] = None

    def describe(self) -> str:
        if self.radius is not None:
            return f"radius {self.radius:g} A"
        if self.pair_cutoffs is None:
            return "none"
        values = np.asarray(self.pair_cutoffs)
        seen = values[values > 0]
        span = f"{seen.min():.3f}-{seen.max():.3f} A" if seen.size else "no pairs"
        return f"per-element-pair cutoffs ({span}{'' if self.periodic else ', molecular'})"

    @property
    def usable(self) -> bool:
        return self.radius is not None or self.pair_cutoffs is not None


def pair_cutoff_pairs(positions: np.ndarray, lattice: Optional[np.ndarray], species: Sequence[int],
                      rule: GraphRule) -> np.ndarray:
    """[n_pairs, 5] int64 (Rx, Ry, Rz, i, j): on-site pairs first, then the rule's edges.

    Args:
        positions: [n_atoms, 3] Angstrom; lattice: [3, 3] Angstrom, rows (ignored if not periodic).
        species: [n_atoms] the model's species index of each atom.
    """
    species = np.asarray(species, np.int64)
    n_atoms = len(species)
    pbc = (rule.periodic,) * 3
    if rule.radius is not None:
        src, dst, shifts = radius_graph(positions, lattice, rule.radius * (1 + 1e-12), pbc=pbc)
    else:
        cutoffs = np.asarray(rule.pair_cutoffs, np.float64) + PAIR_CUTOFF_TOLERANCE
        cutoffs[np.asarray(rule.pair_cutoffs) <= 0] = 0.0
        present = np.unique(species)
        largest = float(cutoffs[np.ix_(present, present)].max()) if n_atoms else 0.0
        if largest > 0:
            src, dst, shifts = radius_graph(positions, lattice, largest, pbc=pbc)
            vectors = positions[dst] - positions[src] + (shifts @ lattice if rule.periodic else 0.0)
            keep = np.linalg.norm(vectors, axis=1) <= cutoffs[species[src], species[dst]]
            src, dst, shifts = src[keep], dst[keep], shifts[keep]
        else:
            src = dst = np.zeros(0, np.int64)
            shifts = np.zeros((0, 3), np.int64)
    atoms = np.arange(n_atoms, dtype=np.int64)
    onsite = np.column_stack([np.zeros((n_atoms, 3), np.int64), atoms, atoms])
    return np.concatenate([onsite, np.column_stack([shifts, src, dst]).astype(np.int64)])


def prediction_graph(structure: StructureFolder, layout: OrbitalLayout, rule: Optional[GraphRule] = None,
                     dtype=np.float32, prefer_overlap: bool = True) -> Tuple[Graph, str]:
    """(graph, source) of a structure to predict; source is "overlap.h5" or ``rule.describe()``.

    With overlap.h5 (and ``prefer_overlap``) its atom pairs are the edges (DeepH's graph type S);
    otherwise ``rule`` chooses them from the POSCAR.

    Raises:
        DataFormatError: neither an overlap.h5 nor a usable rule, naming the structure.
    """
    if prefer_overlap and structure.has_blocks(keys.OVERLAP):
        return build_graph(structure, layout, targets=(), dtype=dtype), "overlap.h5"
    if rule is None or not rule.usable:
        raise DataFormatError(structure.path, "no overlap.h5, and the model carries no pair cutoffs (trained by an "
                              "older version): give a uniform radius (dpredict --radius-cutoff) or an overlap.h5")
    index = {e: k for k, e in enumerate(rule.elements)}
    unknown = sorted(set(structure.species) - set(index))
    if unknown:
        raise DataFormatError(structure.path, f"elements {unknown} are not among the model's {list(rule.elements)}")
    species = [index[e] for e in structure.species]
    poscar = structure.poscar
    pairs = pair_cutoff_pairs(poscar.positions, poscar.lattice, species, rule)
    graph = assemble_graph(structure, layout, {}, dtype, structure.name, pairs=pairs)
    return graph, rule.describe()
