"""k-points: DeepH-dock ``K_PATH`` files, paths through the Brillouin zone, uniform grids.

k in reduced (fractional) coordinates of the reciprocal lattice; path distances in
1/Angstrom (lattice rows in Angstrom).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from deeph_tf.data.block_h5 import BlockSet

__all__ = ["K_PATH_FILENAME", "DEFAULT_K_PER_DIRECTION", "KPathSegment", "KPathPoints", "read_k_path",
           "reciprocal_lattice", "k_path_points", "k_grid_points", "default_k_grid"]

PathLike = Union[str, "os.PathLike[str]"]
K_PATH_FILENAME = "K_PATH"
#: Default k-points per periodic direction of the band grid.
DEFAULT_K_PER_DIRECTION = 4


@dataclass(frozen=True)
class KPathSegment:
    """One line of a ``K_PATH`` file: ``n_points`` k from ``k_start`` to ``k_end`` (reduced, [3])."""

    n_points: int
    k_start: Tuple[float, float, float]
    k_end: Tuple[float, float, float]
    label_start: str
    label_end: str


def read_k_path(path: PathLike) -> List[KPathSegment]:
    """Parse a DeepH-dock ``K_PATH`` file.

    Each non-empty line (``#`` starts a comment): ``n_points k1 k2 k3 k1' k2' k3' label label'``,
    k in reduced coordinates; labels may be omitted.

    Raises:
        ValueError: naming the file and line.
    """
    path = Path(path)
    segments = []
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        tokens = line.split()
        try:
            if len(tokens) not in (7, 9):
                raise ValueError(f"{len(tokens)} fields")
            n = int(tokens[0])
            if n < 1:
                raise ValueError("n_points < 1")
            ks = [float(t) for t in tokens[1:7]]
        except ValueError as exc:
            raise ValueError(f"{path}:{lineno}: cannot parse {raw.strip()!r} ({exc}); expected "
                             f"'n_points k_start(3) k_end(3) label_start label_end'") from None
        labels = tokens[7:9] if len(tokens) == 9 else ["", ""]
        segments.append(KPathSegment(n, tuple(ks[:3]), tuple(ks[3:]), labels[0], labels[1]))  # type: ignore[arg-type]
    if not segments:
        raise ValueError(f"{path}: no k-path segment found")
    return segments


def reciprocal_lattice(lattice: np.ndarray) -> np.ndarray:
    """Rows b_i with a_i . b_j = 2 pi delta_ij (1/Angstrom), from rows a_i (Angstrom), [3, 3]."""
    return 2.0 * np.pi * np.linalg.inv(np.asarray(lattice, dtype=np.float64)).T


@dataclass
class KPathPoints:
    """Sampled path: ``k_frac`` [n, 3] reduced, ``distance`` [n] cumulative |dk| (1/Angstrom),
    ``tick_distance`` / ``tick_labels`` at segment ends (a jump shows as "X|Y")."""

    k_frac: np.ndarray
    distance: np.ndarray
    tick_distance: List[float]
    tick_labels: List[str]


def k_path_points(segments: Sequence[KPathSegment], lattice: np.ndarray) -> KPathPoints:
    """k-points along ``segments`` (each sampled with ``n_points``, both ends included)."""
    b = reciprocal_lattice(lattice)
    ks, dist, ticks, labels = [], [], [], []
    x = 0.0
    prev_end: Optional[np.ndarray] = None
    for seg in segments:
        start, end = np.asarray(seg.k_start), np.asarray(seg.k_end)
        pts = np.linspace(start, end, seg.n_points) if seg.n_points > 1 else start[None, :]
        if prev_end is None:
            ticks.append(x)
            labels.append(seg.label_start)
        elif not np.allclose(prev_end, start):
            labels[-1] = f"{labels[-1]}|{seg.label_start}"  # discontinuity: no distance added
        step = np.linalg.norm(np.diff(pts, axis=0) @ b, axis=1) if len(pts) > 1 else np.zeros(0)
        ks.append(pts)
        dist.append(x + np.concatenate([[0.0], np.cumsum(step)]))
        x = float(dist[-1][-1])
        ticks.append(x)
        labels.append(seg.label_end)
        prev_end = end
    return KPathPoints(np.concatenate(ks), np.concatenate(dist), ticks, labels)


def k_grid_points(grid: Sequence[int], gamma_centered: bool = True) -> np.ndarray:
    """Uniform grid [prod(grid), 3] of reduced k.

    ``gamma_centered``: k_a = m / n_a, m = 0..n_a-1 (Gamma included); otherwise the
    Monkhorst-Pack points (2m - n_a + 1) / (2 n_a), m = 0..n_a-1.
    """
    axes = []
    for n in grid:
        n = int(n)  # accepts NumPy integers
        if n < 1:
            raise ValueError(f"k-grid {list(grid)}: every entry must be >= 1")
        m = np.arange(n)
        axes.append(m / n if gamma_centered else (2 * m - n + 1) / (2.0 * n))
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([a.reshape(-1) for a in mesh], axis=1)


def default_k_grid(blockset: BlockSet, per_direction: int = DEFAULT_K_PER_DIRECTION) -> Tuple[int, int, int]:
    """``per_direction`` along lattice directions with R != 0 pairs, 1 along the others (vacuum)."""
    periodic = np.any(blockset.atom_pairs[:, :3] != 0, axis=0)
    return tuple(int(per_direction) if p else 1 for p in periodic)  # type: ignore[return-value]
