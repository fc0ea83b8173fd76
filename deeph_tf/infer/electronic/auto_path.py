"""Automatic high-symmetry k-paths from ASE, for structures without a ``K_PATH`` file.

ASE (``ase.cell.Cell.bandpath``) identifies the Bravais lattice of the periodic directions
(``pbc`` False along a vacuum axis: a 2D material gets the 2D path, a wire the 1D one) and
gives its special points in reduced coordinates of the given cell. The path string (e.g.
"GXWKGLUWLK,UX": a comma is a jump) becomes :class:`~deeph_tf.infer.electronic.kpoints.KPathSegment`
lines, ``n_points`` shared among the segments in proportion to their length in 1/Angstrom
(at least 2 each), so :func:`~deeph_tf.infer.electronic.kpoints.k_path_points` treats them
like a ``K_PATH`` file. ASE is imported only here, lazily.
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np

from deeph_tf.data.block_h5 import BlockSet
from deeph_tf.infer.electronic.kpoints import KPathSegment, reciprocal_lattice

__all__ = ["DEFAULT_PATH_POINTS", "periodic_directions", "automatic_k_path"]

#: Default number of k-points of an automatic path (all segments together).
DEFAULT_PATH_POINTS = 120


def periodic_directions(blockset: BlockSet) -> List[bool]:
    """[3] True along lattice directions with R != 0 pairs (False: vacuum, no periodic partner)."""
    return [bool(p) for p in np.any(blockset.atom_pairs[:, :3] != 0, axis=0)]


def _split_labels(piece: str) -> List[str]:
    """"GX1W" -> ["G", "X1", "W"] (a label is a letter followed by digits)."""
    labels: List[str] = []
    for ch in piece:
        if ch.isdigit() and labels:
            labels[-1] += ch
        else:
            labels.append(ch)
    return labels


def automatic_k_path(lattice: np.ndarray, pbc: Sequence[bool],
                     n_points: int = DEFAULT_PATH_POINTS) -> List[KPathSegment]:
    """ASE's high-symmetry path of ``lattice`` ([3, 3] rows, Angstrom) along the ``pbc`` directions.

    Labels as ASE writes them ("G" is Gamma). ``n_points``: total k-points (>= 2 per segment).

    Raises:
        ImportError: ASE is not installed (the message says to install it or pass a k-path).
        ValueError: no periodic direction (a molecule has no path).
    """
    pbc = [bool(p) for p in pbc]
    if not any(pbc):
        raise ValueError("no periodic direction: a molecule has no k-path")
    try:
        from ase.cell import Cell
    except ImportError as exc:
        raise ImportError("an automatic k-path needs ASE: install ase or pass --k-path (a K_PATH file)") from exc
    lattice = np.asarray(lattice, dtype=np.float64).reshape(3, 3)
    path = Cell(lattice).bandpath(npoints=0, pbc=pbc)
    ends = []
    for piece in path.path.split(","):
        labels = _split_labels(piece)
        ends.extend((a, b) for a, b in zip(labels[:-1], labels[1:]))
    points = {label: np.asarray(k, dtype=np.float64) for label, k in path.special_points.items()}
    b = reciprocal_lattice(lattice)
    lengths = np.array([np.linalg.norm((points[e] - points[s]) @ b) for s, e in ends])
    total = max(int(n_points), 2 * len(ends))
    share = lengths / lengths.sum() if lengths.sum() > 0 else np.full(len(ends), 1.0 / len(ends))
    counts = np.maximum(2, np.round(share * total).astype(int))
    return [KPathSegment(int(n), tuple(float(v) for v in points[s]), tuple(float(v) for v in points[e]), s, e)
            for n, (s, e) in zip(counts, ends)]
